// Package bot is the message pipeline behind every tenant's session: it
// stores each incoming message before WhatsApp is told it arrived, drops
// redeliveries, queues per chat, answers by the tenant's rules or webhook
// within rate limits, logs every message in and out, and retries webhook
// deliveries from a persisted outbox.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"wabot/session"
	"wabot/tenant"
)

// Options tune the pipeline; zero values take the defaults.
type Options struct {
	// AllowPrivateWebhooks lets webhook URLs reach loopback, private and
	// link-local addresses (WABOT_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivateWebhooks bool
	ParallelChats        int           // chats of one tenant answered at once (8)
	SendTimeout          time.Duration // per reply (30s)
	WebhookTimeout       time.Duration // per delivery (10s)
	WebhookMaxAttempts   int           // before a delivery is failed (8)
	WebhookBaseDelay     time.Duration // first retry delay (2s)
	WebhookMaxDelay      time.Duration // retry delay cap (10m)
	OutboxPoll           time.Duration // how often the outbox is checked (1s)
	OutboxWorkers        int           // deliveries posted at once, one tenant each (8)
	StoreRetryFor        time.Duration // how long an inbound message's store is retried (2m)
	Retention            time.Duration // message log age kept (90 days)
	RetentionEvery       time.Duration // how often old rows are removed (1h)
	// Observer hears what happens to messages (metrics); nil hears nothing.
	Observer Observer
	// Resolver looks up webhook hosts; nil is net.DefaultResolver.
	Resolver interface {
		LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	}
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.ParallelChats <= 0 {
		o.ParallelChats = 8
	}
	if o.OutboxWorkers <= 0 {
		o.OutboxWorkers = 8
	}
	if o.WebhookMaxAttempts <= 0 {
		o.WebhookMaxAttempts = 8
	}
	def(&o.SendTimeout, 30*time.Second)
	def(&o.WebhookTimeout, 10*time.Second)
	def(&o.WebhookBaseDelay, 2*time.Second)
	def(&o.WebhookMaxDelay, 10*time.Minute)
	def(&o.OutboxPoll, time.Second)
	def(&o.StoreRetryFor, 2*time.Minute)
	def(&o.Retention, 90*24*time.Hour)
	def(&o.RetentionEvery, time.Hour)
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Observer == nil {
		o.Observer = noObserver{}
	}
	return o
}

// Observer is told what happens to messages, for metrics.
type Observer interface {
	// Message counts a message reaching a status ("in"/"out").
	Message(direction string, status tenant.MessageStatus)
	// Replied records the time from storing an inbound message to sending
	// its reply.
	Replied(d time.Duration)
	// Webhook counts a delivery attempt: "delivered", "retry" or "failed".
	Webhook(result string)
	// SendDeferred counts a reply put off because the connection to
	// WhatsApp was down or dropped during the send.
	SendDeferred()
}

type noObserver struct{}

func (noObserver) Message(string, tenant.MessageStatus) {}
func (noObserver) Replied(time.Duration)                {}
func (noObserver) Webhook(string)                       {}
func (noObserver) SendDeferred()                        {}

// Bot is the pipeline for all tenants. It implements session.Pipeline and
// the portal's configuration service.
type Bot struct {
	opts    Options
	log     *slog.Logger
	store   *tenant.Store
	webhook *http.Client

	mu      sync.Mutex
	tenants map[string]*tenantBot

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the outbox worker

	// The outbox's delivery workers: a slot each, and the tenants that
	// have one.
	outboxSlots chan struct{}
	outboxMu    sync.Mutex
	outboxBusy  map[string]bool
}

// New returns the pipeline; Start runs its background work.
func New(opts Options, log *slog.Logger, st *tenant.Store) *Bot {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bot{opts: opts, log: log, store: st, tenants: map[string]*tenantBot{}, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1),
		outboxSlots: make(chan struct{}, opts.OutboxWorkers), outboxBusy: map[string]bool{}}
	b.webhook = newWebhookClient(opts)
	return b
}

// Start runs the webhook outbox and the log retention cleaner.
func (b *Bot) Start() {
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.restartOnPanic("webhook outbox", b.outboxLoop) }()
	go func() { defer b.wg.Done(); b.restartOnPanic("log retention", b.retentionLoop) }()
}

// restartOnPanic runs loop until the bot stops, starting it again a second
// after a panic: a bug in background work must not take down the process.
func (b *Bot) restartOnPanic(name string, loop func()) {
	for b.ctx.Err() == nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					b.log.Error(name+" panicked; starting it again", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			loop()
		}()
		select {
		case <-b.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Close stops background work and every tenant's chat workers, waiting
// for them. Messages not answered yet stay stored as received and are
// answered after the next start.
func (b *Bot) Close() {
	b.cancel()
	b.mu.Lock()
	tbs := make([]*tenantBot, 0, len(b.tenants))
	for _, t := range b.tenants {
		tbs = append(tbs, t)
	}
	b.mu.Unlock()
	for _, t := range tbs {
		t.Detach()
	}
	b.wg.Wait()
}

// Config returns the tenant's bot configuration.
func (b *Bot) Config(ctx context.Context, tenantID string) (tenant.BotConfig, error) {
	return b.store.BotConfigOf(ctx, tenantID)
}

// SaveConfig validates, stores and applies a configuration: the next
// message of the running pipeline uses it.
func (b *Bot) SaveConfig(ctx context.Context, tenantID string, cfg tenant.BotConfig) (tenant.BotConfig, error) {
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Webhook.URL != "" {
		if err := b.checkWebhookURL(ctx, cfg.Webhook.URL); err != nil {
			return cfg, &tenant.Error{Code: tenant.CodeInvalid, Msg: "the bot configuration has errors", Fields: map[string]string{"webhook.url": err.Error()}}
		}
	}
	saved, err := b.store.SaveBotConfig(ctx, tenantID, cfg)
	if err != nil {
		return saved, err
	}
	b.mu.Lock()
	t := b.tenants[tenantID]
	b.mu.Unlock()
	if t != nil {
		t.setConfig(saved)
	}
	return saved, nil
}

// checkWebhookURL refuses URLs whose host resolves to loopback, private or
// link-local addresses, unless allowed: the webhook must not become a way
// into the operator's own network.
func (b *Bot) checkWebhookURL(ctx context.Context, raw string) error {
	if b.opts.AllowPrivateWebhooks {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("Enter an http:// or https:// URL.")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	host := u.Hostname()
	var addrs []net.IPAddr
	if ip := net.ParseIP(host); ip != nil {
		addrs = []net.IPAddr{{IP: ip}}
	} else if addrs, err = b.opts.Resolver.LookupIPAddr(ctx, host); err != nil {
		return fmt.Errorf("The host %s cannot be resolved.", host)
	}
	for _, a := range addrs {
		if blockedIP(a.IP) {
			return fmt.Errorf("The URL points to a private or local address (%s); webhooks must be reachable on the internet.", a.IP)
		}
	}
	return nil
}

func blockedIP(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast()
}

// Attach starts the tenant's share of the pipeline for a supervisor run.
func (b *Bot) Attach(tenantID string, out session.Sender) session.TenantPipeline {
	t := newTenantBot(b, tenantID, out)
	b.mu.Lock()
	old := b.tenants[tenantID]
	b.tenants[tenantID] = t
	b.mu.Unlock()
	if old != nil {
		old.Detach()
	}
	t.start()
	return t
}

func (b *Bot) detached(t *tenantBot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tenants[t.id] == t {
		delete(b.tenants, t.id)
	}
}

func (b *Bot) wakeOutbox() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// retentionLoop removes log rows older than the retention age; rows still
// waiting for an answer are kept.
func (b *Bot) retentionLoop() {
	t := time.NewTicker(b.opts.RetentionEvery)
	defer t.Stop()
	for {
		b.removeOld()
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Bot) removeOld() {
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	n, err := b.store.RemoveOldMessages(ctx, time.Now().Add(-b.opts.Retention))
	if err != nil && b.ctx.Err() == nil {
		b.log.Warn("cannot remove old log rows", "err", err)
	}
	if n > 0 {
		b.log.Info("removed old messages", "rows", n, "older_than", b.opts.Retention)
	}
}
