package tenant

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// InvitationTTL is how long an invitation link stays valid.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation is an owner's offer to join a tenant with a role.
type Invitation struct {
	ID         string // the token's hash: names it on the Members page, opens nothing
	TenantID   string
	TenantName string
	Email      string
	Role       Role
	InvitedBy  string // the inviting user's id
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero while unspent
	UsedBy     string
}

// ErrInvitationInvalid refuses an unknown, spent or expired invitation,
// all alike.
var ErrInvitationInvalid = &Error{Code: CodeForbidden, Msg: "this invitation is invalid, expired or already used; ask the workspace's owner for a new one"}

// CreateInvitation stores an invitation for email, its token hashed, and
// returns the token: it is shown once, to the owner, to pass on.
func (s *Store) CreateInvitation(ctx context.Context, tenantID, email string, role Role, by string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	fields := map[string]string{}
	if !ValidEmail(email) {
		fields["email"] = "Enter an email address."
	}
	if !ValidRole(role) {
		fields["role"] = "Choose owner or agent."
	}
	if len(fields) > 0 {
		return "", &Error{Code: CodeInvalid, Msg: "the invitation has errors", Fields: fields}
	}
	token := rand.Text()
	now := s.now()
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO invitations (token_hash, tenant_id, email, role, invited_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, hashToken(token), tenantID, email, role, by, ms(now), ms(now.Add(InvitationTTL)))
	if err != nil {
		return "", fmt.Errorf("storing an invitation: %w", err)
	}
	return token, nil
}

const selectInvitation = `SELECT i.token_hash, i.tenant_id, t.name, i.email, i.role, i.invited_by, i.created_at, i.expires_at, i.used_at, COALESCE(i.used_by, '')
	FROM invitations i JOIN tenants t ON t.id = i.tenant_id`

func scanInvitation(row interface{ Scan(...any) error }) (Invitation, error) {
	var in Invitation
	var created, expires int64
	var used sql.NullInt64
	err := row.Scan(&in.ID, &in.TenantID, &in.TenantName, &in.Email, &in.Role, &in.InvitedBy, &created, &expires, &used, &in.UsedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return Invitation{}, ErrInvitationInvalid
	}
	in.CreatedAt, in.ExpiresAt, in.UsedAt = fromMS(created), fromMS(expires), fromNullMS(used)
	return in, err
}

// InvitationByToken returns the invitation behind token whatever its
// state (spent, expired), so its page can tell its own invitee it is
// already accepted; ErrInvitationInvalid if there is none.
func (s *Store) InvitationByToken(ctx context.Context, token string) (Invitation, error) {
	return scanInvitation(s.db.read.QueryRowContext(ctx, selectInvitation+` WHERE i.token_hash = ?`, hashToken(token)))
}

// Usable reports whether the invitation can still be accepted at now.
func (in Invitation) Usable(now time.Time) bool {
	return in.UsedAt.IsZero() && now.Before(in.ExpiresAt)
}

// AcceptInvitation spends the invitation once and makes user a member with
// its role (a member already keeps their role). It must be the invited
// email's user: a forwarded link joins no one else.
func (s *Store) AcceptInvitation(ctx context.Context, token string, user User) (Invitation, error) {
	now := s.now()
	var in Invitation
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		in, err = scanInvitation(tx.QueryRowContext(ctx, selectInvitation+` WHERE i.token_hash = ?`, hashToken(token)))
		if err != nil {
			return err
		}
		if !in.Usable(now) {
			return ErrInvitationInvalid
		}
		if !strings.EqualFold(in.Email, user.Email) {
			return Errorf(CodeForbidden, "this invitation is for %s; sign in as %s to accept it", in.Email, in.Email)
		}
		return acceptInTx(ctx, tx, hashToken(token), in, user.ID, now)
	})
	return in, err
}

func acceptInTx(ctx context.Context, tx *sql.Tx, hash string, in Invitation, userID string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE invitations SET used_at = ?, used_by = ? WHERE token_hash = ? AND used_at IS NULL`, ms(now), userID, hash)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrInvitationInvalid
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id, user_id) DO NOTHING`, in.TenantID, userID, in.Role, ms(now))
	return err
}

// AcceptPendingInvitations accepts every unspent, unexpired invitation for
// the user's email: a provider that verified the email (Google, OIDC)
// vouches for the invitee as the link would.
func (s *Store) AcceptPendingInvitations(ctx context.Context, user User) ([]Invitation, error) {
	now := s.now()
	var out []Invitation
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, selectInvitation+` WHERE i.email = ? AND i.used_at IS NULL AND i.expires_at > ? ORDER BY i.created_at`,
			strings.ToLower(user.Email), ms(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			in, err := scanInvitation(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, in)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, in := range out {
			if err := acceptInTx(ctx, tx, in.ID, in, user.ID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accepting invitations: %w", err)
	}
	return out, nil
}

// PendingInvitations lists the tenant's unspent, unexpired invitations,
// newest first.
func (s *Store) PendingInvitations(ctx context.Context, tenantID string) ([]Invitation, error) {
	rows, err := s.db.read.QueryContext(ctx, selectInvitation+` WHERE i.tenant_id = ? AND i.used_at IS NULL AND i.expires_at > ? ORDER BY i.created_at DESC`,
		tenantID, ms(s.now()))
	if err != nil {
		return nil, fmt.Errorf("reading invitations: %w", err)
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		in, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// RevokeInvitation withdraws one of the tenant's unspent invitations by
// its ID; ErrNotFound if there is none such.
func (s *Store) RevokeInvitation(ctx context.Context, tenantID, id string) error {
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM invitations WHERE tenant_id = ? AND token_hash = ? AND used_at IS NULL`, tenantID, id)
	if err != nil {
		return fmt.Errorf("revoking an invitation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
