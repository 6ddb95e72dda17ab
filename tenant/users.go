package tenant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is a person who signs in to the portal.
type User struct {
	ID          string
	Email       string
	Name        string
	IsAdmin     bool
	TenantID    string // the current tenant; empty until they create or join one
	CreatedAt   time.Time
	LastLoginAt time.Time
}

// Identity is what a sign-in provider vouches for.
type Identity struct {
	Provider string // "google", "oidc", "link"
	Subject  string // the provider's stable user id
	Email    string // verified
	Name     string
}

// selectUser's tenant is the user's first membership: the portal replaces
// it with the browser session's current tenant.
const selectUser = `SELECT id, email, name, is_admin,
	COALESCE((SELECT m.tenant_id FROM memberships m WHERE m.user_id = users.id ORDER BY m.created_at, m.tenant_id LIMIT 1), ''),
	created_at, last_login_at FROM users`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	var last sql.NullInt64
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.IsAdmin, &u.TenantID, &created, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	u.CreatedAt, u.LastLoginAt = fromMS(created), fromNullMS(last)
	return u, err
}

// UserByID returns one user.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	return scanUser(s.db.read.QueryRowContext(ctx, selectUser+` WHERE id = ?`, id))
}

// UserByEmail returns the user with that email (case-insensitive).
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return scanUser(s.db.read.QueryRowContext(ctx, selectUser+` WHERE email = ?`, strings.ToLower(strings.TrimSpace(email))))
}

// SignIn finds or creates the user for a verified identity and records
// the login. A known (provider, subject) always maps to its user even if
// the email changed; a new one joins the user with the same verified email,
// or creates one. makeAdmin grants admin (it never revokes).
func (s *Store) SignIn(ctx context.Context, id Identity, makeAdmin bool) (User, error) {
	email := strings.ToLower(strings.TrimSpace(id.Email))
	if email == "" || id.Subject == "" || id.Provider == "" {
		return User{}, Errorf(CodeForbidden, "the sign-in provider did not give a verified email")
	}
	// A provider's display name is cleaned, not refused: the person
	// cannot change it here.
	id.Name = CleanName(id.Name)
	now := s.now()
	var userID string
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM identities WHERE provider = ? AND subject = ?`, id.Provider, id.Subject).Scan(&userID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if userID == "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE email = ?`, email).Scan(&userID)
			if errors.Is(err, sql.ErrNoRows) {
				userID = NewID("u")
				if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?)`, userID, email, id.Name, ms(now)); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO identities (provider, subject, user_id, created_at) VALUES (?, ?, ?, ?)`,
				id.Provider, id.Subject, userID, ms(now)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET last_login_at = ?, name = CASE WHEN ? <> '' THEN ? ELSE name END,
			is_admin = CASE WHEN ? = 1 THEN 1 ELSE is_admin END WHERE id = ?`, ms(now), id.Name, id.Name, makeAdmin, userID); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("signing in: %w", err)
	}
	return s.userByIDWrite(ctx, userID)
}

// userByIDWrite reads through the writer, to see a row just written.
func (s *Store) userByIDWrite(ctx context.Context, id string) (User, error) {
	return scanUser(s.db.write.QueryRowContext(ctx, selectUser+` WHERE id = ?`, id))
}

// EnsureUser finds or creates the user with email (for login links and
// the admin command).
func (s *Store) EnsureUser(ctx context.Context, email string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !ValidEmail(email) {
		return User{}, Errorf(CodeInvalid, "%q is not an email address", email)
	}
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO users (id, email, created_at) VALUES (?, ?, ?) ON CONFLICT (email) DO NOTHING`,
		NewID("u"), email, ms(s.now()))
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	return scanUser(s.db.write.QueryRowContext(ctx, selectUser+` WHERE email = ?`, email))
}

// GrantAdmin makes the user with email an admin, creating the user if
// needed.
func (s *Store) GrantAdmin(ctx context.Context, email string) (User, error) {
	u, err := s.EnsureUser(ctx, email)
	if err != nil {
		return User{}, err
	}
	if _, err := s.db.write.ExecContext(ctx, `UPDATE users SET is_admin = 1 WHERE id = ?`, u.ID); err != nil {
		return User{}, err
	}
	u.IsAdmin = true
	return u, nil
}

// AdminExists reports whether any user is an admin.
func (s *Store) AdminExists(ctx context.Context) (bool, error) {
	var n int
	err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE is_admin = 1`).Scan(&n)
	return n > 0, err
}

// ValidEmail is wabot's one check of an email address: something before
// and after the last "@", nothing that would break a header or a list,
// and nothing a name may not hold (it is shown like one).
func ValidEmail(e string) bool {
	at := strings.LastIndexByte(e, '@')
	return at > 0 && at < len(e)-1 && !strings.ContainsAny(e, " \t\r\n<>,;\"") && len(e) <= 254 && ValidName(e)
}

// LoginLinkTTL is how long a one-time sign-in link stays valid.
const LoginLinkTTL = 15 * time.Minute

// CreateLoginLink stores a one-time sign-in token for email, hashed, and
// returns the token.
func (s *Store) CreateLoginLink(ctx context.Context, email string, admin bool) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !ValidEmail(email) {
		return "", Errorf(CodeInvalid, "%q is not an email address", email)
	}
	token := rand.Text()
	now := s.now()
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO login_links (token_hash, email, admin, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hashToken(token), email, admin, ms(now), ms(now.Add(LoginLinkTTL)))
	if err != nil {
		return "", fmt.Errorf("storing login link: %w", err)
	}
	return token, nil
}

// LoginLinkEmail says whom an unspent, unexpired token would sign in, and
// whether as an admin, without spending it: the link's page asks before a
// POST signs in, so a mail client's link scanner or a lured click spends
// nothing.
func (s *Store) LoginLinkEmail(ctx context.Context, token string) (email string, admin bool, err error) {
	err = s.db.read.QueryRowContext(ctx, `SELECT email, admin FROM login_links WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`,
		hashToken(token), ms(s.now())).Scan(&email, &admin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, errLoginLinkInvalid
	}
	return email, admin, err
}

var errLoginLinkInvalid = &Error{Code: CodeForbidden, Msg: "this sign-in link is invalid, expired or already used; ask for a new one"}

// ConsumeLoginLink spends a token once and signs its user in. Unknown,
// used and expired tokens are all refused alike.
func (s *Store) ConsumeLoginLink(ctx context.Context, token string) (User, error) {
	var email string
	var admin bool
	now := s.now()
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE login_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
			RETURNING email, admin`, ms(now), hashToken(token), ms(now)).Scan(&email, &admin)
		if errors.Is(err, sql.ErrNoRows) {
			return errLoginLinkInvalid
		}
		return err
	})
	if err != nil {
		return User{}, err
	}
	return s.SignIn(ctx, Identity{Provider: "link", Subject: email, Email: email}, admin)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// AuditEntry is one admin action.
type AuditEntry struct {
	ID         int64
	At         time.Time
	ActorID    string
	ActorEmail string
	Action     string
	TenantID   string
	Detail     string
}

// Audit records an admin action.
func (s *Store) Audit(ctx context.Context, actor User, action, tenantID, detail string) error {
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO audit_log (at, actor_id, actor_email, action, tenant_id, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(s.now()), actor.ID, actor.Email, action, nullString(tenantID), detail)
	if err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	return nil
}

// AuditLog returns the newest entries first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, at, actor_id, actor_email, action, COALESCE(tenant_id, ''), detail
		FROM audit_log ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.ActorID, &e.ActorEmail, &e.Action, &e.TenantID, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
