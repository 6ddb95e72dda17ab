package tenant

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// One conversation per person: WhatsApp may address a person by a linked
// id (…@lid) before wabot learns their number, and the log then holds a
// chat under the LID. Once the number is known, MergeChat moves that
// history under the number's chat, where everything after it is stored.

// MergeChat moves the tenant's chat from (a LID) into to (the person's
// phone-number JID): messages, with an inbound sender of from becoming
// to, the welcome mark, and the chat's state when to has none of its own
// (the number's chat keeps its own state). An inbound message stored
// under both stays where it is, as WhatsApp delivered it twice. It
// returns how many messages moved. Tables keyed by chat that come later
// must be moved here too.
func (s *Store) MergeChat(ctx context.Context, tenantID, from, to string) (int64, error) {
	if from == to || !strings.HasSuffix(from, "@lid") || !strings.HasSuffix(to, "@s.whatsapp.net") {
		return 0, fmt.Errorf("merging chat %s into %s: only a LID merges into a phone number", from, to)
	}
	var moved int64
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, mergeChatMessages, to, from, to, tenantID, from, to)
		if err != nil {
			return err
		}
		if moved, err = res.RowsAffected(); err != nil {
			return err
		}
		for _, q := range []string{mergeChatWelcomed, mergeChatState} {
			if _, err := tx.ExecContext(ctx, q, to, tenantID, from, to); err != nil {
				return err
			}
		}
		for _, table := range []string{"welcomed_chats", "chats"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant_id = ? AND chat = ?`, tenantID, from); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("merging chat %s into %s: %w", from, to, err)
	}
	return moved, nil
}

const (
	// Arguments: to, from, to, tenant, from, to.
	mergeChatMessages = `UPDATE messages SET chat = ?, sender = CASE WHEN direction = 'in' AND sender = ? THEN ? ELSE sender END
		WHERE tenant_id = ? AND chat = ? AND NOT (direction = 'in' AND status <> 'duplicate' AND EXISTS (
			SELECT 1 FROM messages m WHERE m.tenant_id = messages.tenant_id AND m.chat = ? AND m.wa_id = messages.wa_id
			AND m.direction = 'in' AND m.status <> 'duplicate'))`
	// Arguments: to, tenant, from, to.
	mergeChatWelcomed = `INSERT INTO welcomed_chats (tenant_id, chat, at) SELECT tenant_id, ?, at FROM welcomed_chats
		WHERE tenant_id = ? AND chat = ? AND NOT EXISTS (SELECT 1 FROM welcomed_chats w WHERE w.tenant_id = welcomed_chats.tenant_id AND w.chat = ?)`
	mergeChatState = `UPDATE chats SET chat = ? WHERE tenant_id = ? AND chat = ?
		AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.tenant_id = chats.tenant_id AND c.chat = ?)`
)
