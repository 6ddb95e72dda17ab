package bot

import (
	"context"
	"time"

	"wabot/tenant"
)

// Hand-over between the bot and people. A paused chat is read per message
// (one primary-key read), not cached: a person's "Pause bot" must hold for
// the very next message. A keyword from the customer pauses the chat and
// logs the hand-over reply in one transaction; a ticker gives idle chats
// back to the bot.

// pausedIn returns why the bot must not answer in chat ("" when it may).
// A failed read is tried again later: answering a chat a person has
// taken over is worse than answering late.
func (t *tenantBot) pausedIn(chat string) (string, outcome) {
	c, err := t.b.store.ChatStateOf(t.ctx, t.id, chat)
	if err != nil {
		if t.ctx.Err() != nil {
			return "", stopped
		}
		t.log.Warn("cannot read a chat's state; trying again", "err", err)
		return "", later
	}
	switch {
	case !c.BotPaused:
		return "", answered
	case c.Waiting && c.PausedBy == tenant.PausedByModel:
		return tenant.ReasonBotPaused + ": the AI handed the chat to a person", answered
	case c.Waiting:
		return tenant.ReasonBotPaused + ": the customer asked for a person", answered
	}
	return tenant.ReasonBotPaused + ": a person is answering", answered
}

// handOver answers a customer who asked for a person (by a keyword, or
// the model for them, by PausedByModel): the chat is paused
// and the hand-over reply logged together (after the welcome, for a
// chat's first message), then sent. A webhook still hears of the message,
// as of one a rule answered.
func (t *tenantBot) handOver(in inbound, cfg *config, welcome *tenant.Reply, fill func(string) string, by string) outcome {
	if cfg.Webhook.URL != "" {
		if _, _, err := t.b.webhookReply(t.ctx, t.id, in, cfg, true); err != nil {
			if t.ctx.Err() != nil {
				return stopped
			}
			t.log.Error("cannot queue a webhook delivery", "err", err)
		}
	}
	reply := tenant.Reply{InID: in.id, Chat: in.chat.String(), Body: fill(cfg.Handover.Reply), Origin: tenant.OriginHandover}
	written, err := t.logWith(func(ctx context.Context, decide func(tenant.Reply) tenant.Reply) ([]tenant.Reply, error) {
		return t.b.store.HandOver(ctx, t.id, by, welcome, reply, decide)
	})
	if err != nil {
		if t.ctx.Err() != nil {
			return stopped
		}
		return later
	}
	return t.sendAll(in, written)
}

// pausedNow reports whether the bot must keep quiet in chat, for replies
// outside the answering of a message (the busy reply); unknown is quiet.
func (t *tenantBot) pausedNow(chat string) bool {
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	c, err := t.b.store.ChatStateOf(ctx, t.id, chat)
	return err != nil || c.BotPaused
}

// resumeLoop gives the tenant's idle paused chats back to the bot every
// ResumeCheck until the pipeline stops.
func (t *tenantBot) resumeLoop() {
	defer t.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("the hand-over resumer panicked; paused chats resume after the next start", "panic", r)
		}
	}()
	tick := time.NewTicker(t.b.opts.ResumeCheck)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		idle := time.Duration(t.cfg.Load().Handover.ResumeAfter()) * t.b.opts.ResumeUnit
		ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
		n, err := t.b.store.ResumeIdleChats(ctx, t.id, idle)
		cancel()
		switch {
		case err != nil && t.ctx.Err() == nil:
			t.log.Warn("cannot resume the bot in idle chats", "err", err)
		case n > 0:
			t.log.Info("the bot resumed in idle chats", "chats", n)
		}
	}
}
