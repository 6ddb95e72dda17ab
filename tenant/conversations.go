package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The inbox: the tenant's chats as conversations (newest first, with
// unread counts and who answers), a chat's thread, and the per-chat
// actions of a person (read, name and note, assignment).

// Conversation is one chat of the conversations list.
type Conversation struct {
	Chat        string // the chat's JID
	Name        string // the business's name for the contact, else the last name the contact sent
	ContactName string // the business's own name, "" when it set none
	Phone       string // "+15551234567"; "" for a group
	Last        Message
	Unread      int // inbound messages after the read mark
	BotPaused   bool
	Waiting     bool   // the customer waits for a person
	AssignedTo  string // a user id, "" when unassigned
}

// ConversationQuery filters and pages the conversations list.
type ConversationQuery struct {
	Search     string // a substring of the name, the number or any message's text
	Unread     bool   // only chats with unread messages
	AssignedTo string // only chats assigned to this user
	Paused     bool   // only chats where the bot is paused
	Cursor     string // the previous page's next
	Limit      int    // 1..200, default 50
}

// conversationPreview is how many characters of the last message the
// list shows.
const conversationPreview = 200

// conversationsSQL groups the tenant's messages by chat (an index-only
// pass over messages_chat_live) and joins each chat's own state; the
// filters are added to its WHERE.
const conversationsSQL = `WITH g AS (
	SELECT chat, MAX(id) AS last_id, MAX(CASE WHEN direction = 'in' THEN id ELSE 0 END) AS last_in
	FROM messages WHERE tenant_id = ? AND status <> 'duplicate' GROUP BY chat)
SELECT g.chat, g.last_id, COALESCE(c.contact_name, ''), COALESCE(c.bot_paused, 0), COALESCE(c.waiting, 0),
	COALESCE(c.assigned_to, ''), COALESCE(c.last_read_id, 0)
FROM g LEFT JOIN chats c ON c.tenant_id = ? AND c.chat = g.chat
WHERE g.last_id < ?`

// Conversations returns a page of the tenant's chats, the most recently
// active first, and the cursor of the next page ("" at the end).
func (s *Store) Conversations(ctx context.Context, tenantID string, q ConversationQuery) ([]Conversation, string, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 200 {
		return nil, "", &Error{Code: CodeInvalid, Msg: "the query has errors", Fields: map[string]string{"limit": "Use 1 to 200."}}
	}
	before := int64(1<<62 - 1)
	if q.Cursor != "" {
		c, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || c <= 0 {
			return nil, "", &Error{Code: CodeInvalid, Msg: "the query has errors", Fields: map[string]string{"cursor": "Use the cursor of the previous page."}}
		}
		before = c
	}
	var out []Conversation
	var readMarks []int64
	var err error
	plain := !q.Unread && q.AssignedTo == "" && !q.Paused && strings.TrimSpace(q.Search) == ""
	walked := false
	if plain {
		out, readMarks, walked, err = s.recentConversations(ctx, tenantID, before, q.Limit+1)
		if err != nil {
			return nil, "", err
		}
	}
	if !walked {
		if out, readMarks, err = s.groupedConversations(ctx, tenantID, before, q); err != nil {
			return nil, "", err
		}
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = strconv.FormatInt(out[q.Limit-1].Last.ID, 10)
	}
	// A page is at most 200 chats: three indexed look-ups each.
	for i := range out {
		c := &out[i]
		if c.Last, err = s.threadMessage(ctx, tenantID, c.Last.ID); err != nil {
			return nil, "", err
		}
		if err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages
			WHERE tenant_id = ? AND chat = ? AND id > ? AND direction = 'in' AND status <> 'duplicate'`,
			tenantID, c.Chat, readMarks[i]).Scan(&c.Unread); err != nil {
			return nil, "", fmt.Errorf("counting unread messages: %w", err)
		}
		c.Name = c.ContactName
		if c.Name == "" {
			if c.Name, err = s.lastSenderName(ctx, tenantID, c.Chat); err != nil {
				return nil, "", err
			}
		}
		c.Phone = chatPhone(c.Chat)
	}
	return out, next, nil
}

// walkRows bounds recentConversations: past this many messages without
// a full page (a few chats with long threads), grouping is cheaper.
const walkRows = 5000

// recentConversations finds the chats of a page of the unfiltered list
// by walking the log newest first, keeping each chat at its newest
// message: a page costs a few rows per chat, not a pass over the whole
// log. walked is false when it gave up after walkRows messages.
func (s *Store) recentConversations(ctx context.Context, tenantID string, before int64, n int) (out []Conversation, readMarks []int64, walked bool, err error) {
	seen := map[string]bool{}
	cursor, scanned := before, 0
	for len(out) < n && scanned < walkRows {
		type row struct {
			chat string
			id   int64
		}
		rows, err := s.db.read.QueryContext(ctx, `SELECT chat, id FROM messages
			WHERE tenant_id = ? AND id < ? AND status <> 'duplicate' ORDER BY id DESC LIMIT 500`, tenantID, cursor)
		if err != nil {
			return nil, nil, false, fmt.Errorf("reading conversations: %w", err)
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.chat, &r.id); err != nil {
				rows.Close()
				return nil, nil, false, fmt.Errorf("reading conversations: %w", err)
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, false, fmt.Errorf("reading conversations: %w", err)
		}
		if len(batch) == 0 {
			return out, readMarks, true, nil
		}
		scanned += len(batch)
		for _, r := range batch {
			cursor = r.id
			if seen[r.chat] || len(out) == n {
				continue
			}
			seen[r.chat] = true
			// On a later page, a chat with a message at or after the
			// cursor was listed on an earlier one.
			if before < 1<<62-1 {
				var newer int
				if err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM messages
					WHERE tenant_id = ? AND chat = ? AND id >= ? AND status <> 'duplicate' LIMIT 1) AS x`, tenantID, r.chat, before).Scan(&newer); err != nil {
					return nil, nil, false, fmt.Errorf("reading conversations: %w", err)
				}
				if newer > 0 {
					continue
				}
			}
			c := Conversation{Chat: r.chat}
			c.Last.ID = r.id
			var paused, waiting int
			var readMark int64
			err := s.db.read.QueryRowContext(ctx, `SELECT contact_name, bot_paused, waiting, COALESCE(assigned_to, ''), last_read_id
				FROM chats WHERE tenant_id = ? AND chat = ?`, tenantID, r.chat).Scan(&c.ContactName, &paused, &waiting, &c.AssignedTo, &readMark)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, nil, false, fmt.Errorf("reading a chat's state: %w", err)
			}
			c.BotPaused, c.Waiting = paused != 0, waiting != 0
			out = append(out, c)
			readMarks = append(readMarks, readMark)
		}
	}
	return out, readMarks, len(out) == n, nil
}

// groupedConversations finds the chats of a page by grouping the whole
// log by chat, which every filter needs.
func (s *Store) groupedConversations(ctx context.Context, tenantID string, before int64, q ConversationQuery) ([]Conversation, []int64, error) {
	query := conversationsSQL
	args := []any{tenantID, tenantID, before}
	if q.Unread {
		query += ` AND g.last_in > COALESCE(c.last_read_id, 0)`
	}
	if q.AssignedTo != "" {
		query += ` AND c.assigned_to = ?`
		args = append(args, q.AssignedTo)
	}
	if q.Paused {
		query += ` AND c.bot_paused = 1`
	}
	if term := strings.TrimSpace(q.Search); term != "" {
		like := likePattern(term)
		// A number is matched by its digits, however it was typed.
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, term)
		numberLike := like
		if len(digits) >= 3 {
			numberLike = "%" + digits + "%"
		}
		query += ` AND (g.chat LIKE ? ESCAPE '\' OR c.contact_name LIKE ? ESCAPE '\' OR g.chat IN (
			SELECT chat FROM messages WHERE tenant_id = ? AND status <> 'duplicate' AND (body LIKE ? ESCAPE '\' OR sender_name LIKE ? ESCAPE '\')))`
		args = append(args, numberLike, like, tenantID, like, like)
	}
	query += ` ORDER BY g.last_id DESC LIMIT ?`
	args = append(args, q.Limit+1)
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading conversations: %w", err)
	}
	defer rows.Close()
	var out []Conversation
	var readMarks []int64
	for rows.Next() {
		var c Conversation
		var paused, waiting int
		var readMark int64
		if err := rows.Scan(&c.Chat, &c.Last.ID, &c.ContactName, &paused, &waiting, &c.AssignedTo, &readMark); err != nil {
			return nil, nil, fmt.Errorf("reading conversations: %w", err)
		}
		c.BotPaused, c.Waiting = paused != 0, waiting != 0
		out = append(out, c)
		readMarks = append(readMarks, readMark)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading conversations: %w", err)
	}
	return out, readMarks, nil
}

// threadMessage reads one message with its body cut for a list.
func (s *Store) threadMessage(ctx context.Context, tenantID string, id int64) (Message, error) {
	var m Message
	var created, updated int64
	err := s.db.read.QueryRowContext(ctx, `SELECT id, tenant_id, direction, chat, sender, sender_name, wa_id, kind,
		substr(body, 1, ?), status, error, COALESCE(reply_to, 0), created_at, updated_at FROM messages WHERE id = ? AND tenant_id = ?`,
		conversationPreview+1, id, tenantID).Scan(&m.ID, &m.TenantID, &m.Direction, &m.Chat, &m.Sender, &m.SenderName, &m.WAID, &m.Kind,
		&m.Body, &m.Status, &m.Error, &m.ReplyTo, &created, &updated)
	if err != nil {
		return m, fmt.Errorf("reading message %d: %w", id, err)
	}
	if utf8.RuneCountInString(m.Body) > conversationPreview {
		m.Body, m.Cut = string([]rune(m.Body)[:conversationPreview]), true
	}
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	return m, nil
}

// lastSenderName is the name the contact last sent with, "" when none.
func (s *Store) lastSenderName(ctx context.Context, tenantID, chat string) (string, error) {
	var name string
	err := s.db.read.QueryRowContext(ctx, `SELECT sender_name FROM messages
		WHERE tenant_id = ? AND chat = ? AND direction = 'in' AND sender_name <> '' ORDER BY id DESC LIMIT 1`,
		tenantID, chat).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading a contact's name: %w", err)
	}
	return name, nil
}

// chatPhone is the +number of a one-to-one chat, "" for a group.
func chatPhone(chat string) string {
	if strings.HasSuffix(chat, "@s.whatsapp.net") {
		return PhoneOf(chat)
	}
	return ""
}

func likePattern(term string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(term) + "%"
}

// UnreadChats counts the tenant's chats with unread messages (the page
// title shows it).
func (s *Store) UnreadChats(ctx context.Context, tenantID string) (int, error) {
	var n int
	err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (
		SELECT chat, MAX(id) AS last_in FROM messages WHERE tenant_id = ? AND direction = 'in' AND status <> 'duplicate' GROUP BY chat) g
		LEFT JOIN chats c ON c.tenant_id = ? AND c.chat = g.chat
		WHERE g.last_in > COALESCE(c.last_read_id, 0)`, tenantID, tenantID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting unread chats: %w", err)
	}
	return n, nil
}

// ThreadMessage is a message of a thread: the log's row and who or what
// wrote an outgoing one.
type ThreadMessage struct {
	Message
	Source     string // "bot" or "api" for outgoing messages
	Delivery   string // "", "sent", "delivered" or "read"
	Origin     string // what the bot answered with: "rule 2", "welcome", ...
	AuthorID   string // the person who typed it in the inbox
	AuthorName string // their name, else their email
}

// Thread returns a page of a chat's messages, oldest first for display,
// ending before the cursor (the newest page when ""), and the cursor of
// the older page ("" at the start). A chat the tenant has no message and
// no state of is ErrNotFound.
func (s *Store) Thread(ctx context.Context, tenantID, chat, before string, limit int) ([]ThreadMessage, string, error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > 200 {
		return nil, "", &Error{Code: CodeInvalid, Msg: "the query has errors", Fields: map[string]string{"limit": "Use 1 to 200."}}
	}
	cursor := int64(1<<62 - 1)
	if before != "" {
		c, err := strconv.ParseInt(before, 10, 64)
		if err != nil || c <= 0 {
			return nil, "", &Error{Code: CodeBadRequest, Msg: "invalid cursor"}
		}
		cursor = c
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT m.id, m.tenant_id, m.direction, m.chat, m.sender, m.sender_name, m.wa_id, m.kind,
			substr(m.body, 1, ?), m.status, m.error, COALESCE(m.reply_to, 0), m.created_at, m.updated_at,
			m.source, m.delivery, m.origin, COALESCE(m.author_id, ''), COALESCE(NULLIF(u.name, ''), u.email, '')
		FROM messages m LEFT JOIN users u ON u.id = m.author_id
		WHERE m.tenant_id = ? AND m.chat = ? AND m.status <> 'duplicate' AND m.id < ?
		ORDER BY m.id DESC LIMIT ?`, MaxBodyBytes+1, tenantID, chat, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("reading a thread: %w", err)
	}
	defer rows.Close()
	var out []ThreadMessage
	for rows.Next() {
		var m ThreadMessage
		var created, updated int64
		if err := rows.Scan(&m.ID, &m.TenantID, &m.Direction, &m.Chat, &m.Sender, &m.SenderName, &m.WAID, &m.Kind,
			&m.Body, &m.Status, &m.Error, &m.ReplyTo, &created, &updated,
			&m.Source, &m.Delivery, &m.Origin, &m.AuthorID, &m.AuthorName); err != nil {
			return nil, "", fmt.Errorf("reading a thread: %w", err)
		}
		if len(m.Body) > MaxBodyBytes {
			m.Body, m.Cut = m.Body[:MaxBodyBytes], true
		}
		m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
		if m.Direction == "in" {
			m.Source = ""
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("reading a thread: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].ID, 10)
	}
	if len(out) == 0 && before == "" {
		var n int
		if err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM chats WHERE tenant_id = ? AND chat = ?`, tenantID, chat).Scan(&n); err != nil {
			return nil, "", fmt.Errorf("reading a chat: %w", err)
		}
		if n == 0 {
			return nil, "", ErrNotFound
		}
	}
	slices.Reverse(out)
	return out, next, nil
}

// InboxMark is a short token that changes whenever a message of the
// tenant arrives or changes (a receipt, a reply going out) or a chat's
// state does: the inbox's live pages compare it each second to know when
// to re-read. Three index look-ups, however large the log.
func (s *Store) InboxMark(ctx context.Context, tenantID string) (string, error) {
	var id, changed, chat int64
	err := s.db.read.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT MAX(id) FROM messages WHERE tenant_id = ?), 0),
		COALESCE((SELECT MAX(updated_at) FROM messages WHERE tenant_id = ?), 0),
		COALESCE((SELECT MAX(updated_at) FROM chats WHERE tenant_id = ?), 0)`, tenantID, tenantID, tenantID).Scan(&id, &changed, &chat)
	if err != nil {
		return "", fmt.Errorf("reading the inbox's mark: %w", err)
	}
	return fmt.Sprintf("%d.%d.%d", id, changed, chat), nil
}

// MarkRead marks a chat's inbound messages up to upToID as read; a read
// mark never moves back. A mark already there writes nothing, so a live
// page that re-reads an open chat does not count as a change itself.
// It returns the mark before, so a caller knows which messages it read.
func (s *Store) MarkRead(ctx context.Context, tenantID, chat string, upToID int64) (before int64, err error) {
	st, err := s.ChatStateOf(ctx, tenantID, chat)
	if err != nil {
		return 0, err
	}
	if st.LastReadID >= upToID {
		return st.LastReadID, nil
	}
	if err := s.upsertChat(ctx, tenantID, chat, `last_read_id = CASE WHEN last_read_id < ? THEN ? ELSE last_read_id END`, upToID, upToID); err != nil {
		return 0, fmt.Errorf("marking a chat read: %w", err)
	}
	return st.LastReadID, nil
}

// Bounds of what the business keeps about a contact.
const (
	MaxContactName = 100
	MaxContactNote = 2000
)

// SetContact sets the business's own name and note for a chat's contact.
func (s *Store) SetContact(ctx context.Context, tenantID, chat, name, note string) error {
	name, note = strings.TrimSpace(name), strings.TrimSpace(note)
	fields := map[string]string{}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxContactName || strings.ContainsAny(name, "\r\n") {
		fields["name"] = fmt.Sprintf("Use at most %d characters on one line.", MaxContactName)
	}
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > MaxContactNote {
		fields["note"] = fmt.Sprintf("Use at most %d characters.", MaxContactNote)
	}
	if len(fields) > 0 {
		return &Error{Code: CodeInvalid, Msg: "the contact has errors", Fields: fields}
	}
	if err := s.upsertChat(ctx, tenantID, chat, `contact_name = ?, note = ?`, name, note); err != nil {
		return fmt.Errorf("saving a contact: %w", err)
	}
	return nil
}

// Assign gives a chat to one of the tenant's members ("" unassigns it).
func (s *Store) Assign(ctx context.Context, tenantID, chat, userID string) error {
	var to sql.NullString
	if userID != "" {
		if _, err := s.RoleOf(ctx, tenantID, userID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return &Error{Code: CodeInvalid, Msg: "that person is not in this workspace", Fields: map[string]string{"user": "Choose a member of this workspace."}}
			}
			return fmt.Errorf("reading a membership: %w", err)
		}
		to = sql.NullString{String: userID, Valid: true}
	}
	if err := s.upsertChat(ctx, tenantID, chat, `assigned_to = ?`, to); err != nil {
		return fmt.Errorf("assigning a chat: %w", err)
	}
	return nil
}

// chatJIDPattern is what a chat may be in the inbox's URLs: a person's
// number, a linked id or a group.
var chatJIDPattern = regexp.MustCompile(`^[0-9]{5,20}(-[0-9]{5,20})?@(s\.whatsapp\.net|g\.us|lid)$`)

// ValidChat reports whether chat is a chat JID wabot stores.
func ValidChat(chat string) bool { return chatJIDPattern.MatchString(chat) }

// SkippedPaused reports whether an inbound message was left unanswered
// because a person had taken over the chat.
func SkippedPaused(m Message) bool {
	return m.Direction == "in" && m.Status == MsgIgnored && strings.HasPrefix(m.Error, ReasonBotPaused)
}
