// Package portal is all of wabot's HTTP: sign-in, the tenant's pages, the
// JSON API, the admin control plane, and the middleware around them.
package portal

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// Config is what the portal needs from wabot's configuration.
type Config struct {
	BaseURL *url.URL
	// Media keeps media files; MediaLinks checks the signed links that
	// webhook receivers download them with. nil: media are not served.
	Media      *tenant.MediaStore
	MediaLinks *tenant.MediaLinks
	// MediaLinkTTL is how long the links the API hands out work; zero
	// takes DefaultMediaLinkTTL.
	MediaLinkTTL       time.Duration
	GoogleClientID     string
	GoogleClientSecret string
	OIDCIssuer         string
	OIDCClientID       string
	OIDCClientSecret   string
	AdminEmails        []string
	AllowedDomains     []string
	AutoApprove        bool
	// Demo shows the fakewa build's banner and "Simulate scan" button.
	Demo bool
	// HTTPClient reaches the sign-in providers; nil is http.DefaultClient.
	// Tests point it at fakes.
	HTTPClient *http.Client
	// Session timeouts; zero takes the defaults (24 h idle, 7 days in all).
	SessionIdle     time.Duration
	SessionLifetime time.Duration
	// Phone pairing codes allowed per tenant in 10 minutes and per phone
	// number in an hour; zero takes the default, 3 each.
	PairingPerTenant int
	PairingPerNumber int
	// Live streams (the link page's): each re-checks its browser session
	// every StreamRecheck, ends after StreamLifetime (the page reconnects
	// by itself), and a user may hold StreamsPerUser at once. Zero takes
	// the defaults (5 s, 30 min, 4).
	StreamRecheck  time.Duration
	StreamLifetime time.Duration
	StreamsPerUser int
	// APIRatePerMinute is each API key's budget of requests a minute;
	// zero takes DefaultAPIRatePerMinute.
	APIRatePerMinute int
}

func (cfg Config) secure() bool { return cfg.BaseURL.Scheme == "https" }

// Sessions is what the portal asks of the per-tenant session manager.
type Sessions interface {
	Add(tenantID string) error
	Stop(ctx context.Context, tenantID string) error
	Link(ctx context.Context, tenantID string) error
	LinkPhone(ctx context.Context, tenantID, phone string) (string, error)
	Restart(ctx context.Context, tenantID string) error
	Reset(ctx context.Context, tenantID string) error
	Logout(ctx context.Context, tenantID string) error
	// Apply carries out an admin's action on a tenant and audits it.
	Apply(ctx context.Context, actor tenant.User, t tenant.Tenant, action tenant.Action) error
	// Subscribe signals changed after the tenant's session or worker row
	// is written, so live pages re-read it then instead of polling.
	Subscribe(tenantID string) (changed <-chan struct{}, unsubscribe func())
}

// Bot is the tenant's bot configuration service: it validates, stores and
// applies a configuration to the running pipeline.
type Bot interface {
	Config(ctx context.Context, tenantID string) (tenant.BotConfig, error)
	SaveConfig(ctx context.Context, tenantID string, cfg tenant.BotConfig) (tenant.BotConfig, error)
	// TryModel puts a test question to the model of the AI settings
	// given, with the saved key unless one is typed.
	TryModel(ctx context.Context, tenantID string, ai tenant.AI, question string) (tenant.ModelTrial, error)
	EventWebhooks // webhooks.go
	Messaging     // apiv1_messages.go
}

// Portal serves the web portal and the JSON API.
type Portal struct {
	cfg      Config
	log      *slog.Logger
	store    *tenant.Store
	sessions Sessions
	bot      Bot
	browser  *scs.SessionManager // browser sessions (cookies), not WhatsApp's
	// cleaner removes expired browser sessions until Close.
	cleanerStop chan struct{}
	cleanerDone chan struct{}
	auth        *authenticator
	limiter     limiter
	// Pairing codes make WhatsApp push a prompt to the number's phone:
	// limited per tenant and per number, across tenants.
	pairTenant limiter
	pairNumber limiter
	// botSaves bounds how often a tenant saves its bot configuration:
	// each save validates and compiles every rule.
	botSaves limiter
	// apiRate counts each API key's requests under /api/v1.
	apiRate limiter
	mcp     http.Handler // POST /api/v1/mcp (apiv1_mcp.go)

	// streams end when the server shuts down.
	streamsDone chan struct{}
	streams     streamCounter
	closeOnce   sync.Once
}

// New builds the portal. Call Close when done.
func New(cfg Config, log *slog.Logger, st *tenant.Store, sessions Sessions, bot Bot) *Portal {
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 24 * time.Hour
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = 7 * 24 * time.Hour
	}
	if cfg.StreamRecheck == 0 {
		cfg.StreamRecheck = 5 * time.Second
	}
	if cfg.StreamLifetime == 0 {
		cfg.StreamLifetime = 30 * time.Minute
	}
	if cfg.StreamsPerUser == 0 {
		cfg.StreamsPerUser = 4
	}
	p := &Portal{cfg: cfg, log: log, store: st, sessions: sessions, bot: bot, streamsDone: make(chan struct{})}
	sm := scs.New()
	sm.Store = st.WebSessions()
	sm.HashTokenInStore = true
	sm.IdleTimeout = cfg.SessionIdle
	sm.Lifetime = cfg.SessionLifetime
	sm.Cookie.Name = "wabot_session"
	if cfg.secure() {
		sm.Cookie.Name = "__Host-wabot_session"
	}
	sm.Cookie.HttpOnly = true
	sm.Cookie.Secure = cfg.secure()
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	sm.Cookie.Persist = true
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Error("session store failed", "err", err, "request_id", w.Header().Get(echo.HeaderXRequestID))
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
	p.browser = sm
	p.auth = newAuthenticator(cfg, log)
	// One instance counts in memory; instances sharing PostgreSQL count
	// in it, so each limit holds across all of them.
	newLimit := func(bucket string, limit int, window time.Duration) limiter {
		if st != nil && st.Dialect() == tenant.Postgres {
			return &sharedLimiter{st: st, log: log, bucket: bucket, limit: limit, window: window}
		}
		return newRateLimiter(limit, window)
	}
	p.limiter = newLimit("sign-in", 10, time.Minute)
	p.pairTenant = newLimit("pair-tenant", cmp.Or(cfg.PairingPerTenant, 3), 10*time.Minute)
	p.pairNumber = newLimit("pair-number", cmp.Or(cfg.PairingPerNumber, 3), time.Hour)
	p.botSaves = newLimit("bot-save", botSavesPerMinute, time.Minute)
	p.apiRate = newLimit("api-key", cmp.Or(cfg.APIRatePerMinute, DefaultAPIRatePerMinute), time.Minute)
	p.mcp = p.newMCPHandler()
	p.cleanerStop, p.cleanerDone = make(chan struct{}), make(chan struct{})
	go p.removeExpiredSessions(5 * time.Minute)
	return p
}

func (p *Portal) removeExpiredSessions(every time.Duration) {
	defer close(p.cleanerDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.cleanerStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := p.store.WebSessions().RemoveExpired(ctx); err != nil {
			p.log.Warn("cannot remove expired browser sessions", "err", err)
		}
		// Shared rate-limit windows: the longest lasts an hour.
		if p.store.Dialect() == tenant.Postgres {
			if err := p.store.SweepRateLimits(ctx, 2*time.Hour); err != nil {
				p.log.Warn("cannot remove old rate-limit windows", "err", err)
			}
		}
		cancel()
	}
}

// Handler wraps Echo with the server-side session and, outermost, Go's
// cross-origin protection: a browser's cross-site POST is refused before
// anything else runs, while scripts (no Origin, no Sec-Fetch-Site) pass.
func (p *Portal) Handler(e *echo.Echo) http.Handler {
	cop := http.NewCrossOriginProtection()
	if o := p.cfg.BaseURL; o != nil {
		_ = cop.AddTrustedOrigin(o.Scheme + "://" + o.Host)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPIV1Path(r.URL.Path) {
			// Programs send no Origin and pass; a browser's cross-site
			// request gets the API's error shape.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":"forbidden","message":"Cross-origin request refused."}}`))
			return
		}
		if isAPIPath(r.URL.Path) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"cross-origin request refused"}`))
			return
		}
		http.Error(w, "Forbidden: cross-origin request refused.", http.StatusForbidden)
	}))
	return cop.Handler(p.browser.LoadAndSave(e))
}

// Close ends live-update streams (so HTTP shutdown is not held up by them)
// and the session cleaner.
func (p *Portal) Close() {
	p.closeOnce.Do(func() {
		close(p.streamsDone)
		close(p.cleanerStop)
		<-p.cleanerDone
	})
}
