package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// Sending and reading under /api/v1: POST /messages stores the message as
// queued and answers 202 before anything goes out; the tenant's sender in
// the bot delivers it and WhatsApp's receipts move it on, which GET
// /messages/{id} shows. The same Idempotency-Key again answers 200 with
// the first message and sends nothing.

// Messaging is what the portal asks of the bot to send and read a
// tenant's messages.
type Messaging interface {
	Send(ctx context.Context, tenantID string, req tenant.SendRequest) (tenant.APIMessage, bool, error)
	Message(ctx context.Context, tenantID string, id int64) (tenant.APIMessage, error)
	Messages(ctx context.Context, tenantID string, q tenant.APIMessageQuery) ([]tenant.APIMessage, string, error)
	Chats(ctx context.Context, tenantID, cursor string, limit int) ([]tenant.Chat, string, error)
	CheckContacts(ctx context.Context, tenantID string, phones []string) ([]tenant.ContactCheck, error)
	// ReadReceipts tells customers their messages were read, when the
	// tenant asks for it; it does not wait.
	ReadReceipts(tenantID, chat string, msgs []tenant.Message)
}

// messageV1 is one message under /api/v1. Every key is present; what does
// not apply (yet) is null.
type messageV1 struct {
	ID          int64   `json:"id"`
	Direction   string  `json:"direction"`
	Source      *string `json:"source"` // api or bot; null for incoming
	Chat        string  `json:"chat"`
	To          *string `json:"to"`   // +number of an outgoing one-to-one message
	From        *string `json:"from"` // the sender's JID
	Text        string  `json:"text"`
	ReplyTo     *int64  `json:"reply_to"`
	WAID        *string `json:"wa_id"`
	Status      string  `json:"status"`
	Reason      *string `json:"reason"`
	Error       *string `json:"error"`
	CreatedAt   string  `json:"created_at"`
	SentAt      *string `json:"sent_at"`
	DeliveredAt *string `json:"delivered_at"`
	ReadAt      *string `json:"read_at"`
	// Media is the message's image, voice note, document, location...;
	// null for text. Set by withMedia.
	Media *tenant.MediaInfo `json:"media"`
}

func messageV1Of(m tenant.APIMessage) messageV1 {
	out := messageV1{ID: m.ID, Direction: m.Direction, Source: nullIfEmpty(m.Source), Chat: m.Chat, From: nullIfEmpty(m.From),
		Text: m.Text, WAID: nullIfEmpty(m.WAID), Status: string(m.Status), Reason: nullIfEmpty(m.Reason), Error: nullIfEmpty(m.Error),
		CreatedAt: m.CreatedAt.UTC().Format(apiTime), SentAt: rfc3339OrNull(m.SentAt), DeliveredAt: rfc3339OrNull(m.DeliveredAt), ReadAt: rfc3339OrNull(m.ReadAt)}
	if m.Direction == "out" {
		out.To = phoneOfChat(m.Chat)
	}
	if m.ReplyTo != 0 {
		out.ReplyTo = &m.ReplyTo
	}
	return out
}

// phoneOfChat is the +number of a one-to-one chat; null for a group.
func phoneOfChat(chat string) *string {
	if _, server, _ := strings.Cut(chat, "@"); server != "s.whatsapp.net" {
		return nil
	}
	return nullIfEmpty(tenant.PhoneOf(chat))
}

type messagesV1 struct {
	Messages []messageV1 `json:"messages"`
	Next     *string     `json:"next"`
}

// idempotencyKey reads the Idempotency-Key header: absent is "", present
// it must be 1 to 255 printable ASCII characters, once.
func idempotencyKey(c echo.Context) (string, error) {
	vals := c.Request().Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	bad := func(msg string) error {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "the Idempotency-Key header is not valid",
			Fields: map[string]string{"Idempotency-Key": msg}}
	}
	if len(vals) > 1 {
		return "", bad("Send the header once.")
	}
	k := vals[0]
	if k == "" || len(k) > tenant.MaxIdempotencyKey {
		return "", bad("Use 1 to 255 characters, such as a UUID or your own order id.")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", bad("Use printable ASCII characters only (letters, digits, punctuation, spaces).")
		}
	}
	return k, nil
}

// apiV1MessageSend queues {to, text, reply_to?}: 202 with the stored
// message when new, 200 with the first message when the Idempotency-Key
// was used within 24 hours (nothing is sent again).
func (p *Portal) apiV1MessageSend(c echo.Context) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var in struct {
		To      string `json:"to"`
		Text    string `json:"text"`
		ReplyTo int64  `json:"reply_to"`
		// media: {upload_id | url, kind?, caption?, file_name?}; with it,
		// text is optional and is the caption when media.caption is not.
		Media *struct {
			UploadID string `json:"upload_id"`
			URL      string `json:"url"`
			Kind     string `json:"kind"`
			Caption  string `json:"caption"`
			FileName string `json:"file_name"`
		} `json:"media"`
	}
	if err := decodeAPIV1JSON(c, &in); err != nil {
		return err
	}
	req := tenant.SendRequest{To: in.To, Text: in.Text, ReplyTo: in.ReplyTo, IdempotencyKey: key}
	if in.Media != nil {
		req.Media = &tenant.SendMedia{UploadID: in.Media.UploadID, URL: in.Media.URL, Kind: tenant.MediaKind(in.Media.Kind),
			Caption: in.Media.Caption, FileName: in.Media.FileName}
	}
	m, created, err := p.bot.Send(c.Request().Context(), apiTenantID(c), req)
	err = mediaAPIError(err) // apiv1_media.go
	if tenant.ErrorCode(err) == tenant.CodeTooMany {
		// The queue is full: it drains at the pacing rate.
		c.Response().Header().Set("Retry-After", "30")
	}
	if err != nil {
		return err
	}
	out := []messageV1{messageV1Of(m)}
	if req.Media != nil {
		if err := p.withMedia(c.Request().Context(), apiTenantID(c), out); err != nil {
			return err
		}
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set(echo.HeaderLocation, apiV1Prefix+"/messages/"+strconv.FormatInt(m.ID, 10))
	if !created {
		h.Set("Idempotent-Replayed", "true")
		return c.JSON(http.StatusOK, out[0])
	}
	return c.JSON(http.StatusAccepted, out[0])
}

// apiV1MessageShow answers with one of the workspace's messages; another
// workspace's id is not_found, as is one that does not exist.
func (p *Portal) apiV1MessageShow(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return newAPIError(http.StatusNotFound, "not_found", "there is no message with this id")
	}
	m, err := p.bot.Message(c.Request().Context(), apiTenantID(c), id)
	if errors.Is(err, tenant.ErrNotFound) {
		return newAPIError(http.StatusNotFound, "not_found", "there is no message with this id")
	}
	if err != nil {
		return err
	}
	out := []messageV1{messageV1Of(m)}
	if err := p.withMedia(c.Request().Context(), apiTenantID(c), out); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out[0])
}

// apiV1MessagesShow lists the workspace's messages, newest first
// (?limit=, ?cursor=, ?chat=, ?direction=, ?status=).
func (p *Portal) apiV1MessagesShow(c echo.Context) error {
	limit, fields := queryLimit(c)
	q := tenant.APIMessageQuery{Limit: limit, Cursor: c.QueryParam("cursor"), Direction: c.QueryParam("direction"),
		Status: tenant.APIStatus(c.QueryParam("status"))}
	if raw := c.QueryParam("chat"); raw != "" {
		if strings.HasPrefix(raw, " ") {
			raw = "+" + raw[1:] // ?chat=+15551234567 unescaped: the query decodes + as a space
		}
		chat, _, err := tenant.ValidateSend(tenant.SendRequest{To: raw, Text: "-"})
		if err != nil {
			fields["chat"] = "Use a chat id (15551234567@s.whatsapp.net, 120363000000000000@g.us) or a number in international format (+15551234567)."
		}
		q.Chat = chat
	}
	if len(fields) > 0 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "a query parameter is not valid", Fields: fields}
	}
	ms, next, err := p.bot.Messages(c.Request().Context(), apiTenantID(c), q)
	if err != nil {
		return err
	}
	out := messagesV1{Messages: make([]messageV1, 0, len(ms)), Next: nullIfEmpty(next)}
	for _, m := range ms {
		out.Messages = append(out.Messages, messageV1Of(m))
	}
	if err := p.withMedia(c.Request().Context(), apiTenantID(c), out.Messages); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// queryLimit reads ?limit= (the store checks its range) and starts the
// field errors of a list's query.
func queryLimit(c echo.Context) (int, map[string]string) {
	fields := map[string]string{}
	raw := c.QueryParam("limit")
	if raw == "" {
		return 0, fields
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 200 {
		fields["limit"] = "Use a whole number from 1 to 200."
	}
	return n, fields
}

type chatV1 struct {
	Chat        string    `json:"chat"`
	Phone       *string   `json:"phone"` // null for a group
	Messages    int       `json:"messages"`
	In          int       `json:"in"`
	Out         int       `json:"out"`
	LastMessage messageV1 `json:"last_message"`
}

type chatsV1 struct {
	Chats []chatV1 `json:"chats"`
	Next  *string  `json:"next"`
}

// apiV1ChatsShow lists the workspace's chats, most recently active first,
// each with its last message and counts (?limit=, ?cursor=).
func (p *Portal) apiV1ChatsShow(c echo.Context) error {
	limit, fields := queryLimit(c)
	if len(fields) > 0 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "a query parameter is not valid", Fields: fields}
	}
	chats, next, err := p.bot.Chats(c.Request().Context(), apiTenantID(c), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, chatsV1Of(chats, next))
}

// chatsV1Of is a page of chats as /api/v1 (and its MCP tools) answer it.
func chatsV1Of(chats []tenant.Chat, next string) chatsV1 {
	out := chatsV1{Chats: make([]chatV1, 0, len(chats)), Next: nullIfEmpty(next)}
	for _, ch := range chats {
		out.Chats = append(out.Chats, chatV1{Chat: ch.Chat, Phone: phoneOfChat(ch.Chat), Messages: ch.Messages, In: ch.In, Out: ch.Out,
			LastMessage: messageV1Of(ch.Last)})
	}
	return out
}

type contactV1 struct {
	Phone      string  `json:"phone"`
	OnWhatsApp bool    `json:"on_whatsapp"`
	Chat       *string `json:"chat"` // the chat id to send to; null when not on WhatsApp
}

// apiV1ContactsCheck answers {"phones": [...]} (1 to 50 numbers) with
// which have WhatsApp. WhatsApp is asked through the workspace's session,
// so an offline session is 409 session_not_connected: the request is
// fine, the link's state is not (link or wait for the reconnect).
func (p *Portal) apiV1ContactsCheck(c echo.Context) error {
	var in struct {
		Phones []string `json:"phones"`
	}
	if err := decodeAPIV1JSON(c, &in); err != nil {
		return err
	}
	out, err := p.checkContactsV1(c.Request().Context(), apiTenantID(c), in.Phones)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

type contactsV1 struct {
	Contacts []contactV1 `json:"contacts"`
}

// checkContactsV1 asks WhatsApp about phones for /api/v1 and its MCP
// tools, with their errors for an offline session and a slow answer.
func (p *Portal) checkContactsV1(ctx context.Context, tenantID string, phones []string) (contactsV1, error) {
	res, err := p.bot.CheckContacts(ctx, tenantID, phones)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeNotConnected {
		return contactsV1{}, newAPIError(http.StatusConflict, string(tenant.CodeNotConnected), de.Msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return contactsV1{}, &tenant.Error{Code: tenant.CodeUnavailable, Msg: "WhatsApp did not answer in time; try again"}
	}
	if err != nil {
		return contactsV1{}, err
	}
	out := contactsV1{Contacts: make([]contactV1, 0, len(res))}
	for _, r := range res {
		out.Contacts = append(out.Contacts, contactV1{Phone: r.Phone, OnWhatsApp: r.OnWA, Chat: nullIfEmpty(r.JID)})
	}
	return out, nil
}
