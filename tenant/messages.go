package tenant

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
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
	Status     MessageStatus
	Error      string
	ReplyTo    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// MessageQuery filters and pages the log, newest first.
type MessageQuery struct {
	Limit     int           // 1..200, default 50
	Before    string        // cursor: rows older than this
	Text      string        // substring of body, chat, sender or sender name
	Direction string        // "in", "out" or ""
	Status    MessageStatus // one of MessageStatuses or ""
}

// Messages returns one page of the tenant's log and the cursor of the next
// page ("" at the end).
func (s *Store) Messages(ctx context.Context, tenantID string, q MessageQuery) ([]Message, string, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > 200 {
		return nil, "", &Error{Code: CodeInvalid, Msg: "limit must be between 1 and 200", Fields: map[string]string{"limit": "Use 1 to 200."}}
	}
	sqlq := `SELECT id, tenant_id, direction, chat, sender, sender_name, wa_id, kind, body, status, error, COALESCE(reply_to, 0), created_at, updated_at
		FROM messages WHERE tenant_id = ?`
	args := []any{tenantID}
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
	for rows.Next() {
		var m Message
		var created, updated int64
		if err := rows.Scan(&m.ID, &m.TenantID, &m.Direction, &m.Chat, &m.Sender, &m.SenderName, &m.WAID, &m.Kind, &m.Body,
			&m.Status, &m.Error, &m.ReplyTo, &created, &updated); err != nil {
			return nil, "", err
		}
		m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = strconv.FormatInt(out[len(out)-1].ID, 10)
	}
	return out, next, nil
}
