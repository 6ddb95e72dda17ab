package bot

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
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

// process answers one stored message. It returns false if the pipeline
// stopped before the message was finished.
func (t *tenantBot) process(id int64) bool {
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
	phone := tenant.PhoneOf(in.sender.String())
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
