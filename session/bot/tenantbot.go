package bot

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow/types"
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
	// models bounds the tenant's model calls waiting at once; a chat
	// waiting on the model gives its sem slot up meanwhile (ai.go).
	models chan struct{}

	statusMu     sync.Mutex
	status       tenant.Status
	statusLoaded time.Time

	mu       sync.Mutex
	onMu     sync.Mutex
	chats    map[string]*chatQueue
	tenantRL *rate.Limiter
	chatRL   map[string]*rate.Limiter

	snd *sender // API sends

	merged map[types.JID]bool // LIDs whose earlier chat was merged under the number this run (inbound.go), under mu
	// resumed are the messages resume queued, under mu: one also queued
	// as it arrived is then read back rather than answered from memory.
	resumed map[int64]bool
}

func newTenantBot(b *Bot, id string, out session.Sender) *tenantBot {
	ctx, cancel := context.WithCancel(session.Fence(b.ctx, out)) // its writes carry the lease
	return &tenantBot{
		b: b, id: id, out: out, log: b.log.With("tenant", id),
		ctx: ctx, cancel: cancel, sem: make(chan struct{}, b.opts.ParallelChats), models: make(chan struct{}, b.opts.ParallelChats),
		chats: map[string]*chatQueue{}, chatRL: map[string]*rate.Limiter{}, onCh: make(chan struct{}), merged: map[types.JID]bool{}, resumed: map[int64]bool{},
		snd: newSender(b.opts.Send),
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
	t.wg.Add(2)
	go t.sendLoop()
	go t.resumeLoop() // handover.go
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

// pause waits d, or less if the client comes online meanwhile; false if
// the pipeline stopped.
func (t *tenantBot) pause(d time.Duration) bool {
	t.onMu.Lock()
	ch := t.onCh
	t.onMu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ch:
	case <-t.ctx.Done():
		return false
	}
	return true
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
	t.mu.Lock()
	for _, in := range open {
		t.resumed[in.ID] = true
	}
	t.mu.Unlock()
	for _, in := range open {
		t.enqueue(in.Chat, in.ID, false, nil)
	}
	if len(open) > 0 {
		t.log.Info("answering messages stored before the restart", "count", len(open))
	}
}

// approved reports whether the tenant's workspace is past approval, so
// its messages' contents may be stored. It trusts the status read within
// the last second unless that was pending: a pending workspace is read
// afresh for every message, so an approval counts from the next one.
func (t *tenantBot) approved() (bool, error) {
	t.statusMu.Lock()
	st, fresh := t.status, time.Since(t.statusLoaded) < time.Second
	t.statusMu.Unlock()
	if fresh && st != tenant.StatusPending {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	tn, err := t.b.store.TenantByID(ctx, t.id)
	if err != nil {
		return false, err
	}
	t.statusMu.Lock()
	t.status, t.statusLoaded = tn.Status, time.Now()
	t.statusMu.Unlock()
	return tn.Status != tenant.StatusPending, nil
}
