package portal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// The inbox: /app/chats lists the workspace's conversations, and
// /app/chats/{chat} opens one as a thread with a reply box. Replies go
// through the bot's durable send path (the API's), so one typed while the
// session is offline goes out after the reconnect, once.

// chatFilters are the list's filters, in the order the page shows them.
func chatFilters(l *views.Locale) []struct{ value, label string } {
	return []struct{ value, label string }{
		{"", l.T("FilterAll")}, {"unread", l.T("FilterUnread")}, {"mine", l.T("FilterMine")}, {"paused", l.T("AnswererPaused")},
	}
}

// inboxPage is the list and, when chat is set, its thread.
type inboxPage struct {
	chat       string
	before     string // the thread's older page
	replyText  string
	replyError string
	replyKey   string
	contact    *contactForm // a refused contact form, shown as sent
}

type contactForm struct {
	name, note string
	errs       map[string]string
}

func (p *Portal) chatsShow(c echo.Context) error {
	return p.renderInbox(c, http.StatusOK, inboxPage{})
}

// chatShow opens a chat and marks it read up to its newest message.
func (p *Portal) chatShow(c echo.Context) error {
	chat, err := chatParam(c)
	if err != nil {
		return err
	}
	return p.renderInbox(c, http.StatusOK, inboxPage{chat: chat, before: c.QueryParam("before")})
}

// chatParam is the :chat of the URL, a chat JID (never a path).
func chatParam(c echo.Context) (string, error) {
	chat, err := url.PathUnescape(c.Param("chat"))
	if err != nil || !tenant.ValidChat(chat) {
		return "", echo.NewHTTPError(http.StatusNotFound)
	}
	return chat, nil
}

func chatURL(chat string) string { return "/app/chats/" + url.PathEscape(chat) }

// chatOfTenant is the :chat of the URL when the workspace has it (any
// message, or state of its own); else 404, as for another workspace's.
func (p *Portal) chatOfTenant(c echo.Context) (string, error) {
	chat, err := chatParam(c)
	if err != nil {
		return "", err
	}
	if _, _, err := p.store.Thread(c.Request().Context(), currentTenant(c).ID, chat, "", 1); err != nil {
		return "", err
	}
	return chat, nil
}

// listQuery is the list's search, filter and page from the URL.
func listQuery(c echo.Context, userID string) (tenant.ConversationQuery, string) {
	q := tenant.ConversationQuery{Search: c.QueryParam("q"), Cursor: c.QueryParam("cursor"), Limit: 50}
	filter := c.QueryParam("filter")
	switch filter {
	case "unread":
		q.Unread = true
	case "mine":
		q.AssignedTo = userID
	case "paused":
		q.Paused = true
	default:
		filter = ""
	}
	return q, filter
}

func (p *Portal) renderInbox(c echo.Context, status int, pg inboxPage) error {
	t := currentTenant(c)
	u, _ := currentUser(c)
	ctx := c.Request().Context()
	// Read first, so a change while the page renders shows on the next
	// event rather than being lost.
	mark, err := p.store.InboxMark(ctx, t.ID)
	if err != nil {
		return err
	}
	var tv *views.ThreadView
	if pg.chat != "" {
		if tv, err = p.threadView(c, pg); err != nil {
			return err
		}
	}
	q, filter := listQuery(c, u.ID)
	convs, next, err := p.store.Conversations(ctx, t.ID, q)
	if tenant.ErrorCode(err) == tenant.CodeInvalid {
		convs, next, err = p.store.Conversations(ctx, t.ID, tenant.ConversationQuery{Limit: 50}) // a stale cursor: the first page
	}
	if err != nil {
		return err
	}
	unread, err := p.store.UnreadChats(ctx, t.ID)
	if err != nil {
		return err
	}
	keep := url.Values{}
	if q.Search != "" {
		keep.Set("q", q.Search)
	}
	if filter != "" {
		keep.Set("filter", filter)
	}
	base := "/app/chats"
	if pg.chat != "" {
		base = chatURL(pg.chat)
	}
	title := loc(c).T("NavChats")
	if unread > 0 {
		title = fmt.Sprintf("(%d) %s", unread, title)
	}
	v := views.ChatsView{
		Chrome: p.chrome(c, title, "chats"), Search: q.Search, Filter: filter,
		StreamURL: "/app/chats/events", Mark: mark, Thread: tv, QuickRepliesURL: "/app/settings/quick-replies",
	}
	for _, f := range chatFilters(loc(c)) {
		vals := url.Values{}
		if q.Search != "" {
			vals.Set("q", q.Search)
		}
		if f.value != "" {
			vals.Set("filter", f.value)
		}
		v.Filters = append(v.Filters, views.FilterLink{Label: f.label, Value: cmpOr(f.value, "all"), URL: withQuery(base, vals), Active: f.value == filter})
	}
	if next != "" {
		keep.Set("cursor", next)
		v.NextURL = withQuery(base, keep)
	}
	names := map[string]string{}
	for _, cv := range convs {
		v.Chats = append(v.Chats, p.chatRow(c, cv, pg.chat, keep, names))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return Render(c, status, views.ChatsPage(v))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func withQuery(path string, vals url.Values) string {
	if len(vals) == 0 {
		return path
	}
	return path + "?" + vals.Encode()
}

func (p *Portal) chatRow(c echo.Context, cv tenant.Conversation, open string, keep url.Values, names map[string]string) views.ChatRow {
	l := loc(c)
	row := views.ChatRow{
		Chat: cv.Chat, Name: cmpOr(cv.Name, chatName(cv.Chat)), Phone: cv.Phone, Preview: previewOf(l, cv.Last.Kind, cv.Last.Body),
		LastOut: cv.Last.Direction == "out", At: shortTime(l, cv.Last.CreatedAt), AtISO: cv.Last.CreatedAt.UTC().Format(time.RFC3339),
		Unread: cv.Unread, Answerer: answerer(l, cv.BotPaused, cv.Waiting), Open: cv.Chat == open,
	}
	vals := url.Values{}
	for _, k := range []string{"q", "filter"} {
		if keep.Get(k) != "" {
			vals.Set(k, keep.Get(k))
		}
	}
	row.URL = withQuery(chatURL(cv.Chat), vals)
	if cv.AssignedTo != "" {
		row.Assigned = p.userName(c, cv.AssignedTo, names)
	}
	return row
}

// previewOf is what the list shows of a message: its text, else its kind.
func previewOf(l *views.Locale, kind, body string) string {
	if strings.TrimSpace(body) != "" {
		return body
	}
	if kind != "" && kind != "text" {
		return "(" + views.KindLabel(l, kind) + ")"
	}
	return ""
}

func answerer(l *views.Locale, paused, waiting bool) string {
	switch {
	case waiting:
		return l.T("AnswererWaiting")
	case paused:
		return l.T("AnswererPaused")
	}
	return l.T("AnswererBot")
}

// shortTime is a list's time: the hour today, else the day.
func shortTime(l *views.Locale, t time.Time) string {
	t = t.UTC()
	if now := time.Now().UTC(); t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04")
	}
	return l.Day(t)
}

// userName is a user's name or email, looked up once per page.
func (p *Portal) userName(c echo.Context, id string, names map[string]string) string {
	if n, ok := names[id]; ok {
		return n
	}
	n := "a former member"
	if u, err := p.store.UserByID(c.Request().Context(), id); err == nil {
		n = cmpOr(u.Name, u.Email)
	}
	names[id] = n
	return n
}

func (p *Portal) threadView(c echo.Context, pg inboxPage) (*views.ThreadView, error) {
	t := currentTenant(c)
	u, _ := currentUser(c)
	ctx := c.Request().Context()
	msgs, older, err := p.store.Thread(ctx, t.ID, pg.chat, pg.before, 50)
	if tenant.ErrorCode(err) == tenant.CodeBadRequest {
		return nil, echo.NewHTTPError(http.StatusNotFound)
	}
	if err != nil {
		return nil, err
	}
	if pg.before == "" && len(msgs) > 0 {
		// Opening the chat reads it.
		before, err := p.store.MarkRead(ctx, t.ID, pg.chat, msgs[len(msgs)-1].ID)
		if err != nil {
			return nil, err
		}
		var read []tenant.Message
		for _, m := range msgs {
			if m.ID > before {
				read = append(read, m.Message)
			}
		}
		p.bot.ReadReceipts(t.ID, pg.chat, read)
	}
	state, err := p.store.ChatStateOf(ctx, t.ID, pg.chat)
	if err != nil {
		return nil, err
	}
	plain := make([]tenant.Message, len(msgs))
	for i, m := range msgs {
		plain[i] = m.Message
	}
	media, err := p.mediaOfMessages(ctx, t.ID, plain)
	if err != nil {
		return nil, err
	}
	base := chatURL(pg.chat)
	tv := &views.ThreadView{
		Chat: pg.chat, Base: base, Phone: chatPhoneOf(pg.chat), BotPaused: state.BotPaused, Waiting: state.Waiting,
		ByModel:    state.BotPaused && state.PausedBy == tenant.PausedByModel,
		AssignedMe: state.AssignedTo == u.ID, ContactName: state.ContactName, Note: state.Note,
		ReplyText: pg.replyText, ReplyError: pg.replyError, ReplyKey: cmpOr(pg.replyKey, "inbox-"+rand.Text()),
	}
	names := map[string]string{}
	if state.AssignedTo != "" {
		tv.AssignedTo = p.userName(c, state.AssignedTo, names)
	}
	members, err := p.store.Members(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		tv.Members = append(tv.Members, views.MemberChoice{ID: m.UserID, Name: cmpOr(m.Name, m.Email), Current: m.UserID == state.AssignedTo})
	}
	tv.Name = state.ContactName
	if tv.Name == "" {
		for i := len(msgs) - 1; i >= 0 && tv.Name == ""; i-- {
			if msgs[i].Direction == "in" {
				tv.Name = msgs[i].SenderName
			}
		}
	}
	tv.Name = cmpOr(tv.Name, chatName(pg.chat))
	if pg.contact != nil {
		tv.ContactName, tv.Note, tv.ContactErrs = pg.contact.name, pg.contact.note, pg.contact.errs
	}
	if older != "" {
		tv.OlderURL = base + "?before=" + older
	}
	if pg.before != "" {
		tv.NewestURL = base
	}
	for _, m := range msgs {
		tv.Messages = append(tv.Messages, bubbleOf(views.LocaleOf(ctx), m, media))
	}
	qs, err := p.store.QuickReplies(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		tv.QuickReplies = append(tv.QuickReplies, views.QuickReplyView{ID: q.ID, Shortcut: q.Shortcut, Body: q.Body})
	}
	return tv, nil
}

func chatPhoneOf(chat string) string {
	if p := phoneOfChat(chat); p != nil {
		return *p
	}
	return ""
}

// bubbleOf is one message of a thread with its marks and who wrote it.
func bubbleOf(l *views.Locale, m tenant.ThreadMessage, media map[int64]tenant.MessageMedia) views.BubbleView {
	b := views.BubbleView{
		ID: m.ID, Direction: m.Direction, Body: m.Body, Cut: m.Cut, URL: "/app/logs/" + strconv.FormatInt(m.ID, 10), Kind: m.Kind,
		At: l.DayTime(m.CreatedAt), AtISO: m.CreatedAt.UTC().Format(time.RFC3339),
		Skipped: tenant.SkippedPaused(m.Message),
	}
	if md, ok := media[m.ID]; ok {
		b.Media = mediaView(l, md, m.Body)
	}
	if m.Direction == "in" {
		if !b.Skipped && m.Status == tenant.MsgFailed {
			b.Error = messageError(l, m.Error)
		}
		return b
	}
	switch {
	case m.AuthorID != "":
		b.By = cmpOr(m.AuthorName, l.T("FormerMember"))
	case m.Source == "api":
		b.By = "API"
	case m.Origin != "":
		b.By = l.T("BotOrigin", "Origin", views.OriginLabel(l, m.Origin))
	default:
		b.By = l.T("BotLower")
	}
	switch m.Status {
	case tenant.MsgPending:
		b.Mark, b.MarkLabel = "queued", l.T("MarkQueued")
	case tenant.MsgReplied:
		b.Mark, b.MarkLabel = "sent", l.T("MarkSent")
		switch m.Delivery {
		case "delivered":
			b.Mark, b.MarkLabel = "delivered", l.T("MarkDelivered")
		case "read":
			b.Mark, b.MarkLabel = "read", l.T("MarkRead")
		}
	default:
		b.Mark, b.MarkLabel, b.Error = "failed", l.T("MarkNotSent"), messageError(l, m.Error)
	}
	return b
}

// chatReply sends the reply box's text to the chat through the durable
// send path; the form's key makes a double submit send once. op=insert
// (the no-script quick reply button) adds the chosen quick reply to the
// text and shows the form again, sending nothing.
func (p *Portal) chatReply(c echo.Context) error {
	chat, err := p.chatOfTenant(c)
	if err != nil {
		return err
	}
	t := currentTenant(c)
	u, _ := currentUser(c)
	ctx := c.Request().Context()
	text, key := c.FormValue("text"), c.FormValue("key")
	if !validReplyKey(key) {
		key = ""
	}
	if c.FormValue("op") == "insert" {
		if id := c.FormValue("quick"); id != "" {
			qs, err := p.store.QuickReplies(ctx, t.ID)
			if err != nil {
				return err
			}
			for _, q := range qs {
				if q.ID == id {
					text += q.Body
				}
			}
		}
		return p.renderInbox(c, http.StatusOK, inboxPage{chat: chat, replyText: text, replyKey: key})
	}
	if msg := replyProblem(loc(c), text); msg != "" {
		return p.renderInbox(c, http.StatusUnprocessableEntity, inboxPage{chat: chat, replyText: text, replyKey: key, replyError: msg})
	}
	_, created, err := p.bot.Send(ctx, t.ID, tenant.SendRequest{To: chat, Text: text, IdempotencyKey: key, AuthorID: u.ID})
	var de *tenant.Error
	if errors.As(err, &de) && (de.Code == tenant.CodeInvalid || de.Code == tenant.CodeTooMany) {
		msg := de.Msg
		if f := de.Fields["text"]; f != "" {
			msg = fieldText(loc(c), f)
		}
		status := statusOf[de.Code]
		return p.renderInbox(c, status, inboxPage{chat: chat, replyText: text, replyKey: key, replyError: msg})
	}
	if err != nil {
		return err
	}
	if created {
		if err := p.store.NoteHumanReply(ctx, t.ID, chat, u.ID); err != nil {
			return err
		}
		if err := p.store.Audit(ctx, u, "reply", t.ID, chat); err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, chatURL(chat))
}

// validReplyKey accepts the keys the form hands out.
func validReplyKey(k string) bool {
	if !strings.HasPrefix(k, "inbox-") || len(k) > 64 {
		return false
	}
	for _, r := range k[len("inbox-"):] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// replyProblem says what is wrong with a reply's text, "" when nothing.
func replyProblem(l *views.Locale, text string) string {
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "":
		return l.T("ReplyEmpty")
	case !utf8.ValidString(text):
		return l.T("ReplyNotUTF8")
	case n > tenant.MaxTextChars:
		return l.T("ReplyTooLong", "Max", tenant.MaxTextChars, "N", n)
	}
	return ""
}

// chatPause and chatResume hand the chat to a person and back to the bot.
func (p *Portal) chatPause(c echo.Context) error {
	return p.chatAction(c, "pause bot", func(tenantID, chat, userID string) error {
		return p.store.PauseBot(c.Request().Context(), tenantID, chat, userID, false)
	})
}

func (p *Portal) chatResume(c echo.Context) error {
	return p.chatAction(c, "resume bot", func(tenantID, chat, _ string) error {
		return p.store.ResumeBot(c.Request().Context(), tenantID, chat)
	})
}

// chatAssign assigns the chat to the signed-in user (to=me), another
// member of the tenant (to=their id) or nobody (to empty); the store
// refuses anyone else.
func (p *Portal) chatAssign(c echo.Context) error {
	return p.chatAction(c, "assign chat", func(tenantID, chat, userID string) error {
		to := c.FormValue("to")
		if to == "me" {
			to = userID
		}
		return p.store.Assign(c.Request().Context(), tenantID, chat, to)
	})
}

// chatAction does a chat's action and records who did it in the audit log.
func (p *Portal) chatAction(c echo.Context, action string, do func(tenantID, chat, userID string) error) error {
	chat, err := p.chatOfTenant(c)
	if err != nil {
		return err
	}
	u, _ := currentUser(c)
	if err := do(currentTenant(c).ID, chat, u.ID); err != nil {
		return err
	}
	detail := chat
	if action == "assign chat" {
		switch to := c.FormValue("to"); to {
		case "":
			detail += " to nobody"
		case "me":
			detail += " to " + u.Email
		default:
			detail += " to " + p.emailOf(c, to)
		}
	}
	if err := p.store.Audit(c.Request().Context(), u, action, currentTenant(c).ID, detail); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, chatURL(chat))
}

// chatContact saves the business's name and note for the contact.
func (p *Portal) chatContact(c echo.Context) error {
	chat, err := p.chatOfTenant(c)
	if err != nil {
		return err
	}
	name, note := c.FormValue("name"), c.FormValue("note")
	err = p.store.SetContact(c.Request().Context(), currentTenant(c).ID, chat, name, note)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		return p.renderInbox(c, http.StatusUnprocessableEntity, inboxPage{chat: chat, contact: &contactForm{name: name, note: note, errs: fieldTexts(loc(c), de.Fields)}})
	}
	if err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashContactSaved"))
	return c.Redirect(http.StatusSeeOther, chatURL(chat))
}

// inboxPollInterval is how often an open inbox page's stream asks the
// store whether anything changed: three index look-ups.
const inboxPollInterval = time.Second

// chatsEvents streams "changed" events to an open inbox page whenever a
// message of the workspace arrives or changes or a chat's state does; the
// page then re-reads itself. Bounded like the link page's stream: the
// user's StreamsPerUser, StreamLifetime, and a re-check of the browser
// session every StreamRecheck.
func (p *Portal) chatsEvents(c echo.Context) error {
	t := currentTenant(c)
	u, _ := currentUser(c)
	ctx := c.Request().Context()
	token := p.browser.Token(ctx)
	if !p.streams.acquire(u.ID, p.cfg.StreamsPerUser) {
		return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many live pages open; close some tabs and reload"}
	}
	defer p.streams.release(u.ID)
	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	last := c.QueryParam("mark")
	if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
		last = id
	}
	poll := time.NewTicker(inboxPollInterval)
	defer poll.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	recheck := time.NewTicker(p.cfg.StreamRecheck)
	defer recheck.Stop()
	lifetime := time.NewTimer(p.cfg.StreamLifetime)
	defer lifetime.Stop()
	for {
		mark, err := p.store.InboxMark(ctx, t.ID)
		if err != nil {
			return nil
		}
		if mark != last {
			last = mark
			fmt.Fprintf(c.Response(), "id: %s\nevent: changed\ndata: %s\n\n", mark, mark)
			c.Response().Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.streamsDone:
			return nil
		case <-lifetime.C:
			return nil
		case <-recheck.C:
			if !p.streamAllowed(ctx, token, u.ID, t.ID, false) {
				return nil
			}
		case <-keepalive.C:
			fmt.Fprint(c.Response(), ": keepalive\n\n")
			c.Response().Flush()
		case <-poll.C:
		}
	}
}

func (p *Portal) quickRepliesShow(c echo.Context) error {
	return p.renderQuickReplies(c, http.StatusOK, "", "", nil)
}

func (p *Portal) renderQuickReplies(c echo.Context, status int, shortcut, body string, errs map[string]string) error {
	qs, err := p.store.QuickReplies(c.Request().Context(), currentTenant(c).ID)
	if err != nil {
		return err
	}
	v := views.QuickRepliesView{Chrome: p.chrome(c, loc(c).T("QuickReplies"), "chats"), Shortcut: shortcut, Body: body, Errors: errs}
	for _, q := range qs {
		v.Replies = append(v.Replies, views.QuickReplyView{ID: q.ID, Shortcut: q.Shortcut, Body: q.Body})
	}
	return Render(c, status, views.QuickRepliesPage(v))
}

func (p *Portal) quickReplyCreate(c echo.Context) error {
	shortcut, body := c.FormValue("shortcut"), c.FormValue("body")
	_, err := p.store.SaveQuickReply(c.Request().Context(), currentTenant(c).ID, shortcut, body)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		errs := fieldTexts(loc(c), de.Fields)
		if len(errs) == 0 {
			errs = map[string]string{"shortcut": de.Msg}
		}
		return p.renderQuickReplies(c, http.StatusUnprocessableEntity, shortcut, body, errs)
	}
	if err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashQuickReplySaved"))
	return c.Redirect(http.StatusSeeOther, "/app/settings/quick-replies")
}

func (p *Portal) quickReplyDelete(c echo.Context) error {
	if err := p.store.DeleteQuickReply(c.Request().Context(), currentTenant(c).ID, c.Param("id")); err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashQuickReplyRemoved"))
	return c.Redirect(http.StatusSeeOther, "/app/settings/quick-replies")
}
