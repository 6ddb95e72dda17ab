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
	"net/netip"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"wabot/session"
	"wabot/tenant"
)

// Options tune the pipeline; zero values take the defaults.
type Options struct {
	// AllowPrivateWebhooks lets webhook URLs reach loopback, private and
	// link-local addresses (WABOT_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivateWebhooks bool
	// AllowLoopbackModels lets AI answers use a model on this machine (a
	// local Ollama or vLLM; WABOT_AI_ALLOW_LOOPBACK); AllowPrivateModels
	// any address at all (tests).
	AllowLoopbackModels bool
	AllowPrivateModels  bool
	ParallelChats       int           // chats of one tenant answered at once (8)
	SendTimeout         time.Duration // per reply (30s)
	WebhookTimeout      time.Duration // per delivery (10s)
	WebhookMaxAttempts  int           // before a delivery is failed (8)
	WebhookBaseDelay    time.Duration // first retry delay (2s)
	WebhookMaxDelay     time.Duration // retry delay cap (10m)
	OutboxPoll          time.Duration // how often the outbox is checked (1s)
	OutboxWorkers       int           // deliveries posted at once, one tenant each (8)
	StoreRetryFor       time.Duration // how long an inbound message's store is retried (2m)
	Retention           time.Duration // message log age kept (90 days)
	RetentionEvery      time.Duration // how often old rows are removed (1h)
	// ResumeCheck is how often each tenant's paused chats are checked for
	// the bot to resume (30s).
	ResumeCheck time.Duration
	// ResumeUnit is how long one of the configuration's
	// handover.resume_after_minutes lasts: a minute, shortened only by
	// tests that watch the bot resume.
	ResumeUnit time.Duration
	// Send paces and bounds messages sent through the API.
	Send SendOptions
	// Media keeps the files of media messages; nil leaves them undownloaded
	// (their rows stay pending), for tests of other parts.
	Media *tenant.MediaStore
	// MediaLink makes the signed, expiring download link of a message's
	// file for the bot's webhook payload; nil leaves links out.
	MediaLink func(tenantID string, messageID int64) string
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
	def(&o.ResumeCheck, 30*time.Second)
	def(&o.ResumeUnit, time.Minute)
	o.Send = o.Send.withDefaults()
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
	// AI counts a turn of a tenant's model by outcome (answered,
	// handover, failed, refused) and the tokens it used.
	AI(outcome string, tokens int64)
}

type noObserver struct{}

func (noObserver) Message(string, tenant.MessageStatus) {}
func (noObserver) Replied(time.Duration)                {}
func (noObserver) Webhook(string)                       {}
func (noObserver) SendDeferred()                        {}
func (noObserver) AI(string, int64)                     {}

// Bot is the pipeline for all tenants. It implements session.Pipeline and
// the portal's configuration service.
type Bot struct {
	opts    Options
	log     *slog.Logger
	store   *tenant.Store
	webhook *http.Client
	// mediaFetch fetches the URLs of media sends (outbound_media.go).
	mediaFetch *http.Client
	model      *http.Client // calls the tenants' models (ai.go)

	mu      sync.Mutex
	tenants map[string]*tenantBot

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the outbox worker

	statusHook atomic.Pointer[StatusHook] // hears API message status changes

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
	b.mediaFetch = newMediaFetchClient(opts)
	b.model = newModelClient(opts)
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
	// Checked while AI answers are on: turned off, a provider that no
	// longer resolves (or that the operator no longer allows) must not
	// stop the rest of the configuration from being saved.
	if cfg.AI.Enabled && cfg.AI.BaseURL != "" {
		if err := b.checkModelURL(ctx, cfg.AI.BaseURL); err != nil {
			return cfg, &tenant.Error{Code: tenant.CodeInvalid, Msg: "the bot configuration has errors", Fields: map[string]string{"ai.base_url": err.Error()}}
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

// checkWebhookURL refuses URLs whose host resolves to an address that is
// not public (see nonPublic), unless allowed: the webhook must not become
// a way into the operator's own network.
func (b *Bot) checkWebhookURL(ctx context.Context, raw string) error {
	if b.opts.AllowPrivateWebhooks {
		return nil
	}
	if _, err := url.Parse(raw); err != nil {
		return errors.New("Enter an http:// or https:// URL.")
	}
	if !b.resolvesOnlyTo(ctx, raw, func(a netip.Addr) bool { return !nonPublic(a) }) {
		return errors.New("The host does not resolve to a public internet address; webhooks must be reachable on the internet.")
	}
	return nil
}

// resolvesOnlyTo reports whether the host of the URL raw resolves, and
// only to addresses allowed takes. Its callers' errors never name the
// address, nor tell a name that does not resolve from one that resolves
// elsewhere: a tenant could otherwise map the operator's internal DNS.
func (b *Bot) resolvesOnlyTo(ctx context.Context, raw string, allowed func(netip.Addr) bool) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	host := u.Hostname()
	var addrs []net.IPAddr
	if ip := net.ParseIP(host); ip != nil {
		addrs = []net.IPAddr{{IP: ip}}
	} else if addrs, err = b.opts.Resolver.LookupIPAddr(ctx, host); err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		addr, ok := netip.AddrFromSlice(a.IP)
		if !ok || !allowed(addr) {
			return false
		}
	}
	return true
}

// guardedDialer connects only to addresses allowed takes, checked at
// connect time (DNS may answer otherwise than when a URL was saved), for
// every connection, a redirect's too; refused is the dial's error.
func guardedDialer(allowed func(netip.Addr) bool, refused error) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if a, err := netip.ParseAddr(host); err != nil || !allowed(a) {
			return refused
		}
		return nil
	}}
}

// public is the guard of webhooks and media fetches: public addresses
// only, unless the operator allows private ones.
func public(allowPrivate bool) func(netip.Addr) bool {
	return func(a netip.Addr) bool { return allowPrivate || !nonPublic(a) }
}

// nonPublic reports whether a is an address a webhook must not reach:
// anything in IANA's special-purpose registries, multicast, or IPv6
// outside global unicast. IPv4-mapped and NAT64 addresses are judged by
// the IPv4 address inside them; other forms that carry an IPv4 address
// (IPv4-compatible, 6to4, Teredo, local NAT64) are refused outright.
func nonPublic(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return true // a zone only ever scopes a link-local address
	}
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return true
	}
	for _, p := range specialPurpose {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var (
	// nat64 is the well-known NAT64 prefix (RFC 6052): a translator
	// carries traffic to the IPv4 address in its last 32 bits.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// globalUnicast6 is the only IPv6 block IANA allocates for global
	// unicast; everything outside it is local, reserved or multicast.
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// specialPurpose is IANA's IPv4 and IPv6 Special-Purpose Address
// Registries, whole (the few anycast services in them marked globally
// reachable are never a webhook), plus multicast and the deprecated
// ranges older stacks still route.
var specialPurpose = []netip.Prefix{
	// IPv4
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),      // private use (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, carrier NAT; 100.100.100.200 is a cloud metadata service (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback (RFC 1122)
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, 169.254.169.254 is cloud metadata (RFC 3927)
	netip.MustParsePrefix("172.16.0.0/12"),   // private use (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments, DS-Lite, NAT64 discovery (RFC 6890, 6333, 7050)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation, TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.31.196.0/24"), // AS112 DNS sink (RFC 7535)
	netip.MustParsePrefix("192.52.193.0/24"), // AMT relays (RFC 7450)
	netip.MustParsePrefix("192.88.99.0/24"),  // deprecated 6to4 relay anycast (RFC 7526)
	netip.MustParsePrefix("192.168.0.0/16"),  // private use (RFC 1918)
	netip.MustParsePrefix("192.175.48.0/24"), // AS112 direct delegation (RFC 7534)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation, TEST-NET-2 (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation, TEST-NET-3 (RFC 5737)
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast (RFC 5771)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255 limited broadcast (RFC 1112, 919)
	// IPv6
	netip.MustParsePrefix("::/96"),             // unspecified, loopback, deprecated IPv4-compatible (RFC 4291)
	netip.MustParsePrefix("::ffff:0:0/96"),     // IPv4-mapped: reaches here only if Unmap did not (RFC 4291)
	netip.MustParsePrefix("::ffff:0:0:0/96"),   // IPv4-translated, SIIT (RFC 2765)
	netip.MustParsePrefix("64:ff9b:1::/48"),    // local-use IPv4/IPv6 translation (RFC 8215)
	netip.MustParsePrefix("100::/64"),          // discard-only (RFC 6666)
	netip.MustParsePrefix("100:0:0:1::/64"),    // dummy prefix (RFC 9780)
	netip.MustParsePrefix("2001::/23"),         // IETF protocol assignments: Teredo, benchmarking, ORCHID, AMT, AS112 (RFC 2928)
	netip.MustParsePrefix("2001:db8::/32"),     // documentation (RFC 3849)
	netip.MustParsePrefix("2002::/16"),         // 6to4, carries an IPv4 address (RFC 3056)
	netip.MustParsePrefix("2620:4f:8000::/48"), // AS112 direct delegation (RFC 7534)
	netip.MustParsePrefix("3fff::/20"),         // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),         // segment routing SIDs (RFC 9602)
	netip.MustParsePrefix("fc00::/7"),          // unique local (RFC 4193)
	netip.MustParsePrefix("fe80::/10"),         // link-local (RFC 4291)
	netip.MustParsePrefix("fec0::/10"),         // deprecated site-local (RFC 3879)
	netip.MustParsePrefix("ff00::/8"),          // multicast (RFC 4291)
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
