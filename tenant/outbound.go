package tenant

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Outbound messages: what a tenant sends through the API. Each is a row of
// the message log (source 'api'), stored as queued with the WhatsApp id
// it will be sent with before anyone is told it was accepted, so a restart
// sends it once and never loses it.

// APIStatus is a message's state as the API reports it.
type APIStatus string

const (
	APIReceived  APIStatus = "received"  // an incoming message
	APIQueued    APIStatus = "queued"    // stored, not sent yet
	APISent      APIStatus = "sent"      // WhatsApp's server took it
	APIDelivered APIStatus = "delivered" // the recipient's phone got it
	APIRead      APIStatus = "read"      // the recipient opened it
	APIFailed    APIStatus = "failed"    // not sent; Reason says why
)

// APIStatuses lists the statuses a list may be filtered by.
var APIStatuses = []APIStatus{APIReceived, APIQueued, APISent, APIDelivered, APIRead, APIFailed}

// Reasons a message failed (APIMessage.Reason).
const (
	ReasonNotOnWhatsApp    = "not_on_whatsapp"    // the number has no WhatsApp account
	ReasonSessionLoggedOut = "session_logged_out" // the number was unlinked before it went out
	ReasonExpired          = "expired"            // it waited longer than the maximum age
	ReasonRejected         = "rejected"           // WhatsApp refused it
	ReasonRateLimited      = "rate_limited"       // a bot reply over a rate limit
	// ReasonUploadFailed: the file could not be uploaded to WhatsApp's
	// media servers after a few tries (a disconnect only waits).
	ReasonUploadFailed = "upload_failed"
)

// MaxTextChars is WhatsApp's limit on a text message.
const MaxTextChars = 65536

// MaxCaptionChars is WhatsApp's limit on a media message's caption.
const MaxCaptionChars = 1024

// MaxIdempotencyKey bounds an Idempotency-Key header.
const MaxIdempotencyKey = 255

// SendRequest is what the API asks to send.
type SendRequest struct {
	To             string // +international phone number or a chat JID (groups too)
	Text           string
	ReplyTo        int64  // a message of the tenant to quote; 0 for none
	IdempotencyKey string // "" for none
	// AuthorID is the person who typed it in the inbox; "" for the API.
	AuthorID string
	// Media, when set, makes it a media message; Text is then optional
	// and, when given, the caption (unless Media.Caption is).
	Media *SendMedia
}

// SendMedia is the file of a media message to send: an upload of the
// tenant's (POST /media) or a URL wabot fetches when the message is
// accepted.
type SendMedia struct {
	UploadID string    // the upload's SHA-256
	URL      string    // http(s)
	Kind     MediaKind // "" takes KindOfMIME of the file
	Caption  string
	FileName string
}

// KindOfMIME is the kind a file of that (sniffed) type is sent as when
// the sender names none: raster images as images, video as video, OGG
// Opus as a voice note, other audio as audio, anything else (SVG and PDF
// too) as a document.
func KindOfMIME(mimeType string) MediaKind {
	b := baseMIME(mimeType)
	switch {
	case slices.Contains(inlineImages, b):
		return MediaImage
	case strings.HasPrefix(b, "video/") && InlineMIME(b):
		return MediaVideo
	case b == "audio/ogg" && strings.Contains(strings.ToLower(mimeType), "opus"):
		return MediaVoice
	case strings.HasPrefix(b, "audio/") && InlineMIME(b):
		return MediaAudio
	}
	return MediaDocument
}

// UploadKeep is how long an upload no message uses yet is kept.
const UploadKeep = 24 * time.Hour

// PutUpload stores an upload (POST /media, or a URL fetched for a send)
// for UploadKeep: its first 4 KB tell its type, which gives its kind
// when kind is "", and the kind's cap is checked before a byte is
// written and while writing (CodeTooLarge, nothing kept). declaredMIME
// and size are what the sender said (size 0: unknown).
func (m *MediaStore) PutUpload(ctx context.Context, tenantID string, kind MediaKind, declaredMIME string, size int64, body io.Reader) (MediaFile, MediaKind, error) {
	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(body, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return MediaFile{}, "", fmt.Errorf("reading the upload: %w", err)
	}
	head = head[:n]
	if kind == "" {
		kind = KindOfMIME(SniffMIME(declaredMIME, head))
	}
	f, err := m.Put(ctx, tenantID, MediaInput{Kind: kind, MIME: declaredMIME, Size: size, Body: io.MultiReader(bytes.NewReader(head), body)}, UploadKeep)
	return f, kind, err
}

// CheckSize refuses a file over the cap of the kind it is sent as
// (CodeTooLarge): an upload stored as a document may be too large to
// send as an image.
func (l MediaLimits) CheckSize(kind MediaKind, size int64) error {
	if limit := l.MaxFor(kind); size > limit {
		return tooLarge(kind, limit)
	}
	return nil
}

// CaptionFits reports whether WhatsApp shows a caption with a message of
// kind k: audio, voice notes and stickers carry none.
func CaptionFits(k MediaKind) bool {
	return k != MediaAudio && k != MediaVoice && k != MediaSticker
}

// noCaption is the field error of a caption on a kind that has none.
const noCaption = "WhatsApp shows no caption with audio, voice notes or stickers; leave it out (or send the text as a message of its own)."

// CaptionError is the field errors of a caption given for a kind that
// shows none, nil when it fits: a kind taken from the file's type is
// only known once the file is.
func CaptionError(k MediaKind, caption string) error {
	if caption == "" || CaptionFits(k) {
		return nil
	}
	return &Error{Code: CodeInvalid, Msg: "the message has errors", Fields: map[string]string{"media.caption": noCaption}}
}

// APIMessage is one message of the log as the API shows it.
type APIMessage struct {
	ID           int64
	Direction    string // "in" or "out"
	Source       string // "api" or "bot" for outgoing messages
	Chat         string // JID
	From         string // sender JID (the tenant's own number for outgoing)
	Text         string
	ReplyTo      int64 // the quoted message, 0 for none
	WAID         string
	Status       APIStatus
	Reason       string // failure code, when Status is failed
	Error        string // failure sentence
	FirstContact bool   // the first message ever in its chat
	CheckNumber  bool   // `to` was a phone number: check it is on WhatsApp first
	CreatedAt    time.Time
	SentAt       time.Time // zero until sent
	DeliveredAt  time.Time
	ReadAt       time.Time
}

var (
	phoneRe = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	jidRe   = regexp.MustCompile(`^[0-9]{5,20}(-[0-9]{5,20})?@(s\.whatsapp\.net|g\.us|lid)$`)
)

// ValidateSend checks a request and returns the chat JID to send to and
// whether `to` was a phone number (to be checked against WhatsApp before
// the first send). Errors are CodeInvalid with field errors.
func ValidateSend(req SendRequest) (chat string, isPhone bool, err error) {
	fields := map[string]string{}
	to := strings.TrimSpace(req.To)
	switch {
	case to == "":
		fields["to"] = "Give a phone number in international format (+15551234567) or a chat id."
	case phoneRe.MatchString(to):
		chat, isPhone = to[1:]+"@s.whatsapp.net", true
	case jidRe.MatchString(to):
		chat = to
	default:
		fields["to"] = "Use + and the international number, digits only (+15551234567), or a chat id such as 15551234567@s.whatsapp.net or 120363000000000000@g.us."
	}
	if req.Media != nil {
		validateSendMedia(req, fields)
	} else {
		switch n := utf8.RuneCountInString(req.Text); {
		case !utf8.ValidString(req.Text):
			fields["text"] = "The text is not valid UTF-8."
		case strings.TrimSpace(req.Text) == "":
			fields["text"] = "Write the text to send."
		case n > MaxTextChars:
			fields["text"] = fmt.Sprintf("WhatsApp takes at most %d characters; this text has %d.", MaxTextChars, n)
		}
	}
	if req.ReplyTo < 0 {
		fields["reply_to"] = "Give the id of one of your messages."
	}
	if len(req.IdempotencyKey) > MaxIdempotencyKey {
		fields["idempotency_key"] = fmt.Sprintf("Use at most %d characters.", MaxIdempotencyKey)
	}
	if len(fields) > 0 {
		return "", false, &Error{Code: CodeInvalid, Msg: "the message has errors", Fields: fields}
	}
	return chat, isPhone, nil
}

// validateSendMedia checks a media message: one source, a kind that has a
// file, a caption given once (media.caption or text) that fits, a file
// name of at most 255 bytes.
func validateSendMedia(req SendRequest, fields map[string]string) {
	m := req.Media
	switch {
	case m.UploadID != "" && m.URL != "":
		fields["media"] = "Give either upload_id or url, not both."
	case m.UploadID != "":
		if !sha256Pattern.MatchString(m.UploadID) {
			fields["media.upload_id"] = "There is no upload with this id; upload the file with POST /api/v1/media first."
		}
	case m.URL != "":
		u, err := url.Parse(m.URL)
		if len(m.URL) > MaxURLLength || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			fields["media.url"] = "Give an http:// or https:// URL without user name or password."
		}
	default:
		fields["media"] = "Give the file: upload_id (from POST /api/v1/media) or url."
	}
	if m.Kind != "" && !m.Kind.HasFile() {
		fields["media.kind"] = "Use image, video, audio, voice, document or sticker; leave it out to take it from the file's type."
	}
	caption := m.Caption
	if req.Text != "" {
		if caption != "" {
			fields["text"] = "Give the caption once: in text or in media.caption."
		}
		caption = req.Text
	}
	switch n := utf8.RuneCountInString(caption); {
	case !utf8.ValidString(caption):
		fields["media.caption"] = "The caption is not valid UTF-8."
	case n > MaxCaptionChars:
		fields["media.caption"] = fmt.Sprintf("WhatsApp takes a caption of at most %d characters; this one has %d.", MaxCaptionChars, n)
	case m.Kind != "" && caption != "" && !CaptionFits(m.Kind):
		fields["media.caption"] = noCaption
	}
	if len(m.FileName) > maxFileNameBytes || !utf8.ValidString(m.FileName) || strings.ContainsAny(m.FileName, "/\\\x00") {
		fields["media.file_name"] = "Use a file name of at most 255 bytes, without slashes."
	}
}

// apiStatusSQL is APIStatus computed from a row's log status and delivery.
const apiStatusSQL = `CASE WHEN direction = 'in' THEN 'received'
	WHEN status = 'pending' THEN 'queued'
	WHEN status = 'replied' THEN CASE WHEN delivery IN ('delivered', 'read') THEN delivery ELSE 'sent' END
	ELSE 'failed' END`

const apiMessageCols = `id, direction, source, chat, sender, body, COALESCE(quote_id, 0), wa_id, ` + apiStatusSQL + `,
	status, reason, error, first_contact, check_number, created_at, COALESCE(sent_at, 0), COALESCE(delivered_at, 0), COALESCE(read_at, 0)`

func scanAPIMessage(sc interface{ Scan(...any) error }) (APIMessage, error) {
	var m APIMessage
	var logStatus MessageStatus
	var first, check int
	var created, sent, delivered, read int64
	err := sc.Scan(&m.ID, &m.Direction, &m.Source, &m.Chat, &m.From, &m.Text, &m.ReplyTo, &m.WAID, &m.Status,
		&logStatus, &m.Reason, &m.Error, &first, &check, &created, &sent, &delivered, &read)
	if err != nil {
		return m, err
	}
	m.FirstContact, m.CheckNumber = first == 1, check == 1
	if m.Direction == "in" {
		m.Source = ""
	}
	if m.WAID == "-" {
		m.WAID = ""
	}
	if m.Status == APIFailed && m.Reason == "" {
		m.Reason = ReasonRejected
		if logStatus == MsgRateLimited {
			m.Reason = ReasonRateLimited
		}
	}
	m.CreatedAt = fromMS(created)
	for _, p := range []struct {
		t  *time.Time
		ms int64
	}{{&m.SentAt, sent}, {&m.DeliveredAt, delivered}, {&m.ReadAt, read}} {
		if p.ms > 0 {
			*p.t = fromMS(p.ms)
		}
	}
	return m, nil
}

// NewOutbound is a message to queue: the request as validated, with the
// WhatsApp id it will be sent with and the sender's JID.
type NewOutbound struct {
	Chat           string
	Sender         string
	Text           string
	ReplyTo        int64
	WAID           string
	CheckNumber    bool
	IdempotencyKey string
	AuthorID       string // the person who typed it in the inbox, "" for none
	// Media, when set, is queued with the message in its transaction,
	// linked to the tenant's file; Text is its caption.
	Media *OutboundMedia
}

// OutboundMedia is the file a queued message sends: one of the tenant's
// stored files (by hash), with how to present it.
type OutboundMedia struct {
	Kind          MediaKind
	SHA256        string
	FileName      string
	Width, Height int
}

// QueueLimits bound QueueOutbound.
type QueueLimits struct {
	MaxQueued      int           // queued API messages per tenant, unless the tenant has its own bound
	IdempotencyTTL time.Duration // how long a key returns its first message (24h)
}

// QueueOutbound stores a message as queued, in one transaction: a key the
// tenant used within the TTL returns that first message and stores
// nothing (created false); an older key is freed for reuse. A tenant at
// its queue bound gets CodeTooMany and nothing is stored. A quoted message
// must be one of the tenant's.
func (s *Store) QueueOutbound(ctx context.Context, tenantID string, o NewOutbound, lim QueueLimits) (APIMessage, bool, error) {
	now := s.now()
	var out APIMessage
	created := false
	kind := "text"
	if o.Media != nil {
		if !o.Media.Kind.HasFile() {
			return out, false, &Error{Code: CodeInvalid, Msg: "the message has errors", Fields: map[string]string{"media.kind": "Use image, video, audio, voice, document or sticker."}}
		}
		kind = string(o.Media.Kind)
		if s.media != nil {
			// As AttachFile: no removal runs between the file's check
			// and its link.
			s.media.mu.Lock()
			defer s.media.mu.Unlock()
		}
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if o.IdempotencyKey != "" {
			var id, at int64
			err := tx.QueryRowContext(ctx, `SELECT id, created_at FROM messages WHERE tenant_id = ? AND idempotency_key = ?`,
				tenantID, o.IdempotencyKey).Scan(&id, &at)
			switch {
			case err == nil && fromMS(at).After(now.Add(-lim.IdempotencyTTL)):
				out, err = scanAPIMessage(tx.QueryRowContext(ctx, `SELECT `+apiMessageCols+` FROM messages WHERE id = ?`, id))
				return err
			case err == nil:
				if _, err := tx.ExecContext(ctx, `UPDATE messages SET idempotency_key = NULL WHERE id = ?`, id); err != nil {
					return err
				}
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if o.ReplyTo != 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE id = ? AND tenant_id = ? AND status <> 'duplicate'`,
				o.ReplyTo, tenantID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return &Error{Code: CodeInvalid, Msg: "the message has errors", Fields: map[string]string{"reply_to": "There is no message with this id."}}
			}
		}
		var max, queued int
		if err := tx.QueryRowContext(ctx, `SELECT send_queue_max FROM tenants WHERE id = ?`, tenantID).Scan(&max); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if max <= 0 {
			max = lim.MaxQueued
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND status = 'pending' AND source = 'api'`,
			tenantID).Scan(&queued); err != nil {
			return err
		}
		if max > 0 && queued >= max {
			return Errorf(CodeTooMany, "%d messages are already waiting to be sent, the most this workspace may queue; try again once some went out", queued)
		}
		var seen int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE tenant_id = ? AND chat = ? LIMIT 1) AS x`,
			tenantID, o.Chat).Scan(&seen); err != nil {
			return err
		}
		var key sql.NullString
		if o.IdempotencyKey != "" {
			key = sql.NullString{String: o.IdempotencyKey, Valid: true}
		}
		var quote sql.NullInt64
		if o.ReplyTo != 0 {
			quote = sql.NullInt64{Int64: o.ReplyTo, Valid: true}
		}
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO messages (tenant_id, direction, source, chat, sender, wa_id, kind, body, status, quote_id,
				idempotency_key, check_number, first_contact, author_id, created_at, updated_at)
			VALUES (?, 'out', 'api', ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			tenantID, o.Chat, o.Sender, o.WAID, kind, o.Text, quote, key, boolInt(o.CheckNumber), boolInt(seen == 0),
			sql.NullString{String: o.AuthorID, Valid: o.AuthorID != ""}, ms(now), ms(now)).Scan(&id); err != nil {
			return err
		}
		if o.Media != nil {
			// The message and its file commit together: a queued media
			// message always finds its file.
			err := linkOutboundFile(ctx, tx, tenantID, id, *o.Media, o.Text, now)
			if errors.Is(err, ErrNotFound) {
				return &Error{Code: CodeInvalid, Msg: "the message has errors", Fields: map[string]string{"media.upload_id": "There is no upload with this id; upload the file with POST /api/v1/media first."}}
			}
			if err != nil {
				return err
			}
		}
		created = true
		var err error
		out, err = scanAPIMessage(tx.QueryRowContext(ctx, `SELECT `+apiMessageCols+` FROM messages WHERE id = ?`, id))
		return err
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return out, false, err
		}
		return out, false, fmt.Errorf("queueing a message: %w", err)
	}
	return out, created, nil
}

// OutboundByIdempotencyKey returns the tenant's message queued with key
// within ttl; ErrNotFound when there is none. A media send asks first,
// so a replay neither fetches its URL again nor fails where the first
// request succeeded.
func (s *Store) OutboundByIdempotencyKey(ctx context.Context, tenantID, key string, ttl time.Duration) (APIMessage, error) {
	m, err := scanAPIMessage(s.db.read.QueryRowContext(ctx, `SELECT `+apiMessageCols+` FROM messages
		WHERE tenant_id = ? AND idempotency_key = ? AND created_at > ?`, tenantID, key, ms(s.now().Add(-ttl))))
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("reading a message by its idempotency key: %w", err)
	}
	return m, nil
}

// linkOutboundFile adds the media row of an outgoing message and links
// it to the tenant's file (ErrNotFound when the tenant has no such file),
// inside the message's transaction.
func linkOutboundFile(ctx context.Context, tx *sql.Tx, tenantID string, messageID int64, om OutboundMedia, caption string, now time.Time) error {
	if !sha256Pattern.MatchString(om.SHA256) {
		return ErrNotFound
	}
	f, err := fileRow(ctx, tx, tenantID, om.SHA256)
	if err != nil {
		return err
	}
	md := MessageMedia{Kind: om.Kind, MIME: f.MIME, Size: f.Size, FileName: om.FileName, Caption: caption, Width: om.Width, Height: om.Height}
	if err := md.prepare(); err != nil {
		return err
	}
	if err := addMessageMedia(ctx, tx, tenantID, messageID, md, ms(now)); err != nil {
		return err
	}
	return linkFile(ctx, tx, tenantID, messageID, f, now)
}

// replyKind is the kind a bot reply is logged as: its attachment's, or
// text. An attachment whose file is gone (the tenant's media were
// removed) is dropped, so the reply still goes out as text.
func replyKind(ctx context.Context, tx *sql.Tx, tenantID string, r *Reply) (string, error) {
	a := r.Attachment
	if a == nil {
		return "text", nil
	}
	if !a.Kind.HasFile() || !sha256Pattern.MatchString(a.UploadID) {
		r.Attachment = nil
		return "text", nil
	}
	if _, err := fileRow(ctx, tx, tenantID, a.UploadID); errors.Is(err, ErrNotFound) {
		r.Attachment = nil
		return "text", nil
	} else if err != nil {
		return "", err
	}
	return string(a.Kind), nil
}

// linkReplyFile logs a bot reply's attachment as its media, in the
// reply's transaction, so a reply recovered after a crash still sends
// its file.
func linkReplyFile(ctx context.Context, tx *sql.Tx, tenantID string, r Reply, now time.Time) error {
	if r.Attachment == nil {
		return nil
	}
	return linkOutboundFile(ctx, tx, tenantID, r.ID, OutboundMedia{Kind: r.Attachment.Kind, SHA256: r.Attachment.UploadID, FileName: r.Attachment.FileName}, r.Body, now)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// APIMessageByID returns one of the tenant's messages.
func (s *Store) APIMessageByID(ctx context.Context, tenantID string, id int64) (APIMessage, error) {
	m, err := scanAPIMessage(s.db.read.QueryRowContext(ctx, `SELECT `+apiMessageCols+` FROM messages
		WHERE id = ? AND tenant_id = ? AND status <> 'duplicate'`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("reading message %d: %w", id, err)
	}
	return m, nil
}

// QueuedOutbound lists the tenant's queued API messages, oldest first.
func (s *Store) QueuedOutbound(ctx context.Context, tenantID string, limit int) ([]APIMessage, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+apiMessageCols+` FROM messages
		WHERE tenant_id = ? AND status = 'pending' AND source = 'api' ORDER BY id LIMIT ?`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading queued messages: %w", err)
	}
	return collectAPIMessages(rows)
}

func collectAPIMessages(rows *sql.Rows) ([]APIMessage, error) {
	defer rows.Close()
	var out []APIMessage
	for rows.Next() {
		m, err := scanAPIMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MarkOutboundSent records that WhatsApp's server took a queued message. A
// receipt that overtook the send is kept: delivery never goes backwards.
// In the same transaction it queues message.sent and, when a receipt
// overtook the send, the message.status it was waiting for; a message
// no longer queued changes nothing and queues nothing.
func (s *Store) MarkOutboundSent(ctx context.Context, tenantID string, id int64) (APIMessage, error) {
	now := ms(s.now())
	var m APIMessage
	var queued int
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'replied', sent_at = ?, updated_at = ?,
			delivery = CASE WHEN delivery IN ('delivered', 'read') THEN delivery ELSE 'sent' END
			WHERE id = ? AND tenant_id = ? AND status = 'pending'`, now, now, id, tenantID)
		if err != nil {
			return err
		}
		changed, _ := res.RowsAffected()
		if m, err = apiMessageTx(ctx, tx, tenantID, id); err != nil || changed == 0 {
			return err
		}
		sent := MessageStatusEventOf(m)
		sent.Status, sent.At = APISent, m.SentAt
		n, err := s.queueEvent(ctx, tx, tenantID, EventMessageSent, sent)
		queued += n
		if err != nil || m.Status == APISent {
			return err
		}
		n, err = s.queueEvent(ctx, tx, tenantID, EventMessageStatus, MessageStatusEventOf(m))
		queued += n
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return m, err
		}
		return m, fmt.Errorf("marking message %d sent: %w", id, err)
	}
	s.eventsQueued(queued)
	return m, nil
}

// apiMessageTx is APIMessageByID inside a transaction.
func apiMessageTx(ctx context.Context, tx *sql.Tx, tenantID string, id int64) (APIMessage, error) {
	m, err := scanAPIMessage(tx.QueryRowContext(ctx, `SELECT `+apiMessageCols+` FROM messages
		WHERE id = ? AND tenant_id = ? AND status <> 'duplicate'`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	return m, err
}

// FailOutbound records why a queued message will not be sent and queues
// its message.status (failed, with the reason) in the same transaction;
// a message no longer queued is left as it is and queues nothing.
func (s *Store) FailOutbound(ctx context.Context, tenantID string, id int64, reason, msg string) (APIMessage, error) {
	var m APIMessage
	var queued int
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'failed', reason = ?, error = ?, updated_at = ?
			WHERE id = ? AND tenant_id = ? AND status = 'pending'`, reason, msg, ms(s.now()), id, tenantID)
		if err != nil {
			return err
		}
		changed, _ := res.RowsAffected()
		if m, err = apiMessageTx(ctx, tx, tenantID, id); err != nil || changed == 0 {
			return err
		}
		ev := MessageStatusEventOf(m)
		ev.At = fromMS(ms(s.now())) // failing has no column of its own
		queued, err = s.queueEvent(ctx, tx, tenantID, EventMessageStatus, ev)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return m, err
		}
		return m, fmt.Errorf("failing message %d: %w", id, err)
	}
	s.eventsQueued(queued)
	return m, nil
}

// ApplyReceipt moves the tenant's outgoing messages with these WhatsApp
// ids on to delivered or read, never backwards, and returns those it
// changed. Each changed message that was already sent gets a
// message.status event in the same transaction; one still queued (the
// receipt overtook the send) is announced when it is marked sent. A
// duplicate or late receipt changes nothing and queues nothing.
func (s *Store) ApplyReceipt(ctx context.Context, tenantID string, waIDs []string, to APIStatus, at time.Time) ([]APIMessage, error) {
	var allowed, col string
	switch to {
	case APIDelivered:
		allowed, col = `'', 'sent'`, "delivered_at"
	case APIRead:
		allowed, col = `'', 'sent', 'delivered'`, "read_at"
	default:
		return nil, fmt.Errorf("receipt status %q", to)
	}
	if len(waIDs) == 0 {
		return nil, nil
	}
	if len(waIDs) > 500 {
		waIDs = waIDs[:500]
	}
	args := []any{string(to), ms(at), ms(s.now()), tenantID}
	for _, id := range waIDs {
		args = append(args, id)
	}
	q := `UPDATE messages SET delivery = ?, ` + col + ` = ?, updated_at = ?
		WHERE tenant_id = ? AND direction = 'out' AND wa_id IN (?` + strings.Repeat(", ?", len(waIDs)-1) + `)
		AND delivery IN (` + allowed + `) AND status IN ('pending', 'replied') RETURNING id`
	var out []APIMessage
	var queued int
	err := s.fencedGroup(ctx, func(tx *sql.Tx) error { // many receipts a second under load (groupcommit.go)
		out, queued = nil, 0
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			m, err := apiMessageTx(ctx, tx, tenantID, id)
			if err != nil {
				return err
			}
			out = append(out, m)
			if m.Status != APIDelivered && m.Status != APIRead {
				continue
			}
			n, err := s.queueEvent(ctx, tx, tenantID, EventMessageStatus, MessageStatusEventOf(m))
			if err != nil {
				return err
			}
			queued += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("applying a receipt: %w", err)
	}
	s.eventsQueued(queued)
	if out == nil {
		out = []APIMessage{}
	}
	return out, nil
}

// FirstContactsSentSince counts messages that opened a chat and went out
// after since: the daily limit on new chats reads it.
func (s *Store) FirstContactsSentSince(ctx context.Context, tenantID string, since time.Time) (int, error) {
	var n int
	err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND first_contact = 1 AND sent_at >= ?`,
		tenantID, ms(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting new chats: %w", err)
	}
	return n, nil
}

// SetSendQueueMax sets the tenant's own bound on queued API messages; 0
// takes the operator's default.
func (s *Store) SetSendQueueMax(ctx context.Context, tenantID string, n int) error {
	if n < 0 {
		return &Error{Code: CodeInvalid, Msg: "the queue bound cannot be negative", Fields: map[string]string{"send_queue_max": "Use 0 (the default) or more."}}
	}
	res, err := s.db.write.ExecContext(ctx, `UPDATE tenants SET send_queue_max = ? WHERE id = ?`, n, tenantID)
	if err != nil {
		return fmt.Errorf("setting the send queue bound: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return ErrNotFound
	}
	return nil
}

// APIMessageQuery filters and pages API message lists, newest first.
type APIMessageQuery struct {
	Limit     int    // 1..200, default 50
	Cursor    string // from the previous page
	Chat      string // a chat JID
	Direction string // "in", "out" or ""
	Status    APIStatus
}

// APIMessages returns one page of the tenant's messages and the cursor of
// the next page ("" at the end).
func (s *Store) APIMessages(ctx context.Context, tenantID string, q APIMessageQuery) ([]APIMessage, string, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	fields := map[string]string{}
	if q.Limit < 1 || q.Limit > 200 {
		fields["limit"] = "Use 1 to 200."
	}
	sqlq := `SELECT ` + apiMessageCols + ` FROM messages WHERE tenant_id = ? AND status <> 'duplicate'`
	args := []any{tenantID}
	if q.Cursor != "" {
		c, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || c <= 0 {
			fields["cursor"] = "Use the cursor of the previous page."
		}
		sqlq += ` AND id < ?`
		args = append(args, c)
	}
	if q.Chat != "" {
		sqlq += ` AND chat = ?`
		args = append(args, q.Chat)
	}
	switch q.Direction {
	case "":
	case "in", "out":
		sqlq += ` AND direction = ?`
		args = append(args, q.Direction)
	default:
		fields["direction"] = "Use in or out."
	}
	if q.Status != "" {
		ok := false
		for _, st := range APIStatuses {
			ok = ok || st == q.Status
		}
		if !ok {
			fields["status"] = "Use received, queued, sent, delivered, read or failed."
		}
		sqlq += ` AND (` + apiStatusSQL + `) = ?`
		args = append(args, string(q.Status))
	}
	if len(fields) > 0 {
		return nil, "", &Error{Code: CodeInvalid, Msg: "the query has errors", Fields: fields}
	}
	sqlq += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.Limit+1)
	rows, err := s.db.read.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return nil, "", fmt.Errorf("reading messages: %w", err)
	}
	out, err := collectAPIMessages(rows)
	if err != nil {
		return nil, "", fmt.Errorf("reading messages: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = strconv.FormatInt(out[len(out)-1].ID, 10)
	}
	return out, next, nil
}

// Chat is one conversation: its last message and how many it holds.
type Chat struct {
	Chat     string
	Last     APIMessage
	Messages int
	In       int
	Out      int
}

// Chats returns one page of the tenant's chats, the most recently active
// first, and the cursor of the next page.
func (s *Store) Chats(ctx context.Context, tenantID string, cursor string, limit int) ([]Chat, string, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 200 {
		return nil, "", &Error{Code: CodeInvalid, Msg: "the query has errors", Fields: map[string]string{"limit": "Use 1 to 200."}}
	}
	before := int64(1<<62 - 1)
	if cursor != "" {
		c, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || c <= 0 {
			return nil, "", &Error{Code: CodeInvalid, Msg: "the query has errors", Fields: map[string]string{"cursor": "Use the cursor of the previous page."}}
		}
		before = c
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT chat, MAX(id), COUNT(*), SUM(CASE WHEN direction = 'in' THEN 1 ELSE 0 END)
		FROM messages WHERE tenant_id = ? AND status <> 'duplicate'
		GROUP BY chat HAVING MAX(id) < ? ORDER BY MAX(id) DESC LIMIT ?`, tenantID, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("reading chats: %w", err)
	}
	var out []Chat
	var lastIDs []int64
	for rows.Next() {
		var c Chat
		var last int64
		if err := rows.Scan(&c.Chat, &last, &c.Messages, &c.In); err != nil {
			rows.Close()
			return nil, "", err
		}
		c.Out = c.Messages - c.In
		out = append(out, c)
		lastIDs = append(lastIDs, last)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("reading chats: %w", err)
	}
	next := ""
	if len(out) > limit {
		out, lastIDs = out[:limit], lastIDs[:limit]
		next = strconv.FormatInt(lastIDs[limit-1], 10)
	}
	for i, id := range lastIDs {
		m, err := s.APIMessageByID(ctx, tenantID, id)
		if err != nil {
			return nil, "", err
		}
		out[i].Last = m
	}
	return out, next, nil
}

// ContactCheck is whether one number has WhatsApp.
type ContactCheck struct {
	Phone string // as asked, "+15551234567"
	OnWA  bool
	JID   string // the account's chat id when OnWA
}
