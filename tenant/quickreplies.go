package tenant

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// QuickReply is a saved snippet a person inserts into a reply by typing
// "/" and its shortcut.
type QuickReply struct {
	ID        string
	Shortcut  string // 1–30 of a-z, 0-9, _ and -
	Body      string
	CreatedAt time.Time
}

// Bounds of quick replies.
const (
	MaxQuickReplies    = 200 // per tenant
	MaxQuickReplyChars = 4096
)

var shortcutPattern = regexp.MustCompile(`^[a-z0-9_-]{1,30}$`)

// QuickReplies lists the tenant's quick replies by shortcut.
func (s *Store) QuickReplies(ctx context.Context, tenantID string) ([]QuickReply, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, shortcut, body, created_at FROM quick_replies
		WHERE tenant_id = ? ORDER BY shortcut`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("reading quick replies: %w", err)
	}
	defer rows.Close()
	var out []QuickReply
	for rows.Next() {
		var q QuickReply
		var created int64
		if err := rows.Scan(&q.ID, &q.Shortcut, &q.Body, &created); err != nil {
			return nil, fmt.Errorf("reading quick replies: %w", err)
		}
		q.CreatedAt = fromMS(created)
		out = append(out, q)
	}
	return out, rows.Err()
}

// SaveQuickReply stores a quick reply under its shortcut, replacing the
// body of one the tenant already has with that shortcut. A tenant keeps
// at most MaxQuickReplies.
func (s *Store) SaveQuickReply(ctx context.Context, tenantID, shortcut, body string) (QuickReply, error) {
	shortcut = strings.TrimPrefix(strings.TrimSpace(shortcut), "/")
	fields := map[string]string{}
	if !shortcutPattern.MatchString(shortcut) {
		fields["shortcut"] = "Use 1 to 30 small letters, digits, _ or -."
	}
	switch n := utf8.RuneCountInString(body); {
	case !utf8.ValidString(body) || strings.TrimSpace(body) == "":
		fields["body"] = "Write the text to insert."
	case n > MaxQuickReplyChars:
		fields["body"] = fmt.Sprintf("Use at most %d characters; this text has %d.", MaxQuickReplyChars, n)
	}
	if len(fields) > 0 {
		return QuickReply{}, &Error{Code: CodeInvalid, Msg: "the quick reply has errors", Fields: fields}
	}
	q := QuickReply{ID: "q" + strings.ToLower(rand.Text()[:16]), Shortcut: shortcut, Body: body, CreatedAt: s.now()}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var existing string
		err := tx.QueryRowContext(ctx, `SELECT id FROM quick_replies WHERE tenant_id = ? AND shortcut = ?`, tenantID, shortcut).Scan(&existing)
		if err == nil {
			q.ID = existing
			_, err = tx.ExecContext(ctx, `UPDATE quick_replies SET body = ? WHERE id = ?`, body, existing)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM quick_replies WHERE tenant_id = ?`, tenantID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxQuickReplies {
			return Errorf(CodeInvalid, "this workspace already has %d quick replies, the most it may keep; remove one first", n)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO quick_replies (id, tenant_id, shortcut, body, created_at) VALUES (?, ?, ?, ?, ?)`,
			q.ID, tenantID, shortcut, body, ms(q.CreatedAt))
		return err
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return QuickReply{}, err
		}
		return QuickReply{}, fmt.Errorf("saving a quick reply: %w", err)
	}
	return q, nil
}

// DeleteQuickReply removes one of the tenant's quick replies; another
// tenant's id is ErrNotFound.
func (s *Store) DeleteQuickReply(ctx context.Context, tenantID, id string) error {
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM quick_replies WHERE id = ? AND tenant_id = ?`, id, tenantID)
	if err != nil {
		return fmt.Errorf("removing a quick reply: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
