package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ChatState is a conversation's own state in the inbox: whether a person
// has taken over from the bot, who it is assigned to, what has been read,
// and the business's name and note for the contact. A chat with no state
// of its own has the zero value (bot on, unassigned, nothing read).
type ChatState struct {
	TenantID    string
	Chat        string // the chat's JID
	ContactName string
	Note        string
	BotPaused   bool
	PausedAt    time.Time
	PausedBy    string // a user id, or PausedByKeyword
	Waiting     bool   // the customer waits for a person
	LastHumanAt time.Time
	AssignedTo  string // a user id, "" when unassigned
	LastReadID  int64  // inbound messages up to this id are read
	UpdatedAt   time.Time
}

// PausedByKeyword marks a chat paused by the bot's hand-over keyword.
const PausedByKeyword = "keyword"

const chatStateColumns = `tenant_id, chat, contact_name, note, bot_paused, paused_at, paused_by, waiting, last_human_at,
	COALESCE(assigned_to, ''), last_read_id, updated_at`

func scanChatState(r rowScanner) (ChatState, error) {
	var c ChatState
	var paused, waiting int
	var pausedAt, humanAt sql.NullInt64
	var updated int64
	err := r.Scan(&c.TenantID, &c.Chat, &c.ContactName, &c.Note, &paused, &pausedAt, &c.PausedBy, &waiting, &humanAt,
		&c.AssignedTo, &c.LastReadID, &updated)
	c.BotPaused, c.Waiting = paused != 0, waiting != 0
	if pausedAt.Valid {
		c.PausedAt = fromMS(pausedAt.Int64)
	}
	if humanAt.Valid {
		c.LastHumanAt = fromMS(humanAt.Int64)
	}
	c.UpdatedAt = fromMS(updated)
	return c, err
}

// ChatStateOf returns a chat's state; a chat without any has the zero
// state (with TenantID and Chat set).
func (s *Store) ChatStateOf(ctx context.Context, tenantID, chat string) (ChatState, error) {
	c, err := scanChatState(s.db.read.QueryRowContext(ctx, `SELECT `+chatStateColumns+` FROM chats WHERE tenant_id = ? AND chat = ?`, tenantID, chat))
	if errors.Is(err, sql.ErrNoRows) {
		return ChatState{TenantID: tenantID, Chat: chat}, nil
	}
	if err != nil {
		return c, fmt.Errorf("reading the state of chat %s: %w", chat, err)
	}
	return c, nil
}

// upsertChat makes sure the chat has a row, then runs set (an UPDATE's SET
// list and its arguments) on it.
func (s *Store) upsertChat(ctx context.Context, tenantID, chat, set string, args ...any) error {
	now := ms(s.now())
	return s.fencedTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO chats (tenant_id, chat, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (tenant_id, chat) DO NOTHING`, tenantID, chat, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE chats SET `+set+`, updated_at = ? WHERE tenant_id = ? AND chat = ?`,
			append(append(args, now), tenantID, chat)...)
		return err
	})
}

// PauseBot makes the bot stay silent in a chat: a person (user id by, or
// PausedByKeyword) has taken over. waiting marks the customer as waiting
// for a person.
func (s *Store) PauseBot(ctx context.Context, tenantID, chat, by string, waiting bool) error {
	if err := s.upsertChat(ctx, tenantID, chat, `bot_paused = 1, paused_at = ?, paused_by = ?, waiting = ?`,
		ms(s.now()), by, boolInt(waiting)); err != nil {
		return fmt.Errorf("pausing the bot in a chat: %w", err)
	}
	return nil
}

// ResumeBot lets the bot answer in a chat again; nobody is waiting.
func (s *Store) ResumeBot(ctx context.Context, tenantID, chat string) error {
	if err := s.upsertChat(ctx, tenantID, chat, `bot_paused = 0, paused_at = NULL, paused_by = '', waiting = 0`); err != nil {
		return fmt.Errorf("resuming the bot in a chat: %w", err)
	}
	return nil
}
