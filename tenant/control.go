package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Control requests: commands such as `wabot tenant reset ID` run in their
// own process, so they write a request that the running instance carries
// out and answers.

// ControlRequest is an action asked of the running instance.
type ControlRequest struct {
	ID       int64
	TenantID string
	Action   Action
}

// RequestControl writes a request and returns its id.
func (s *Store) RequestControl(ctx context.Context, tenantID string, action Action) (int64, error) {
	var id int64
	err := s.db.write.QueryRowContext(ctx, `INSERT INTO control_requests (tenant_id, action, created_at) VALUES (?, ?, ?) RETURNING id`,
		tenantID, action, ms(s.now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("writing a control request: %w", err)
	}
	return id, nil
}

// ControlResult returns a request's result once done is true.
func (s *Store) ControlResult(ctx context.Context, id int64) (result string, done bool, err error) {
	var doneAt sql.NullInt64
	err = s.db.read.QueryRowContext(ctx, `SELECT done_at, result FROM control_requests WHERE id = ?`, id).Scan(&doneAt, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, ErrNotFound
	}
	if err != nil {
		return "", false, fmt.Errorf("reading control request %d: %w", id, err)
	}
	return result, doneAt.Valid, nil
}

// OpenControlRequests lists requests not carried out yet, oldest first.
func (s *Store) OpenControlRequests(ctx context.Context, limit int) ([]ControlRequest, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, tenant_id, action FROM control_requests WHERE done_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading control requests: %w", err)
	}
	defer rows.Close()
	var out []ControlRequest
	for rows.Next() {
		var r ControlRequest
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Action); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FinishControlRequest records a request's result.
func (s *Store) FinishControlRequest(ctx context.Context, id int64, result string) error {
	_, err := s.db.write.ExecContext(ctx, `UPDATE control_requests SET done_at = ?, result = ? WHERE id = ?`, ms(s.now()), result, id)
	if err != nil {
		return fmt.Errorf("finishing control request %d: %w", id, err)
	}
	return nil
}
