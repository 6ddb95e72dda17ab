package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MessageStatus is what became of a message in the log.
type MessageStatus string

const (
	MsgReceived    MessageStatus = "received"     // stored, waiting for an answer
	MsgPending     MessageStatus = "pending"      // a reply being sent
	MsgReplied     MessageStatus = "replied"      // answered; for a reply: sent
	MsgIgnored     MessageStatus = "ignored"      // not answered, with the reason
	MsgRateLimited MessageStatus = "rate_limited" // over a reply rate limit
	MsgDropped     MessageStatus = "dropped"      // the chat's queue was full
	MsgFailed      MessageStatus = "failed"       // could not be answered or sent
	MsgDuplicate   MessageStatus = "duplicate"    // delivered again; answered once already
)

// MessageStatuses lists every status, in the order filters show them.
var MessageStatuses = []MessageStatus{MsgReceived, MsgPending, MsgReplied, MsgIgnored, MsgRateLimited, MsgDropped, MsgFailed, MsgDuplicate}

// Message is one row of the message log.
type Message struct {
	ID         int64
	TenantID   string
	Direction  string // "in" or "out"
	Chat       string
	Sender     string
	SenderName string
	WAID       string
	Kind       string
	Body       string
	Cut        bool // Body is the start of a longer body
	Status     MessageStatus
	Error      string
	ReplyTo    int64
	Origin     string // what the bot answered with ("rule 2", "hand-over"…; see Reply.Origin); "" otherwise
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Bounds of what the log keeps and returns.
const (
	// MaxBodyBytes is the most of a message's body the log stores (and so
	// the most of a reply that is sent): well above WhatsApp's 4,096
	// characters for a reply, and enough of a long message to read it.
	MaxBodyBytes = 16 << 10
	// MaxPageBytes bounds one page of the log by its bodies' size: a page
	// ends early, with a cursor, rather than carry megabytes.
	MaxPageBytes = 256 << 10
	// maxNameBytes bounds a sender's name as stored.
	maxNameBytes = 256
	// MaxNameBytes is maxNameBytes for the pipeline, which answers a
	// message from memory only when nothing of it was cut.
	MaxNameBytes = maxNameBytes
)

// MessageQuery filters and pages the log, newest first.
type MessageQuery struct {
	Limit     int           // 1..200, default 50
	Before    string        // cursor: rows older than this
	Text      string        // substring of body, chat, sender or sender name
	Direction string        // "in", "out" or ""
	Status    MessageStatus // one of MessageStatuses or ""
	// Preview, when above 0, cuts each body to that many characters, for a
	// table that links to the whole message (Message.Cut says so).
	Preview int
}

// Messages returns one page of the tenant's log and the cursor of the next
// page ("" at the end). A page holds at most q.Limit rows and, beyond its
// first row, at most MaxPageBytes of bodies.
func (s *Store) Messages(ctx context.Context, tenantID string, q MessageQuery) ([]Message, string, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > 200 {
		return nil, "", &Error{Code: CodeInvalid, Msg: "limit must be between 1 and 200", Fields: map[string]string{"limit": "Use 1 to 200."}}
	}
	// Bodies are read cut (in characters, which SQLite's and PostgreSQL's
	// substr count), so even a row logged before bodies were capped costs
	// a bounded read; one character more tells whether it was cut.
	chars := MaxBodyBytes
	if q.Preview > 0 {
		chars = min(q.Preview, chars)
	}
	sqlq := `SELECT id, tenant_id, direction, chat, sender, sender_name, wa_id, kind, substr(body, 1, ?), status, error, COALESCE(reply_to, 0), origin, created_at, updated_at
		FROM messages WHERE tenant_id = ?`
	args := []any{chars + 1, tenantID}
	if q.Before != "" {
		before, err := strconv.ParseInt(q.Before, 10, 64)
		if err != nil || before <= 0 {
			return nil, "", &Error{Code: CodeBadRequest, Msg: "invalid cursor"}
		}
		sqlq += ` AND id < ?`
		args = append(args, before)
	}
	switch q.Direction {
	case "":
	case "in", "out":
		sqlq += ` AND direction = ?`
		args = append(args, q.Direction)
	default:
		return nil, "", &Error{Code: CodeInvalid, Msg: "direction must be in or out", Fields: map[string]string{"direction": "Choose in or out."}}
	}
	if q.Status != "" {
		if !slices.Contains(MessageStatuses, q.Status) {
			names := make([]string, len(MessageStatuses))
			for i, st := range MessageStatuses {
				names[i] = string(st)
			}
			return nil, "", &Error{Code: CodeInvalid, Msg: "unknown status", Fields: map[string]string{"status": "Choose one of " + strings.Join(names, ", ") + "."}}
		}
		sqlq += ` AND status = ?`
		args = append(args, q.Status)
	}
	if t := strings.TrimSpace(q.Text); t != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(t) + "%"
		sqlq += ` AND (body LIKE ? ESCAPE '\' OR chat LIKE ? ESCAPE '\' OR sender LIKE ? ESCAPE '\' OR sender_name LIKE ? ESCAPE '\')`
		args = append(args, like, like, like, like)
	}
	sqlq += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.Limit+1)
	rows, err := s.db.read.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return nil, "", fmt.Errorf("reading messages: %w", err)
	}
	defer rows.Close()
	var out []Message
	more, size := false, 0
	for rows.Next() {
		var m Message
		var created, updated int64
		if err := rows.Scan(&m.ID, &m.TenantID, &m.Direction, &m.Chat, &m.Sender, &m.SenderName, &m.WAID, &m.Kind, &m.Body,
			&m.Status, &m.Error, &m.ReplyTo, &m.Origin, &created, &updated); err != nil {
			return nil, "", err
		}
		m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
		m.Body, m.Cut = cutBody(m.Body, chars)
		size += len(m.Body) + len(m.Error) + len(m.SenderName)
		if len(out) == q.Limit || (len(out) > 0 && size > MaxPageBytes) {
			more = true
			break
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = strconv.FormatInt(out[len(out)-1].ID, 10)
	}
	return out, next, nil
}

// cutBody cuts a body read with substr(body, 1, chars+1) to chars
// characters and MaxBodyBytes bytes, and says whether it cut anything.
func cutBody(body string, chars int) (string, bool) {
	cut := false
	if utf8.RuneCountInString(body) > chars {
		i := 0
		for range chars {
			_, n := utf8.DecodeRuneInString(body[i:])
			i += n
		}
		body, cut = body[:i], true
	}
	if len(body) > MaxBodyBytes {
		body, cut = cutUTF8(body, MaxBodyBytes), true
	}
	return body, cut
}

// MessageByID returns one row of the tenant's log, its body cut to
// MaxBodyBytes.
func (s *Store) MessageByID(ctx context.Context, tenantID string, id int64) (Message, error) {
	m := Message{ID: id, TenantID: tenantID}
	var created, updated int64
	err := s.db.read.QueryRowContext(ctx, `SELECT direction, chat, sender, sender_name, wa_id, kind, substr(body, 1, ?), status, error, COALESCE(reply_to, 0), origin, created_at, updated_at
		FROM messages WHERE id = ? AND tenant_id = ?`, MaxBodyBytes+1, id, tenantID).
		Scan(&m.Direction, &m.Chat, &m.Sender, &m.SenderName, &m.WAID, &m.Kind, &m.Body, &m.Status, &m.Error, &m.ReplyTo, &m.Origin, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("reading message %d: %w", id, err)
	}
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	m.Body, m.Cut = cutBody(m.Body, MaxBodyBytes)
	return m, nil
}
