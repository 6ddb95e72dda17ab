package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"golang.org/x/time/rate"

	"wabot/session"
	"wabot/tenant"
)

// config is a saved configuration with its rules compiled.
type config struct {
	tenant.BotConfig
	rules *tenant.CompiledRules
}

// tenantBot is one tenant's pipeline: chat queues, limits and the sender.
type tenantBot struct {
	b   *Bot
	id  string
	out session.Sender
	log *slog.Logger

	cfg    atomic.Pointer[config]
	online atomic.Bool
	onCh   chan struct{} // closed and replaced when the tenant comes online

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{} // chats answered at once

	statusMu     sync.Mutex
	status       tenant.Status
	statusLoaded time.Time

	mu       sync.Mutex
	onMu     sync.Mutex
	chats    map[string]*chatQueue
	tenantRL *rate.Limiter
	chatRL   map[string]*rate.Limiter
}

// chatQueue holds one chat's stored messages in arrival order; a worker
// goroutine exists while it is not empty.
type chatQueue struct {
	items    []int64 // inbound message ids
	running  bool
	busySent bool // one busy reply per overflow
}

func newTenantBot(b *Bot, id string, out session.Sender) *tenantBot {
	ctx, cancel := context.WithCancel(b.ctx)
	return &tenantBot{
		b: b, id: id, out: out, log: b.log.With("tenant", id),
		ctx: ctx, cancel: cancel, sem: make(chan struct{}, b.opts.ParallelChats),
		chats: map[string]*chatQueue{}, chatRL: map[string]*rate.Limiter{}, onCh: make(chan struct{}),
	}
}

func (t *tenantBot) start() {
	cfg, err := t.b.store.BotConfigOf(t.ctx, t.id)
	if err != nil {
		t.log.Error("cannot load bot configuration; using the default", "err", err)
		cfg = tenant.DefaultBotConfig()
	}
	t.setConfig(cfg)
	t.resume()
}

func (t *tenantBot) setConfig(c tenant.BotConfig) {
	rules, err := c.Compile()
	if err != nil {
		t.log.Error("stored bot rules do not compile; answering without rules", "err", err)
		rules, _ = (&tenant.BotConfig{}).Compile()
	}
	t.cfg.Store(&config{BotConfig: c, rules: rules})
	t.mu.Lock()
	t.tenantRL = newLimiter(c.Limits.PerTenantPerMinute)
	t.chatRL = map[string]*rate.Limiter{}
	t.mu.Unlock()
}

// newLimiter allows perMinute replies a minute, in bursts of up to that
// many; 0 is no limit (nil).
func newLimiter(perMinute int) *rate.Limiter {
	if perMinute <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)
}

func hasToken(l *rate.Limiter, now time.Time) bool { return l == nil || l.TokensAt(now) >= 1 }

func takeToken(l *rate.Limiter, now time.Time) {
	if l != nil {
		l.AllowN(now, 1)
	}
}

// Online is told by the supervisor whether the tenant's client is logged in.
func (t *tenantBot) Online(on bool) {
	t.online.Store(on)
	if on {
		t.onMu.Lock()
		close(t.onCh)
		t.onCh = make(chan struct{})
		t.onMu.Unlock()
	}
}

// waitOnline blocks until the client is logged in or the pipeline stops.
func (t *tenantBot) waitOnline() bool {
	for !t.online.Load() {
		t.onMu.Lock()
		ch := t.onCh
		t.onMu.Unlock()
		if t.online.Load() {
			return true
		}
		select {
		case <-ch:
		case <-t.ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
	return t.ctx.Err() == nil
}

// Detach stops the chat workers and waits for them; what they had not
// answered stays stored and is picked up by the next Attach.
func (t *tenantBot) Detach() {
	t.cancel()
	t.wg.Wait()
	t.b.detached(t)
}

// resume queues what an earlier run stored but did not finish: received
// messages and replies that may not have been sent.
func (t *tenantBot) resume() {
	open, err := t.b.store.Unanswered(t.ctx, t.id)
	if err != nil {
		t.log.Error("cannot read unanswered messages", "err", err)
		return
	}
	for _, in := range open {
		t.enqueue(in.Chat, in.ID, false)
	}
	if len(open) > 0 {
		t.log.Info("answering messages stored before the restart", "count", len(open))
	}
}

// inbound is what the pipeline keeps of an incoming message.
type inbound struct {
	id       int64
	chat     types.JID
	sender   types.JID
	name     string
	text     string
	kind     string
	waID     string
	isGroup  bool
	at       time.Time
	status   tenant.MessageStatus
	errorMsg string
}

// HandleMessage runs on whatsmeow's event goroutine: it classifies and
// stores the message and queues it, never waiting on the answer. Returning
// false (storage failed) leaves the message unacknowledged, so WhatsApp
// delivers it again.
func (t *tenantBot) HandleMessage(evt *events.Message) bool {
	info := evt.Info
	if info.IsFromMe || info.Chat.Server == types.BroadcastServer || info.Chat.Server == types.NewsletterServer {
		return true // status updates, broadcasts and our own messages are not for the bot
	}
	kind, text := classify(evt)
	if kind == "" {
		return true // protocol traffic (key shares, history sync, revokes...)
	}
	in := inbound{
		chat: info.Chat, sender: info.Sender, name: info.PushName, text: text, kind: kind,
		waID: info.ID, isGroup: info.IsGroup, at: info.Timestamp, status: tenant.MsgReceived,
	}
	if in.at.IsZero() {
		in.at = time.Now()
	}
	cfg := t.cfg.Load()
	switch {
	case kind != "text":
		in.status, in.errorMsg = tenant.MsgIgnored, kind+" messages are not answered"
	case in.isGroup && !cfg.ReplyInGroups:
		in.status, in.errorMsg = tenant.MsgIgnored, "group chats are not answered"
	}
	id, dup, err := t.storeInbound(in)
	if err != nil {
		t.log.Error("cannot store an incoming message; WhatsApp will deliver it again", "err", err)
		return false
	}
	switch {
	case dup:
		t.b.opts.Observer.Message("in", tenant.MsgDuplicate)
	default:
		t.b.opts.Observer.Message("in", in.status)
	}
	if dup || in.status != tenant.MsgReceived {
		return true
	}
	t.enqueue(in.chat.String(), id, true)
	return true
}

// classify returns the kind of a message and its text; an empty kind means
// it is not a message a person sent.
func classify(evt *events.Message) (kind, text string) {
	m := evt.Message
	if evt.IsEdit {
		return "edit", m.GetProtocolMessage().GetEditedMessage().GetConversation()
	}
	switch {
	case m.GetConversation() != "":
		return "text", m.GetConversation()
	case m.GetExtendedTextMessage() != nil:
		return "text", m.GetExtendedTextMessage().GetText()
	case m.GetReactionMessage() != nil:
		return "reaction", m.GetReactionMessage().GetText()
	case m.GetImageMessage() != nil:
		return "image", m.GetImageMessage().GetCaption()
	case m.GetVideoMessage() != nil:
		return "video", m.GetVideoMessage().GetCaption()
	case m.GetAudioMessage() != nil:
		return "audio", ""
	case m.GetDocumentMessage() != nil:
		return "document", m.GetDocumentMessage().GetFileName()
	case m.GetStickerMessage() != nil:
		return "sticker", ""
	case m.GetLocationMessage() != nil, m.GetLiveLocationMessage() != nil:
		return "location", ""
	case m.GetContactMessage() != nil, m.GetContactsArrayMessage() != nil:
		return "contact", ""
	case m.GetPollCreationMessage() != nil, m.GetPollCreationMessageV3() != nil, m.GetPollUpdateMessage() != nil:
		return "poll", ""
	case m.GetProtocolMessage() != nil, m.GetSenderKeyDistributionMessage() != nil:
		// Key shares, history sync, revokes: whatsmeow's business. A group
		// message's text comes as its own event with the same id.
		return "", ""
	}
	return "other", ""
}

// storeInbound writes the inbound row; a message already stored (same
// chat and id) is logged once more as a duplicate and not answered.
func (t *tenantBot) storeInbound(in inbound) (id int64, dup bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return t.b.store.StoreInbound(ctx, t.id, tenant.Inbound{
		Chat: in.chat.String(), Sender: in.sender.ToNonAD().String(), SenderName: in.name,
		WAID: in.waID, Kind: in.kind, Body: in.text, Status: in.status, Error: in.errorMsg,
	})
}

// enqueue adds a stored message to its chat's queue. When the queue is
// full the message is logged as dropped and the chat gets one busy reply.
func (t *tenantBot) enqueue(chat string, id int64, fresh bool) {
	cfg := t.cfg.Load()
	t.mu.Lock()
	q := t.chats[chat]
	if q == nil {
		q = &chatQueue{}
		t.chats[chat] = q
	}
	if fresh && len(q.items) >= cfg.Limits.QueuePerChat {
		sendBusy := !q.busySent
		q.busySent = true
		t.mu.Unlock()
		t.setInbound(id, tenant.MsgDropped, "the chat's queue was full")
		if sendBusy && cfg.BusyReply != "" {
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				t.replyTo(id, chat, cfg.BusyReply, time.Now())
			}()
		}
		return
	}
	q.items = append(q.items, id)
	start := !q.running
	q.running = true
	t.mu.Unlock()
	if start {
		t.wg.Add(1)
		go t.chatWorker(chat)
	}
}

// chatWorker answers one chat's messages in order, then exits. The
// message being answered is no longer in the queue: the queue bound counts
// waiting messages.
func (t *tenantBot) chatWorker(chat string) {
	defer t.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("chat worker panicked; its messages stay stored and are retried at the next start", "panic", fmt.Sprint(r))
			t.mu.Lock()
			if q := t.chats[chat]; q != nil {
				q.running = false
			}
			t.mu.Unlock()
		}
	}()
	for {
		t.mu.Lock()
		q := t.chats[chat]
		if len(q.items) == 0 || t.ctx.Err() != nil {
			q.running = false
			if len(q.items) == 0 {
				delete(t.chats, chat)
			}
			t.mu.Unlock()
			return
		}
		id := q.items[0]
		q.items = q.items[1:]
		t.mu.Unlock()

		select {
		case t.sem <- struct{}{}:
		case <-t.ctx.Done():
			continue // stopped: the message stays stored as received
		}
		t.process(id)
		<-t.sem
		t.mu.Lock()
		if len(q.items) < t.cfg.Load().Limits.QueuePerChat {
			q.busySent = false
		}
		t.mu.Unlock()
	}
}

// process answers one stored message. It returns false if the pipeline
// stopped before the message was finished.
func (t *tenantBot) process(id int64) bool {
	if t.b.hold {
		<-t.ctx.Done()
		return false
	}
	in, err := t.load(id)
	if err != nil {
		t.log.Error("cannot load a stored message", "id", id, "err", err)
		return true
	}
	if in.status != tenant.MsgReceived {
		return true
	}
	if done, ok := t.finishEarlierReplies(in); done {
		return ok
	}
	cfg := t.cfg.Load()
	status, err := t.tenantStatus()
	if err != nil {
		return t.ctx.Err() == nil
	}
	switch {
	case status != tenant.StatusActive:
		t.setInbound(id, tenant.MsgIgnored, "the workspace is "+strings.ToLower(string(status))+": the bot answers only for active workspaces")
		return true
	case !cfg.Enabled:
		t.setInbound(id, tenant.MsgIgnored, "the bot is turned off")
		return true
	case in.isGroup && !cfg.ReplyInGroups:
		t.setInbound(id, tenant.MsgIgnored, "group chats are not answered")
		return true
	}
	phone := "+" + in.sender.User
	fill := func(reply string) string { return tenant.Fill(reply, in.name, phone, in.text) }

	reply, matched := cfg.rules.Match(in.text)
	if cfg.Webhook.URL != "" {
		deliveryID, err := t.b.queueDelivery(t.ctx, t.id, in, cfg.Webhook.URL, matched)
		if err != nil {
			t.log.Error("cannot queue a webhook delivery", "err", err)
		} else if !matched {
			if r, ok := t.b.deliverNow(t.ctx, deliveryID, cfg.Webhook.Secret); ok && r != "" {
				reply, matched = r, true
			}
		}
	}
	var replies []string
	if cfg.WelcomeReply != "" && t.firstMessage(in.chat.String()) {
		replies = append(replies, fill(cfg.WelcomeReply))
	}
	if matched {
		replies = append(replies, fill(reply))
	} else if cfg.FallbackReply != "" {
		replies = append(replies, fill(cfg.FallbackReply))
	}
	if len(replies) == 0 {
		t.setInbound(id, tenant.MsgIgnored, "no rule matched and there is no fallback reply")
		return true
	}
	final := tenant.MsgReplied
	for _, r := range replies {
		st, ok := t.replyTo(id, in.chat.String(), r, in.at)
		if !ok {
			return false
		}
		if st != tenant.MsgReplied {
			final = st
		}
	}
	t.setInbound(id, final, "")
	return true
}

// tenantStatus reads the tenant's status at most once a second: an
// approval or suspension reaches the bot within a second, without a read
// per message.
func (t *tenantBot) tenantStatus() (tenant.Status, error) {
	t.statusMu.Lock()
	defer t.statusMu.Unlock()
	if time.Since(t.statusLoaded) < time.Second {
		return t.status, nil
	}
	tn, err := t.b.store.TenantByID(t.ctx, t.id)
	if err != nil {
		return "", err
	}
	t.status, t.statusLoaded = tn.Status, time.Now()
	return t.status, nil
}

// finishEarlierReplies completes a message an earlier run had begun to
// answer: replies it logged as pending are sent again with their own
// WhatsApp ids (WhatsApp keeps one message per id), and none is composed
// anew. done is false when there were no such replies.
func (t *tenantBot) finishEarlierReplies(in inbound) (done, ok bool) {
	rs, err := t.b.store.RepliesTo(t.ctx, in.id)
	if err != nil {
		return false, true
	}
	if len(rs) == 0 {
		return false, true
	}
	final := tenant.MsgReplied
	for _, r := range rs {
		st := r.Status
		if st == tenant.MsgPending {
			var sent bool
			if st, sent = t.send(r.ID, in.chat, r.WAID, r.Body, in.at); !sent {
				return true, false
			}
		}
		if st != tenant.MsgReplied {
			final = st
		}
	}
	t.setInbound(in.id, final, "")
	return true, true
}

// firstMessage records that the chat got its welcome; true only the first
// time ever.
func (t *tenantBot) firstMessage(chat string) bool {
	first, err := t.b.store.MarkWelcomed(t.ctx, t.id, chat)
	if err != nil {
		t.log.Warn("cannot record a welcome; not sending it", "err", err)
	}
	return first
}

// replyTo sends one reply to the chat of inbound message id, within the
// rate limits, logging it. The reply row is written as pending, with its
// WhatsApp id, before sending, so a crash in between resends the same id,
// which WhatsApp keeps once. It returns the reply's status, and false if
// the pipeline stopped before it was sent.
func (t *tenantBot) replyTo(inID int64, chat, text string, storedAt time.Time) (tenant.MessageStatus, bool) {
	chatJID, err := types.ParseJID(chat)
	if err != nil {
		return tenant.MsgFailed, true
	}
	if !t.allow(chat) {
		t.insertOut(inID, chat, "", text, tenant.MsgRateLimited, "over the tenant's or the chat's reply rate limit")
		return tenant.MsgRateLimited, true
	}
	waID := t.out.NewMessageID()
	outID, err := t.insertOut(inID, chat, waID, text, tenant.MsgPending, "")
	if err != nil {
		return tenant.MsgFailed, true
	}
	return t.send(outID, chatJID, waID, text, storedAt)
}

// send delivers a pending reply, waiting for the client when it is offline
// and retrying errors WhatsApp may recover from.
func (t *tenantBot) send(outID int64, chat types.JID, waID, text string, storedAt time.Time) (tenant.MessageStatus, bool) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		if !t.waitOnline() {
			return "", false
		}
		ctx, cancel := context.WithTimeout(t.ctx, t.b.opts.SendTimeout)
		lastErr = t.out.SendText(ctx, chat, waID, text)
		cancel()
		if lastErr == nil {
			t.b.opts.Observer.Replied(time.Since(storedAt))
			t.setOut(outID, tenant.MsgReplied, "")
			return tenant.MsgReplied, true
		}
		if t.ctx.Err() != nil {
			return "", false
		}
		if errors.Is(lastErr, session.ErrOffline) {
			attempt-- // not WhatsApp's answer: wait for the connection
			continue
		}
		if !retryable(lastErr) {
			break
		}
		select {
		case <-time.After(time.Duration(attempt) * time.Second):
		case <-t.ctx.Done():
			return "", false
		}
	}
	t.log.Warn("reply failed", "err", lastErr)
	t.setOut(outID, tenant.MsgFailed, lastErr.Error())
	return tenant.MsgFailed, true
}

func retryable(err error) bool {
	return errors.Is(err, whatsmeow.ErrMessageTimedOut) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, whatsmeow.ErrNotConnected) || errors.Is(err, whatsmeow.ErrNotLoggedIn)
}

func (t *tenantBot) allow(chat string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg := t.cfg.Load()
	rl, ok := t.chatRL[chat]
	if !ok {
		rl = newLimiter(cfg.Limits.PerChatPerMinute)
		if len(t.chatRL) > 10000 {
			t.chatRL = map[string]*rate.Limiter{}
		}
		t.chatRL[chat] = rl
	}
	now := time.Now()
	if !hasToken(rl, now) || !hasToken(t.tenantRL, now) {
		return false
	}
	takeToken(rl, now)
	takeToken(t.tenantRL, now)
	return true
}

func (t *tenantBot) load(id int64) (inbound, error) {
	row, err := t.b.store.InboundByID(t.ctx, t.id, id)
	if err != nil {
		return inbound{}, err
	}
	in := inbound{id: row.ID, name: row.SenderName, text: row.Body, kind: row.Kind, waID: row.WAID, status: row.Status, errorMsg: row.Error, at: row.CreatedAt}
	in.chat, _ = types.ParseJID(row.Chat)
	in.sender, _ = types.ParseJID(row.Sender)
	in.isGroup = in.chat.Server == types.GroupServer
	return in, nil
}

func (t *tenantBot) setInbound(id int64, status tenant.MessageStatus, reason string) {
	t.b.opts.Observer.Message("in", status)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	if err := t.b.store.SetInboundStatus(ctx, id, status, reason); err != nil {
		t.log.Error("cannot update a message's status", "err", err)
	}
}

func (t *tenantBot) insertOut(inID int64, chat, waID, text string, status tenant.MessageStatus, reason string) (int64, error) {
	if status != tenant.MsgPending {
		t.b.opts.Observer.Message("out", status)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	id, err := t.b.store.LogReply(ctx, t.id, tenant.Reply{
		InID: inID, Chat: chat, Sender: t.out.OwnJID().String(), WAID: waID, Body: text, Status: status, Error: reason,
	})
	if err != nil {
		t.log.Error("cannot log a reply", "err", err)
	}
	return id, err
}

func (t *tenantBot) setOut(id int64, status tenant.MessageStatus, reason string) {
	t.b.opts.Observer.Message("out", status)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	if err := t.b.store.SetReplyStatus(ctx, id, status, reason); err != nil {
		t.log.Error("cannot update a reply's status", "err", err)
	}
}
