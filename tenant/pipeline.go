package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The message pipeline's rows: an inbound message is stored before
// WhatsApp is told it arrived, and each reply is logged as pending, with
// its WhatsApp id, before it is sent.

// Inbound is an incoming message as the pipeline stores and answers it.
type Inbound struct {
	ID         int64
	Chat       string // JID of the chat
	Sender     string // JID of the sender, without device
	SenderName string
	WAID       string
	Kind       string
	Body       string
	Status     MessageStatus
	Error      string
	CreatedAt  time.Time
	// Media, when the message carries any, is stored with it
	// (AddMessageMedia says how); StoreInbound ignores it on a duplicate.
	Media *MessageMedia
}

// Reply is an outgoing message answering an inbound one.
type Reply struct {
	ID     int64
	InID   int64 // the inbound message it answers
	Chat   string
	Sender string // the tenant's own JID
	WAID   string // "" when it never got one (rate limited)
	Body   string
	Status MessageStatus
	Error  string
	// Attachment, when set, is sent with it, Body its caption; it is
	// logged as the reply's media (linkReplyFile).
	Attachment *RuleAttachment
	// Origin says what the bot answered with: OriginRule(n), OriginWelcome,
	// OriginFallback, OriginWebhook, OriginHandover or OriginBusy.
	Origin string
	// TextOnly says LogReplies wrote it without a file: the sender need
	// not look for one. Replies read back from the log leave it false.
	TextOnly bool
}

// What wrote a bot reply, as messages.origin keeps it.
const (
	OriginWelcome  = "welcome"
	OriginFallback = "fallback"
	OriginWebhook  = "webhook"
	OriginHandover = "hand-over"
	OriginBusy     = "busy"
)

// OriginRule is the origin of a reply by the configuration's rule n,
// counted from 1 as the Bot page shows them.
func OriginRule(n int) string { return fmt.Sprintf("rule %d", n) }

// StoreInbound writes the inbound row, its body cut to MaxBodyBytes. A
// message already stored (same chat and WhatsApp id) is logged once more
// as a duplicate, and dup is true.
func (s *Store) StoreInbound(ctx context.Context, tenantID string, in Inbound) (id int64, dup bool, err error) {
	now := ms(s.now())
	in.Body = cutUTF8(in.Body, MaxBodyBytes)
	in.SenderName = cutUTF8(in.SenderName, maxNameBytes)
	if in.Media != nil {
		md := *in.Media
		if err := md.prepare(); err != nil {
			return 0, false, err
		}
		in.Media = &md
	}
	var queued int
	err = s.fencedGroup(ctx, func(tx *sql.Tx) error {
		queued, dup = 0, false
		err := tx.QueryRowContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, sender, sender_name, wa_id, kind, body, status, error, created_at, updated_at)
			VALUES (?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, chat, wa_id) WHERE direction = 'in' AND status <> 'duplicate' DO NOTHING
			RETURNING id`,
			tenantID, in.Chat, in.Sender, in.SenderName, in.WAID, in.Kind, in.Body, in.Status, in.Error, now, now).Scan(&id)
		if err == nil && in.Media != nil {
			err = addMessageMedia(ctx, tx, tenantID, id, *in.Media, now)
		}
		if err == nil {
			// message.received commits with the message (events.go).
			queued, err = s.inboundEvent(ctx, tx, tenantID, id, in)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		dup = true
		_, err = tx.ExecContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, sender, sender_name, wa_id, kind, body, status, error, created_at, updated_at)
			VALUES (?, 'in', ?, ?, ?, ?, ?, ?, 'duplicate', 'delivered again; answered once already', ?, ?)`,
			tenantID, in.Chat, in.Sender, in.SenderName, in.WAID, in.Kind, in.Body, now, now)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("storing an inbound message: %w", err)
	}
	s.eventsQueued(queued)
	return id, dup, nil
}

// Unanswered lists the tenant's inbound messages still waiting for an
// answer, oldest first: what an earlier run stored but did not finish.
func (s *Store) Unanswered(ctx context.Context, tenantID string) ([]Inbound, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, chat FROM messages
		WHERE tenant_id = ? AND direction = 'in' AND status = 'received' ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("reading unanswered messages: %w", err)
	}
	defer rows.Close()
	var out []Inbound
	for rows.Next() {
		in := Inbound{Status: MsgReceived}
		if err := rows.Scan(&in.ID, &in.Chat); err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// InboundByID returns one of the tenant's inbound messages.
func (s *Store) InboundByID(ctx context.Context, tenantID string, id int64) (Inbound, error) {
	in := Inbound{ID: id}
	var at int64
	err := s.db.read.QueryRowContext(ctx, `SELECT chat, sender, sender_name, body, kind, wa_id, status, error, created_at
		FROM messages WHERE id = ? AND tenant_id = ? AND direction = 'in'`, id, tenantID).
		Scan(&in.Chat, &in.Sender, &in.SenderName, &in.Body, &in.Kind, &in.WAID, &in.Status, &in.Error, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return in, ErrNotFound
	}
	if err != nil {
		return in, fmt.Errorf("reading message %d: %w", id, err)
	}
	in.CreatedAt = fromMS(at)
	return in, nil
}

// SetInboundStatus records what became of an inbound message.
func (s *Store) SetInboundStatus(ctx context.Context, id int64, status MessageStatus, reason string) error {
	err := s.inGroup(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE messages SET status = ?, error = ?, updated_at = ? WHERE id = ? AND direction = 'in'`,
			status, reason, ms(s.now()), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("updating message %d: %w", id, err)
	}
	return nil
}

// LogReplies writes the replies to one inbound message in one
// transaction, so a crash leaves all of them or none. A welcome is written
// first, and only if the chat never had one (it is then recorded as
// welcomed); decide sets each written reply's status and WhatsApp id
// (pending, or rate limited) as it is written. Bodies are cut to
// MaxBodyBytes. It returns the replies written, with their ids and bodies
// as stored.
func (s *Store) LogReplies(ctx context.Context, tenantID string, welcome *Reply, replies []Reply, decide func(Reply) Reply) ([]Reply, error) {
	now := ms(s.now())
	var written []Reply
	err := s.fencedGroup(ctx, func(tx *sql.Tx) error {
		var err error
		written, err = logRepliesTx(ctx, tx, tenantID, welcome, replies, decide, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("logging replies: %w", err)
	}
	return written, nil
}

// logRepliesTx is LogReplies inside tx, for callers that write more with
// the replies (HandOver).
func logRepliesTx(ctx context.Context, tx *sql.Tx, tenantID string, welcome *Reply, replies []Reply, decide func(Reply) Reply, now int64) ([]Reply, error) {
	all := replies
	if welcome != nil {
		res, err := tx.ExecContext(ctx, `INSERT INTO welcomed_chats (tenant_id, chat, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			tenantID, welcome.Chat, now)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			all = append([]Reply{*welcome}, replies...)
		}
	}
	var written []Reply
	for _, r := range all {
		r = decide(r)
		// What is logged is what is sent: the caller sends the written
		// rows.
		r.Body = cutUTF8(r.Body, MaxBodyBytes)
		waID := r.WAID
		if waID == "" {
			waID = "-"
		}
		kind, err := replyKind(ctx, tx, tenantID, &r)
		if err != nil {
			return nil, err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, sender, wa_id, kind, body, status, error, reply_to, origin, created_at, updated_at)
			VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			tenantID, r.Chat, r.Sender, waID, kind, r.Body, r.Status, r.Error, r.InID, r.Origin, now, now).Scan(&r.ID); err != nil {
			return nil, err
		}
		if err := linkReplyFile(ctx, tx, tenantID, r, fromMS(now)); err != nil {
			return nil, err
		}
		r.TextOnly = r.Attachment == nil
		written = append(written, r)
	}
	return written, nil
}

// SetReplyStatus records what became of a reply; a sent reply gets its
// sending time.
func (s *Store) SetReplyStatus(ctx context.Context, id int64, status MessageStatus, reason string) error {
	return s.FinishReply(ctx, id, status, reason, 0, "")
}

// FinishReply is SetReplyStatus and, when inID is not 0, SetInboundStatus
// of the message it answered (to inStatus, no reason) in the same write:
// a message's last reply and the message itself are settled together.
func (s *Store) FinishReply(ctx context.Context, id int64, status MessageStatus, reason string, inID int64, inStatus MessageStatus) error {
	now := ms(s.now())
	var sentAt sql.NullInt64
	if status == MsgReplied {
		sentAt = sql.NullInt64{Int64: now, Valid: true}
	}
	var queued int
	err := s.fencedGroup(ctx, func(tx *sql.Tx) error {
		queued = 0
		if inID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = ?, error = '', updated_at = ? WHERE id = ? AND direction = 'in'`,
				inStatus, now, inID); err != nil {
				return err
			}
		}
		// A pending reply's first outcome is the common case and news to
		// subscribers: one statement finds and changes it.
		var tenantID string
		err := tx.QueryRowContext(ctx, `UPDATE messages SET status = ?, error = ?, sent_at = COALESCE(?, sent_at), updated_at = ?
			WHERE id = ? AND direction = 'out' AND status = 'pending' RETURNING tenant_id`,
			status, reason, sentAt, now, id).Scan(&tenantID)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, `UPDATE messages SET status = ?, error = ?, sent_at = COALESCE(?, sent_at), updated_at = ? WHERE id = ? AND direction = 'out'`,
				status, reason, sentAt, now, id)
			return err // no first outcome: nothing to tell
		}
		if err != nil {
			return err
		}
		if status != MsgReplied && status != MsgFailed {
			return nil
		}
		// A bot reply is told like an API send: message.sent, then the
		// delivery a receipt that overtook the send already recorded. The
		// message is read only for a subscriber that wants to hear it.
		subs, err := s.subscribersTx(ctx, tx, tenantID, EventMessageSent)
		if err != nil {
			return err
		}
		toSent, toStatus := wanting(subs, EventMessageSent), wanting(subs, EventMessageStatus)
		if len(toSent) == 0 && len(toStatus) == 0 {
			return nil
		}
		m, err := apiMessageTx(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if status == MsgFailed {
			n, err := s.queueEventTo(ctx, tx, tenantID, EventMessageStatus, MessageStatusEventOf(m), toStatus)
			queued += n
			return err
		}
		sent := MessageStatusEventOf(m)
		sent.Status, sent.At = APISent, m.SentAt
		n, err := s.queueEventTo(ctx, tx, tenantID, EventMessageSent, sent, toSent)
		queued += n
		if err != nil || m.Status == APISent {
			return err
		}
		n, err = s.queueEventTo(ctx, tx, tenantID, EventMessageStatus, MessageStatusEventOf(m), toStatus)
		queued += n
		return err
	})
	if err != nil {
		return fmt.Errorf("updating reply %d: %w", id, err)
	}
	s.eventsQueued(queued)
	return nil
}

// RepliesTo lists the replies logged for an inbound message, in order.
func (s *Store) RepliesTo(ctx context.Context, inID int64) ([]Reply, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, chat, sender, wa_id, body, status, error, origin FROM messages
		WHERE reply_to = ? AND direction = 'out' ORDER BY id`, inID)
	if err != nil {
		return nil, fmt.Errorf("reading replies to %d: %w", inID, err)
	}
	defer rows.Close()
	var out []Reply
	for rows.Next() {
		r := Reply{InID: inID}
		if err := rows.Scan(&r.ID, &r.Chat, &r.Sender, &r.WAID, &r.Body, &r.Status, &r.Error, &r.Origin); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AbandonOpen closes every message of the tenant still waiting: inbound
// messages not answered become ignored and replies not sent become
// failed, both with reason. A reset link uses it: what the old number
// received must not be answered from the next one. It returns how many
// rows it closed.
func (s *Store) AbandonOpen(ctx context.Context, tenantID, reason string) (int64, error) {
	var n int64
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		now := ms(s.now())
		for _, q := range []string{
			`UPDATE messages SET status = 'ignored', error = ?, updated_at = ? WHERE tenant_id = ? AND direction = 'in' AND status = 'received'`,
			`UPDATE messages SET status = 'failed', reason = 'session_logged_out', error = ?, updated_at = ? WHERE tenant_id = ? AND direction = 'out' AND status = 'pending'`,
		} {
			res, err := tx.ExecContext(ctx, q, reason, now, tenantID)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("closing open messages: %w", err)
	}
	return n, nil
}

// removeBatch is how many rows one retention statement deletes: each is
// its own short transaction, so the single writer is never held for long
// and a run cut short keeps what it removed.
const removeBatch = 1000

// RemoveOldMessages deletes log rows created before cutoff, keeping those
// still waiting for an answer, and outbox rows that are done, in batches;
// then, with a MediaStore attached, the files whose last message went. It
// returns how many messages it removed.
func (s *Store) RemoveOldMessages(ctx context.Context, cutoff time.Time) (int64, error) {
	if _, err := s.deleteInBatches(ctx, `DELETE FROM webhook_deliveries WHERE id IN
		(SELECT id FROM webhook_deliveries WHERE created_at < ? AND status <> 'pending' LIMIT ?)`, ms(cutoff)); err != nil {
		return 0, fmt.Errorf("removing old webhook deliveries: %w", err)
	}
	n, err := s.deleteInBatches(ctx, `DELETE FROM messages WHERE id IN
		(SELECT id FROM messages WHERE created_at < ? AND status NOT IN ('received', 'pending') LIMIT ?)`, ms(cutoff))
	if err != nil {
		return n, fmt.Errorf("removing old messages: %w", err)
	}
	if s.media != nil {
		if _, _, err := s.media.RemoveUnreferenced(ctx); err != nil {
			return n, err
		}
	}
	return n, nil
}

// deleteInBatches runs a DELETE taking (cutoff, limit) until it removes
// less than a batch, letting other writers in between.
func (s *Store) deleteInBatches(ctx context.Context, q string, cutoff int64) (int64, error) {
	var total int64
	for {
		res, err := s.db.write.ExecContext(ctx, q, cutoff, removeBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < removeBatch {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
