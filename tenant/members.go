package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Role is what a member may do in a tenant.
type Role string

const (
	RoleOwner Role = "owner" // everything
	RoleAgent Role = "agent" // the conversations only
)

// ValidRole reports whether r is a role wabot knows.
func ValidRole(r Role) bool { return r == RoleOwner || r == RoleAgent }

// Membership is one tenant a user belongs to, as the tenant switcher shows it.
type Membership struct {
	TenantID   string
	TenantName string
	Role       Role
}

// Member is one person of a tenant, as the Members page shows them.
type Member struct {
	UserID    string
	Email     string
	Name      string
	Role      Role
	CreatedAt time.Time
}

// Memberships lists the user's tenants, the first joined first (the
// default current tenant).
func (s *Store) Memberships(ctx context.Context, userID string) ([]Membership, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT m.tenant_id, t.name, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
		WHERE m.user_id = ? ORDER BY m.created_at, m.tenant_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("reading memberships: %w", err)
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.TenantID, &m.TenantName, &m.Role); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RoleOf returns the user's role in the tenant, or ErrNotFound if they
// are not a member.
func (s *Store) RoleOf(ctx context.Context, tenantID, userID string) (Role, error) {
	var r Role
	err := s.db.read.QueryRowContext(ctx, `SELECT role FROM memberships WHERE tenant_id = ? AND user_id = ?`, tenantID, userID).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return r, err
}

// Members lists the tenant's people, owners first, then by joining.
func (s *Store) Members(ctx context.Context, tenantID string) ([]Member, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = ? ORDER BY CASE m.role WHEN 'owner' THEN 0 ELSE 1 END, m.created_at, u.email`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("reading members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		var at int64
		if err := rows.Scan(&m.UserID, &m.Email, &m.Name, &m.Role, &at); err != nil {
			return nil, err
		}
		m.CreatedAt = fromMS(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

var errLastOwner = Errorf(CodeConflict, "a workspace needs an owner: make someone else owner first")

// SetRole changes a member's role. The last owner stays owner, so a
// workspace is never left without one.
func (s *Store) SetRole(ctx context.Context, tenantID, userID string, role Role) error {
	if !ValidRole(role) {
		return &Error{Code: CodeInvalid, Msg: "unknown role", Fields: map[string]string{"role": "Choose owner or agent."}}
	}
	return s.db.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := roleInTx(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		if cur == RoleOwner && role != RoleOwner {
			if err := otherOwnerExists(ctx, tx, tenantID, userID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE memberships SET role = ? WHERE tenant_id = ? AND user_id = ?`, role, tenantID, userID)
		return err
	})
}

// RemoveMember takes the user out of the tenant; never its last owner.
// Chats assigned to them become unassigned.
func (s *Store) RemoveMember(ctx context.Context, tenantID, userID string) error {
	return s.db.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := roleInTx(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		if cur == RoleOwner {
			if err := otherOwnerExists(ctx, tx, tenantID, userID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE tenant_id = ? AND user_id = ?`, tenantID, userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE chats SET assigned_to = NULL WHERE tenant_id = ? AND assigned_to = ?`, tenantID, userID)
		return err
	})
}

func roleInTx(ctx context.Context, tx *sql.Tx, tenantID, userID string) (Role, error) {
	var r Role
	err := tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE tenant_id = ? AND user_id = ?`, tenantID, userID).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return r, err
}

func otherOwnerExists(ctx context.Context, tx *sql.Tx, tenantID, userID string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND role = 'owner' AND user_id <> ?`,
		tenantID, userID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return errLastOwner
	}
	return nil
}
