package bot

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
	"golang.org/x/time/rate"

	"wabot/session"
	"wabot/tenant"
)

// Replies: compose the answer by the rules, the webhook, the welcome and
// the fallback, within the rate limits, and send it so that a crash at any
// point neither loses it nor sends it twice.

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

// outcome is what became of one attempt to answer a stored message.
type outcome int

const (
	answered outcome = iota // done: replied, ignored, failed or limited, and logged
	stopped                 // the pipeline stopped; the message stays stored
	later                   // a transient error: try the same message again soon
)

// process answers one stored message. stored, when not nil, is the
// message as this run stored it a moment ago, on its first attempt: no
// reply to it can exist yet, so neither it nor its replies are read back.
func (t *tenantBot) process(id int64, stored *inbound) outcome {
	var in inbound
	if stored != nil {
		in = *stored
	} else {
		var err error
		if in, err = t.load(id); err != nil {
			if t.ctx.Err() != nil {
				return stopped
			}
			t.log.Warn("cannot load a stored message; trying again", "id", id, "err", err)
			return later
		}
		if in.status != tenant.MsgReceived {
			return answered
		}
		earlier, err := t.b.store.RepliesTo(t.ctx, in.id)
		if err != nil {
			// Composing anew would send the same answer twice, with new ids.
			if t.ctx.Err() != nil {
				return stopped
			}
			t.log.Warn("cannot read a message's earlier replies; trying again", "id", id, "err", err)
			return later
		}
		if len(earlier) > 0 {
			return t.sendAll(in, earlier)
		}
	}
	cfg := t.cfg.Load()
	status, err := t.tenantStatus()
	if err != nil {
		if t.ctx.Err() != nil {
			return stopped
		}
		t.log.Warn("cannot read the tenant's status; trying again", "err", err)
		return later
	}
	if status != tenant.StatusActive {
		t.setInbound(id, tenant.MsgIgnored, "the workspace is "+strings.ToLower(string(status))+": the bot answers only for active workspaces")
		return answered
	}
	// The file first, whether the bot answers or not: the log shows it,
	// and the webhook's download link works when the webhook is called.
	media, out := t.downloadMedia(in)
	if out != answered {
		return out
	}
	if media != nil && media.Status == tenant.MediaFailed {
		return answered // failed with the reason, in the log
	}
	in.media = media
	switch {
	case !cfg.Enabled:
		t.setInbound(id, tenant.MsgIgnored, "the bot is turned off")
		return answered
	case in.isGroup && !cfg.ReplyInGroups:
		t.setInbound(id, tenant.MsgIgnored, "group chats are not answered")
		return answered
	}
	// A person has the chat: the bot stays silent (handover.go).
	if reason, out := t.pausedIn(in.chat.String()); out != answered || reason != "" {
		if out == answered {
			t.setInbound(id, tenant.MsgIgnored, reason)
		}
		return out
	}
	phone := tenant.PhoneOf(in.sender.String())
	fill := func(reply string) string { return tenant.Fill(reply, in.name, phone, in.text) }
	chat := in.chat.String()
	var welcome *tenant.Reply
	if cfg.WelcomeReply != "" {
		welcome = &tenant.Reply{InID: id, Chat: chat, Body: fill(cfg.WelcomeReply), Origin: tenant.OriginWelcome}
	}
	if cfg.Handover.AsksForPerson(in.text) {
		return t.handOver(in, cfg, welcome, fill, tenant.PausedByKeyword)
	}

	rule := cfg.rules.MatchAt(in.kind, in.text)
	matched := rule >= 0
	var answer tenant.Reply
	if matched {
		r := cfg.Rules[rule]
		answer = tenant.Reply{Body: r.Reply, Attachment: r.Attachment, Origin: tenant.OriginRule(rule + 1)}
	}
	// Rules first, then the model (ai.go), then the webhook and fallback.
	// A chat over its reply rate gets no answer anyway: the model is not
	// asked (its tokens would be spent for nothing).
	if !matched && cfg.AI.Enabled && t.mayReply(chat) {
		at := time.Now()
		var turn modelTurn
		ok := false
		t.awayFromSlot(func() {
			t.showTyping(in.chat, true)
			turn, ok = t.askModel(in, cfg)
			t.showTyping(in.chat, false)
		})
		if !ok {
			return stopped // asked again after the restart
		}
		handOver := turn.handOver || (turn.failure != "" && cfg.AI.OnFailure == tenant.AIHandOver)
		t.countModelTurn(at, turn, handOver)
		switch {
		case turn.failure != "":
			t.log.Warn("the model could not answer", "why", turn.failure, "then", cfg.AI.OnFailure)
		case turn.handOver:
			t.log.Info("the model handed a chat over to a person")
		}
		switch {
		case handOver:
			return t.handOver(in, cfg, welcome, fill, tenant.PausedByModel)
		case turn.failure == "":
			answer, matched = tenant.Reply{Body: turn.answer, Origin: tenant.OriginAI}, true
		}
	}
	if cfg.Webhook.URL != "" {
		r, ok, err := t.b.webhookReply(t.ctx, t.id, in, cfg, matched)
		switch {
		case t.ctx.Err() != nil:
			return stopped // not "no reply": after the restart the webhook is asked again, with the same delivery id
		case err != nil:
			t.log.Error("cannot queue a webhook delivery", "err", err)
		case ok && r != "":
			answer, matched = tenant.Reply{Body: r, Origin: tenant.OriginWebhook}, true
		}
	}
	var replies []tenant.Reply
	if matched {
		answer.InID, answer.Chat = id, chat
		if answer.Origin != tenant.OriginAI { // the model's words are sent as written
			answer.Body = fill(answer.Body)
		}
		replies = append(replies, answer)
	} else if cfg.FallbackReply != "" {
		replies = append(replies, tenant.Reply{InID: id, Chat: chat, Body: fill(cfg.FallbackReply), Origin: tenant.OriginFallback})
	}
	written, err := t.logReplies(welcome, replies)
	if err != nil {
		if t.ctx.Err() != nil {
			return stopped
		}
		return later
	}
	if len(written) == 0 {
		t.setInbound(id, tenant.MsgIgnored, "no rule matched and there is no fallback reply")
		return answered
	}
	return t.sendAll(in, written)
}

// logReplies writes every reply to a message before any is sent, each
// within the rate limits and with the WhatsApp id it will be sent with:
// after a crash, recovery finds all of them and sends each id once.
func (t *tenantBot) logReplies(welcome *tenant.Reply, replies []tenant.Reply) ([]tenant.Reply, error) {
	return t.logWith(func(ctx context.Context, decide func(tenant.Reply) tenant.Reply) ([]tenant.Reply, error) {
		return t.b.store.LogReplies(ctx, t.id, welcome, replies, decide)
	})
}

// logWith runs a store method that logs replies (LogReplies, HandOver),
// deciding each one's status and WhatsApp id as logReplies says.
func (t *tenantBot) logWith(write func(context.Context, func(tenant.Reply) tenant.Reply) ([]tenant.Reply, error)) ([]tenant.Reply, error) {
	own := t.out.OwnJID().String()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	written, err := write(ctx, func(r tenant.Reply) tenant.Reply {
		r.Sender = own
		if !t.allow(r.Chat) {
			r.Status, r.Error = tenant.MsgRateLimited, "over the tenant's or the chat's reply rate limit"
			return r
		}
		r.Status, r.WAID = tenant.MsgPending, t.out.NewMessageID()
		return r
	})
	if err != nil {
		t.log.Error("cannot log replies", "err", err)
		return nil, err
	}
	for _, r := range written {
		if r.Status != tenant.MsgPending {
			t.b.opts.Observer.Message("out", r.Status)
		}
	}
	return written, nil
}

// sendAll sends the pending replies of a message in order and records
// what became of the message.
func (t *tenantBot) sendAll(in inbound, replies []tenant.Reply) outcome {
	final, last := tenant.MsgReplied, -1
	for i, r := range replies {
		if r.Status == tenant.MsgPending {
			last = i
		} else if r.Status != tenant.MsgReplied {
			final = r.Status
		}
	}
	if last < 0 {
		t.setInbound(in.id, final, "")
		return answered
	}
	for i, r := range replies[:last+1] {
		if r.Status != tenant.MsgPending {
			continue
		}
		var then *settle
		if i == last { // the message is settled with its last reply, in one write
			then = &settle{in: in.id, final: final}
		}
		st, sent := t.send(r, in.chat, in.at, then)
		if !sent {
			return stopped
		}
		if st != tenant.MsgReplied {
			final = st
		}
	}
	return answered
}

// settle is the inbound message a reply's send settles once recorded,
// and its status if the reply goes out.
type settle struct {
	in    int64
	final tenant.MessageStatus
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

// How long a reply waits before trying again: while the connection is
// down it is sent again, with the same id, however long that takes;
// WhatsApp's timeouts are retried a few times.
const (
	resendBaseDelay = 250 * time.Millisecond
	resendMaxDelay  = 15 * time.Second
	maxTimeouts     = 4
)

// send delivers a pending reply. A connection lost before or during the
// send means "send again with the same id once connected" (WhatsApp keeps
// one message per id, so a send that did arrive is not doubled); it
// returns false only if the pipeline stopped. then, when not nil, is the
// inbound message recorded with the reply's outcome.
func (t *tenantBot) send(r tenant.Reply, chat types.JID, storedAt time.Time, then *settle) (tenant.MessageStatus, bool) {
	t.paceReply()
	disconnects, timeouts := 0, 0
	for {
		if !t.waitOnline() {
			return "", false
		}
		ctx, cancel := context.WithTimeout(t.ctx, t.b.opts.SendTimeout)
		err := t.sendReply(ctx, chat, r) // reply_media.go
		cancel()
		if err == nil {
			t.b.opts.Observer.Replied(time.Since(storedAt))
			t.setOut(r.ID, tenant.MsgReplied, "", then)
			return tenant.MsgReplied, true
		}
		if t.ctx.Err() != nil {
			return "", false
		}
		var wait time.Duration
		switch {
		case disconnected(err):
			disconnects++
			t.b.opts.Observer.SendDeferred()
			wait = session.Backoff(resendBaseDelay, resendMaxDelay, disconnects)
		case timedOut(err) && timeouts < maxTimeouts:
			timeouts++
			wait = session.Backoff(time.Second, resendMaxDelay, timeouts)
		default:
			t.log.Warn("reply failed", "err", err)
			t.setOut(r.ID, tenant.MsgFailed, err.Error(), then)
			return tenant.MsgFailed, true
		}
		if !t.pause(wait) {
			return "", false
		}
	}
}

// paceReply counts a bot reply against the tenant's sending pace, the
// one its API sends keep, so the number's traffic has one budget. A reply
// never waits for it (a customer who just wrote is waiting, and an answer
// is what WhatsApp expects); it uses up the budget instead, so a busy bot
// slows the API's sends, by at most a minute's worth.
func (t *tenantBot) paceReply() {
	l := t.snd.limiter
	if l == nil {
		return
	}
	now := t.b.opts.Send.Clock.Now()
	if r := l.ReserveN(now, 1); r.DelayFrom(now) > time.Minute {
		r.CancelAt(now)
	}
}

// disconnected reports errors that mean the connection was not there or
// went away during the send.
func disconnected(err error) bool {
	var d *whatsmeow.DisconnectedError
	var op *net.OpError
	return errors.Is(err, session.ErrOffline) || errors.Is(err, whatsmeow.ErrNotConnected) ||
		errors.Is(err, whatsmeow.ErrNotLoggedIn) || errors.Is(err, socket.ErrSocketClosed) || errors.As(err, &d) ||
		// The socket failed under the write (a broken pipe, a reset).
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &op)
}

func timedOut(err error) bool {
	return errors.Is(err, whatsmeow.ErrMessageTimedOut) || errors.Is(err, context.DeadlineExceeded)
}

// mayReply reports whether a reply in chat would be within the rate
// limits now, taking nothing.
func (t *tenantBot) mayReply(chat string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	return hasToken(t.chatRL[chat], now) && hasToken(t.tenantRL, now)
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

func (t *tenantBot) setOut(id int64, status tenant.MessageStatus, reason string, then *settle) {
	t.b.opts.Observer.Message("out", status)
	var inID int64
	var final tenant.MessageStatus
	if then != nil {
		inID, final = then.in, then.final
		if status != tenant.MsgReplied {
			final = status
		}
		t.b.opts.Observer.Message("in", final)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	if err := t.b.store.FinishReply(ctx, id, status, reason, inID, final); err != nil {
		t.log.Error("cannot update a reply's status", "err", err)
	}
}
