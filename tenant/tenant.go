package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Status is a tenant's standing with the operator.
type Status string

const (
	StatusPending   Status = "PENDING"   // awaiting an admin's approval
	StatusActive    Status = "ACTIVE"    // the bot may answer
	StatusSuspended Status = "SUSPENDED" // stopped by an admin
	StatusError     Status = "ERROR"     // its session failed for good
)

// Statuses lists every tenant status.
var Statuses = []Status{StatusPending, StatusActive, StatusSuspended, StatusError}

// Tenant is one business using wabot.
type Tenant struct {
	ID        string
	Name      string
	Status    Status
	CreatedAt time.Time
	UpdatedAt time.Time
}

const maxTenantName = 80

// MaxOwnedTenants is how many workspaces one user may create.
const MaxOwnedTenants = 10

// ValidateTenantName trims name and checks it (see ValidateName).
func ValidateTenantName(name string) (string, error) {
	return ValidateName(name, maxTenantName, "workspace")
}

// CreateTenant creates userID's tenant with its session and worker rows
// (its bot configuration is the default until saved); the user becomes its
// owner. A user may own several (an agency runs several businesses), up to
// MaxOwnedTenants, so one account cannot fill the admin's approval queue.
// autoApprove makes it ACTIVE at once, else PENDING.
func (s *Store) CreateTenant(ctx context.Context, userID, name string, autoApprove bool) (Tenant, error) {
	name, err := ValidateTenantName(name)
	if err != nil {
		return Tenant{}, err
	}
	now := fromMS(ms(s.now())) // as stored: UTC, whole milliseconds
	t := Tenant{ID: NewID("t"), Name: name, Status: StatusPending, CreatedAt: now, UpdatedAt: now}
	if autoApprove {
		t.Status = StatusActive
	}
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		var owned int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM memberships WHERE user_id = u.id AND role = 'owner') FROM users u WHERE u.id = ?`,
			userID).Scan(&owned); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if owned >= MaxOwnedTenants {
			return Errorf(CodeConflict, "you already own %d workspaces, the most one person may create", MaxOwnedTenants)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Status, ms(now), ms(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO wa_sessions (tenant_id, state, updated_at) VALUES (?, 'QR_PENDING', ?)`, t.ID, ms(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workers (tenant_id, status, updated_at) VALUES (?, 'STOPPED', ?)`, t.ID, ms(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)`, t.ID, userID, ms(now))
		return err
	})
	if err != nil {
		return Tenant{}, fmt.Errorf("creating tenant: %w", err)
	}
	return t, nil
}

const selectTenant = `SELECT id, name, status, created_at, updated_at FROM tenants`

func scanTenant(row interface{ Scan(...any) error }) (Tenant, error) {
	var t Tenant
	var created, updated int64
	err := row.Scan(&t.ID, &t.Name, &t.Status, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, ErrNotFound
	}
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
	return t, err
}

// TenantByID returns one tenant.
func (s *Store) TenantByID(ctx context.Context, id string) (Tenant, error) {
	return scanTenant(s.db.read.QueryRowContext(ctx, selectTenant+` WHERE id = ?`, id))
}

// TenantOfUser returns the user's first tenant, or ErrNotFound.
func (s *Store) TenantOfUser(ctx context.Context, userID string) (Tenant, error) {
	return scanTenant(s.db.read.QueryRowContext(ctx, selectTenant+` WHERE id = (SELECT tenant_id FROM memberships WHERE user_id = ? ORDER BY created_at, tenant_id LIMIT 1)`, userID))
}

// Tenants lists every tenant, oldest first.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.db.read.QueryContext(ctx, selectTenant+` ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetTenantStatus changes a tenant's status.
func (s *Store) SetTenantStatus(ctx context.Context, id string, status Status) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE tenants SET status = ?, updated_at = ? WHERE id = ?`, status, ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("setting tenant status: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// TransitionTenantStatus changes the status only if it is currently from,
// and reports whether it did (a session failure turns ACTIVE into ERROR, a
// recovery turns ERROR back into ACTIVE, never touching PENDING or
// SUSPENDED).
func (s *Store) TransitionTenantStatus(ctx context.Context, id string, from, to Status) (bool, error) {
	res, err := s.db.write.ExecContext(ctx, `UPDATE tenants SET status = ?, updated_at = ? WHERE id = ? AND status = ?`, to, ms(s.now()), id, from)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
