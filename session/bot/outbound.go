package bot

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"golang.org/x/time/rate"

	"wabot/session"
	"wabot/tenant"
)

// Sending through the API: Send stores the message as queued with the
// WhatsApp id it will go out with, then the tenant's sender delivers the
// queue in order, paced to protect the number, and WhatsApp's receipts
// move each message on to delivered and read.

// SendOptions pace and bound API sends; zero values take the defaults.
type SendOptions struct {
	PerMinute      int           // messages a minute per tenant (20)
	NewChatsPerDay int           // messages opening a chat, per tenant and 24 h (50)
	JitterMax      time.Duration // random pause before each send, up to this (2s)
	TypingPerChar  time.Duration // "typing…" shown per character of text (30ms)
	TypingMax      time.Duration // cap on "typing…" (3s)
	MaxAge         time.Duration // a queued message older than this fails as expired (24h)
	MaxQueued      int           // queued messages per tenant, unless the tenant has its own bound (1000)
	IdempotencyTTL time.Duration // how long an Idempotency-Key returns its first message (24h)
	NumberCacheTTL time.Duration // how long an IsOnWhatsApp answer is trusted (24h)
	IdleCheck      time.Duration // how often an idle sender looks for expired messages (30s)
	// NoPacing turns off the per-minute and new-chat limits, jitter and
	// typing (tests, benchmarks).
	NoPacing bool
	// Clock is time for the sender; nil is the real clock.
	Clock Clock
}

// Clock is the sender's time, replaced in tests.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (o SendOptions) withDefaults() SendOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.PerMinute <= 0 {
		o.PerMinute = 20
	}
	if o.NewChatsPerDay <= 0 {
		o.NewChatsPerDay = 50
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	def(&o.MaxAge, 24*time.Hour)
	def(&o.IdempotencyTTL, 24*time.Hour)
	def(&o.NumberCacheTTL, 24*time.Hour)
	if o.JitterMax < 0 {
		o.JitterMax = 0
	}
	if o.TypingPerChar < 0 {
		o.TypingPerChar = 0
	}
	if o.TypingMax < 0 {
		o.TypingMax = 0
	}
	if o.IdleCheck <= 0 {
		o.IdleCheck = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o
}

// DefaultSendOptions are the pacing defaults the README documents.
func DefaultSendOptions() SendOptions {
	return SendOptions{JitterMax: 2 * time.Second, TypingPerChar: 30 * time.Millisecond, TypingMax: 3 * time.Second}.withDefaults()
}

// StatusHook hears every status change of an outgoing message (sent,
// delivered, read, failed), after it is stored; event webhooks use it. It
// runs on the sender's or whatsmeow's goroutine and must not block.
type StatusHook func(tenantID string, m tenant.APIMessage)

// SetStatusHook installs the hook (nil removes it).
func (b *Bot) SetStatusHook(h StatusHook) {
	if h == nil {
		b.statusHook.Store(nil)
		return
	}
	b.statusHook.Store(&h)
}

func (b *Bot) notifyStatus(tenantID string, m tenant.APIMessage) {
	if h := b.statusHook.Load(); h != nil {
		(*h)(tenantID, m)
	}
}

var errNotConnected = &tenant.Error{Code: tenant.CodeNotConnected, Msg: "the WhatsApp session is not connected; link the number or wait for it to reconnect"}

// Send validates a message and stores it as queued; the tenant's sender
// delivers it. created is false when the Idempotency-Key returned an
// earlier message.
func (b *Bot) Send(ctx context.Context, tenantID string, req tenant.SendRequest) (tenant.APIMessage, bool, error) {
	chat, isPhone, err := tenant.ValidateSend(req)
	if err != nil {
		return tenant.APIMessage{}, false, err
	}
	sender := ""
	if t := b.tenant(tenantID); t != nil {
		sender = t.out.OwnJID().String()
	} else if l, err := b.store.LinkOf(ctx, tenantID); err == nil {
		// The tenant runs on another instance: its linked number is in
		// the session row.
		sender = l.JID
	}
	text := req.Text
	var media *tenant.OutboundMedia
	if req.Media != nil {
		if req.IdempotencyKey != "" {
			first, err := b.store.OutboundByIdempotencyKey(ctx, tenantID, req.IdempotencyKey, b.opts.Send.IdempotencyTTL)
			if err == nil {
				return first, false, nil
			}
			if !errors.Is(err, tenant.ErrNotFound) {
				return tenant.APIMessage{}, false, err
			}
		}
		if media, text, err = b.resolveMedia(ctx, tenantID, req); err != nil { // outbound_media.go
			return tenant.APIMessage{}, false, err
		}
	}
	m, created, err := b.store.QueueOutbound(ctx, tenantID, tenant.NewOutbound{
		Chat: chat, Sender: sender, Text: text, ReplyTo: req.ReplyTo, WAID: whatsmeow.GenerateMessageID(),
		CheckNumber: isPhone, IdempotencyKey: req.IdempotencyKey, AuthorID: req.AuthorID, Media: media,
	}, tenant.QueueLimits{MaxQueued: b.opts.Send.MaxQueued, IdempotencyTTL: b.opts.Send.IdempotencyTTL})
	if err != nil {
		return m, false, err
	}
	if created {
		if t := b.tenant(tenantID); t != nil {
			t.kickSender()
		}
	}
	return m, created, nil
}

// Message returns one of the tenant's messages, in or out.
func (b *Bot) Message(ctx context.Context, tenantID string, id int64) (tenant.APIMessage, error) {
	return b.store.APIMessageByID(ctx, tenantID, id)
}

// Messages returns a page of the tenant's messages, newest first.
func (b *Bot) Messages(ctx context.Context, tenantID string, q tenant.APIMessageQuery) ([]tenant.APIMessage, string, error) {
	return b.store.APIMessages(ctx, tenantID, q)
}

// Chats returns a page of the tenant's chats, most recently active first.
func (b *Bot) Chats(ctx context.Context, tenantID, cursor string, limit int) ([]tenant.Chat, string, error) {
	return b.store.Chats(ctx, tenantID, cursor, limit)
}

// MaxContactChecks bounds one CheckContacts call.
const MaxContactChecks = 50

// CheckContacts asks WhatsApp which numbers have an account; the tenant's
// session must be connected.
func (b *Bot) CheckContacts(ctx context.Context, tenantID string, phones []string) ([]tenant.ContactCheck, error) {
	fields := map[string]string{}
	if len(phones) == 0 || len(phones) > MaxContactChecks {
		fields["phones"] = "Give 1 to 50 phone numbers."
	}
	for i, p := range phones {
		if _, isPhone, err := tenant.ValidateSend(tenant.SendRequest{To: p, Text: "x"}); err != nil || !isPhone {
			fields["phones["+itoa(i)+"]"] = "Use + and the international number, digits only (+15551234567)."
		}
	}
	if len(fields) > 0 {
		return nil, &tenant.Error{Code: tenant.CodeInvalid, Msg: "the numbers have errors", Fields: fields}
	}
	t := b.tenant(tenantID)
	if t == nil || !t.online.Load() {
		return nil, errNotConnected
	}
	res, err := t.lookup(ctx, phones)
	if err != nil {
		return nil, err
	}
	out := make([]tenant.ContactCheck, len(phones))
	for i, p := range phones {
		out[i] = tenant.ContactCheck{Phone: p}
		if r, ok := res[p]; ok && r.in {
			out[i].OnWA, out[i].JID = true, r.jid
		}
	}
	return out, nil
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func (b *Bot) tenant(id string) *tenantBot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tenants[id]
}

// numberAnswer is a cached IsOnWhatsApp answer.
type numberAnswer struct {
	in  bool
	jid string
	at  time.Time
}

// sender is one tenant's API send state.
type sender struct {
	kick    chan struct{}
	limiter *rate.Limiter

	mu      sync.Mutex
	numbers map[string]numberAnswer

	uploadFails map[int64]int // failed uploads by message id; the send loop's alone
}

func newSender(o SendOptions) *sender {
	s := &sender{kick: make(chan struct{}, 1), numbers: map[string]numberAnswer{}}
	if !o.NoPacing {
		s.limiter = rate.NewLimiter(rate.Limit(float64(o.PerMinute)/60), 1)
	}
	return s
}

func (t *tenantBot) kickSender() {
	select {
	case t.snd.kick <- struct{}{}:
	default:
	}
}

// lookup answers IsOnWhatsApp for phones, from the cache where it can.
func (t *tenantBot) lookup(ctx context.Context, phones []string) (map[string]numberAnswer, error) {
	o := t.b.opts.Send
	now := o.Clock.Now()
	out := map[string]numberAnswer{}
	var ask []string
	t.snd.mu.Lock()
	for _, p := range phones {
		if a, ok := t.snd.numbers[p]; ok && now.Sub(a.at) < o.NumberCacheTTL {
			out[p] = a
		} else {
			ask = append(ask, p)
		}
	}
	t.snd.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.b.opts.SendTimeout)
	defer cancel()
	res, err := t.out.IsOnWhatsApp(ctx, ask)
	if err != nil {
		return nil, err
	}
	t.snd.mu.Lock()
	defer t.snd.mu.Unlock()
	if len(t.snd.numbers) > 10000 {
		t.snd.numbers = map[string]numberAnswer{}
	}
	for _, p := range ask {
		a := numberAnswer{at: now}
		for _, r := range res {
			if strings.TrimPrefix(r.Query, "+") == strings.TrimPrefix(p, "+") {
				a.in, a.jid = r.IsIn, r.JID.String()
			}
		}
		t.snd.numbers[p] = a
		out[p] = a
	}
	return out, nil
}

// sendLoop delivers the tenant's queued API messages until the pipeline
// stops. It wakes when a message is queued, when the client comes online,
// and at least every idleCheck to expire old messages.
func (t *tenantBot) sendLoop() {
	defer t.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("the API sender panicked; queued messages stay stored and go out after the next start", "panic", r)
		}
	}()
	for t.ctx.Err() == nil {
		wait := t.sendPass()
		if wait == 0 {
			continue
		}
		t.onMu.Lock()
		on := t.onCh
		t.onMu.Unlock()
		timer := time.NewTimer(min(wait, t.b.opts.Send.IdleCheck))
		select {
		case <-t.snd.kick:
		case <-on:
		case <-timer.C:
		case <-t.ctx.Done():
		}
		timer.Stop()
	}
}

// sendPass goes once through the queue, oldest first, keeping each chat in
// order: a message that cannot go now holds back the later ones of its
// chat. It returns 0 to run again at once, or how long to wait.
func (t *tenantBot) sendPass() time.Duration {
	o := t.b.opts.Send
	const batch = 200
	queued, err := t.b.store.QueuedOutbound(t.ctx, t.id, batch)
	if err != nil {
		if t.ctx.Err() == nil {
			t.log.Warn("cannot read queued messages", "err", err)
		}
		return 5 * time.Second
	}
	if len(queued) == 0 {
		return time.Hour
	}
	held := map[string]bool{}
	progressed := false
	for _, m := range queued {
		if t.ctx.Err() != nil {
			return time.Second
		}
		if held[m.Chat] {
			continue
		}
		if o.Clock.Now().Sub(m.CreatedAt) > o.MaxAge {
			t.failOut(m, tenant.ReasonExpired, "not sent within "+o.MaxAge.String()+" of being queued: the WhatsApp session was offline or sends were paced")
			progressed = true
			continue
		}
		if !t.online.Load() {
			held[m.Chat] = true
			continue
		}
		if m.FirstContact && !o.NoPacing {
			n, err := t.b.store.FirstContactsSentSince(t.ctx, t.id, o.Clock.Now().Add(-24*time.Hour))
			if err != nil || n >= o.NewChatsPerDay {
				held[m.Chat] = true
				continue
			}
		}
		switch t.sendOne(m) {
		case sendDone:
			progressed = true
		case sendOffline:
			return time.Second
		case sendLater:
			held[m.Chat] = true
		case sendStopped:
			return time.Second
		}
	}
	if len(queued) == batch && progressed {
		// A full batch that moved: more may wait behind it, and nothing
		// else would wake the loop before the idle check.
		return 0
	}
	return time.Minute
}

type sendResult int

const (
	sendDone    sendResult = iota // sent or failed for good
	sendOffline                   // the connection went away: try again once online
	sendLater                     // a transient error: the chat waits for the next pass
	sendStopped                   // the pipeline stopped
)

// sendOne paces, checks the number, shows "typing…" and sends one queued
// message with its stored WhatsApp id: after a crash, the same id goes out
// again and WhatsApp keeps one copy.
func (t *tenantBot) sendOne(m tenant.APIMessage) sendResult {
	o := t.b.opts.Send
	chat, err := types.ParseJID(m.Chat)
	if err != nil {
		t.failOut(m, tenant.ReasonRejected, "the chat id is not valid")
		return sendDone
	}
	if !o.NoPacing {
		now := o.Clock.Now()
		if d := t.snd.limiter.ReserveN(now, 1).DelayFrom(now); d > 0 && !t.sleep(d) {
			return sendStopped
		}
		if o.JitterMax > 0 && !t.sleep(rand.N(o.JitterMax)) {
			return sendStopped
		}
	}
	if m.CheckNumber {
		phone := "+" + chat.User
		res, err := t.lookup(t.ctx, []string{phone})
		switch {
		case err != nil && disconnected(err):
			return sendOffline
		case err != nil:
			t.log.Warn("cannot check a number before sending; trying again", "err", err)
			return sendLater
		case !res[phone].in:
			t.failOut(m, tenant.ReasonNotOnWhatsApp, phone+" has no WhatsApp account")
			return sendDone
		}
	}
	msg := &waE2E.Message{Conversation: &m.Text}
	if m.ReplyTo != 0 {
		msg = t.quoted(m)
	}
	if media, res, ok := t.queuedMedia(m, msg); ok { // outbound_media.go
		if media == nil {
			return res
		}
		msg = media
	}
	if !o.NoPacing && o.TypingPerChar > 0 && o.TypingMax > 0 {
		d := min(time.Duration(utf8.RuneCountInString(m.Text))*o.TypingPerChar, o.TypingMax)
		ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
		err := t.out.Typing(ctx, chat, true)
		cancel()
		if err == nil && d > 0 && !t.sleep(d) {
			return sendStopped
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.b.opts.SendTimeout)
	err = t.out.SendMessage(ctx, chat, m.WAID, msg)
	cancel()
	switch {
	case err == nil:
	case t.ctx.Err() != nil:
		return sendStopped
	case disconnected(err):
		t.b.opts.Observer.SendDeferred()
		return sendOffline
	case timedOut(err):
		return sendLater
	default:
		t.log.Warn("WhatsApp refused a message", "id", m.ID, "err", err)
		t.failOut(m, tenant.ReasonRejected, "WhatsApp refused the message: "+err.Error())
		return sendDone
	}
	ctx, cancel = context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	sent, err := t.b.store.MarkOutboundSent(ctx, t.id, m.ID)
	if err != nil {
		// It went out; the row says queued, so the next pass sends the
		// same id again, which WhatsApp keeps once.
		t.log.Error("cannot record a sent message", "id", m.ID, "err", err)
		return sendLater
	}
	t.b.opts.Observer.Message("out", tenant.MsgReplied)
	t.b.notifyStatus(t.id, sent)
	return sendDone
}

// quoted builds a reply that quotes the message it answers, as WhatsApp
// shows a swiped reply.
func (t *tenantBot) quoted(m tenant.APIMessage) *waE2E.Message {
	text := m.Text
	ext := &waE2E.ExtendedTextMessage{Text: &text}
	q, err := t.b.store.APIMessageByID(t.ctx, t.id, m.ReplyTo)
	if err == nil && q.WAID != "" {
		participant := q.From
		if q.Direction == "out" || participant == "" {
			participant = t.out.OwnJID().String()
		}
		body := q.Text
		ext.ContextInfo = &waE2E.ContextInfo{StanzaID: &q.WAID, Participant: &participant,
			QuotedMessage: &waE2E.Message{Conversation: &body}}
	}
	return &waE2E.Message{ExtendedTextMessage: ext}
}

// sleep waits d on the sender's clock; false if the pipeline stopped.
func (t *tenantBot) sleep(d time.Duration) bool {
	select {
	case <-t.b.opts.Send.Clock.After(d):
		return true
	case <-t.ctx.Done():
		return false
	}
}

func (t *tenantBot) failOut(m tenant.APIMessage, reason, msg string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	failed, err := t.b.store.FailOutbound(ctx, t.id, m.ID, reason, msg)
	if err != nil {
		t.log.Error("cannot record a failed message", "id", m.ID, "err", err)
		return
	}
	t.b.opts.Observer.Message("out", tenant.MsgFailed)
	t.b.notifyStatus(t.id, failed)
}

// HandleReceipt moves the tenant's messages on to delivered or read.
func (t *tenantBot) HandleReceipt(evt *events.Receipt) {
	var to tenant.APIStatus
	switch evt.Type {
	case types.ReceiptTypeDelivered:
		to = tenant.APIDelivered
	case types.ReceiptTypeRead:
		to = tenant.APIRead
	default:
		return
	}
	if evt.IsFromMe {
		return // our own devices, not the recipient
	}
	at := evt.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	changed, err := t.b.store.ApplyReceipt(ctx, t.id, evt.MessageIDs, to, at)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.log.Warn("cannot record a receipt", "err", err)
	}
	for _, m := range changed {
		// A receipt that overtook the send is announced with the send.
		if m.Status == tenant.APIDelivered || m.Status == tenant.APIRead {
			t.b.notifyStatus(t.id, m)
		}
	}
}

var _ session.ReceiptHandler = (*tenantBot)(nil)
