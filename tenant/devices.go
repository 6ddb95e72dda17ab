package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// DeviceJID returns the JID of the tenant's WhatsApp device in a shared
// device store; "" when it has none (never linked, or reset).
func (s *Store) DeviceJID(ctx context.Context, tenantID string) (string, error) {
	var jid string
	err := s.db.read.QueryRowContext(ctx, `SELECT jid FROM tenant_devices WHERE tenant_id = ?`, tenantID).Scan(&jid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the device of tenant %s: %w", tenantID, err)
	}
	return jid, nil
}

// SetDeviceJID records jid as the tenant's device, replacing an earlier
// one. A device that another tenant holds is refused: nothing is shared.
func (s *Store) SetDeviceJID(ctx context.Context, tenantID, jid string) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM tenant_devices WHERE jid = ?`, jid).Scan(&owner)
		if err == nil && owner != tenantID {
			return Errorf(CodeConflict, "the WhatsApp device %s belongs to another workspace", jid)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tenant_devices (tenant_id, jid, linked_at) VALUES (?, ?, ?)
			ON CONFLICT (tenant_id) DO UPDATE SET jid = excluded.jid, linked_at = excluded.linked_at`, tenantID, jid, ms(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the device of tenant %s: %w", tenantID, err)
	}
	return nil
}

// ForgetDevice removes the tenant's device record (reset, logout).
func (s *Store) ForgetDevice(ctx context.Context, tenantID string) error {
	if _, err := s.db.write.ExecContext(ctx, `DELETE FROM tenant_devices WHERE tenant_id = ?`, tenantID); err != nil {
		return fmt.Errorf("forgetting the device of tenant %s: %w", tenantID, err)
	}
	return nil
}
