// Package app wires wabot together: configuration, logging, the database,
// the HTTP server and the per-tenant sessions, with an ordered start and
// shutdown, and the command line around them.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/portal"
	"wabot/session"
	"wabot/session/bot"
	"wabot/tenant"
	"wabot/views"
)

// App is one running wabot: tests start it on 127.0.0.1:0 and stop it like
// the serve command does.
type App struct {
	cfg *Config
	log *slog.Logger

	echo     *echo.Echo
	server   *http.Server
	listener net.Listener

	store    *tenant.Store
	media    *tenant.MediaStore
	metrics  *metrics
	bot      *bot.Bot
	sessions *session.Manager
	// pgDevices holds the device stores when they live in PostgreSQL, and
	// waker carries its notifications between instances.
	pgDevices *session.PostgresDevices
	waker     *tenant.PostgresWaker
	portal    *portal.Portal
	demo      *demo

	// background work (supervisors, cleaners) runs under bgCtx and is
	// waited for by bg.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Option adjusts how New builds the app; tests use them.
type Option func(*options)

type options struct {
	connector session.Connector
}

// WithConnector connects every tenant's client through c (tests point
// clients at a fake WhatsApp server).
func WithConnector(c session.Connector) Option {
	return func(o *options) { o.connector = c }
}

// New prepares the folders, opens and migrates the database and builds
// every component, without listening yet. A failed New leaves nothing
// open.
func New(ctx context.Context, cfg *Config, log *slog.Logger, opts ...Option) (a *App, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := ensureDirs(cfg.DataDir, cfg.SessionsDir); err != nil {
		return nil, err
	}
	st, err := openAndMigrate(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	// A new workspace's bot greets in its owner's language.
	st.SetBotDefaults(views.BotDefaults)
	a = &App{cfg: cfg, log: log, store: st}
	defer func() {
		if err != nil {
			a.store.Close()
		}
	}()
	if a.media, err = tenant.NewMediaStore(st, filepath.Join(cfg.DataDir, "media"), cfg.Media); err != nil {
		return nil, err
	}
	links, err := tenant.OpenMediaLinks(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(cfg.BaseURL.String(), "/")
	mediaLink := func(tenantID string, messageID int64) string {
		return base + "/media/" + links.Token(tenantID, messageID, time.Now().Add(cfg.MediaLinkTTL))
	}
	st.SetMediaLink(mediaLink)
	a.bgCtx, a.bgCancel = context.WithCancel(context.WithoutCancel(ctx))

	a.demo, err = startDemo(log)
	if err != nil {
		return nil, err
	}
	connector := a.demo.connector()
	if o.connector != nil {
		connector = o.connector
	}
	a.metrics = newMetrics(st)
	a.bot = bot.New(bot.Options{
		AllowPrivateWebhooks: cfg.WebhookAllowPrivate,
		AllowLoopbackModels:  cfg.AIAllowLoopback || a.demo.allowsLoopbackModels(),
		AllowPrivateModels:   cfg.AIAllowPrivate,
		WebhookMaxAttempts:   cfg.WebhookMaxAttempts,
		WebhookBaseDelay:     cfg.WebhookRetryDelay,
		Retention:            cfg.MessageRetention,
		ResumeCheck:          cfg.HandoverResumeCheck,
		ResumeUnit:           cfg.HandoverResumeUnit,
		Observer:             a.metrics,
		Media:                a.media,
		MediaLink:            mediaLink,
		Send: bot.SendOptions{
			PerMinute: cfg.SendPerMinute, NewChatsPerDay: cfg.SendNewChatsPerDay, JitterMax: cfg.SendJitter,
			TypingPerChar: 30 * time.Millisecond, TypingMax: cfg.SendTypingMax, MaxAge: cfg.SendMaxAge,
			MaxQueued: cfg.SendMaxQueued, NoPacing: !cfg.SendPacing,
		},
	}, log.With("component", "bot"), a.store)
	var devices session.DeviceStores
	var waker tenant.Waker
	instanceID, leaseRenew, leaseTTL := cfg.InstanceID, cfg.LeaseRenew, cfg.LeaseTTL
	if cfg.DatabaseURL != "" {
		pg, err := session.NewPostgresDevices(ctx, cfg.DatabaseURL, st, log.With("component", "devices"))
		if err != nil {
			return nil, err
		}
		a.pgDevices, devices = pg, pg
		a.waker = tenant.NewPostgresWaker(st, cfg.DatabaseURL, time.Second, log.With("component", "wake"))
		waker = a.waker
	} else {
		// One instance on an SQLite file: the session manager picks its
		// id and lease length (session.SQLiteInstanceID).
		leaseTTL = 0
	}
	a.sessions = session.NewManager(session.Config{
		Devices:              devices,
		Waker:                waker,
		LeaseRenew:           leaseRenew,
		LeaseValid:           leaseTTL,
		SessionsDir:          cfg.SessionsDir,
		ReconnectMaxAttempts: cfg.ReconnectMaxAttempts,
		HeartbeatInterval:    cfg.HeartbeatInterval,
		Observer:             a.metrics,
		InstanceID:           instanceID,
		ControlActor:         cliActor,
	}, log.With("component", "sessions"), a.store, connector, a.bot)
	a.metrics.leases(a.sessions)
	a.portal = portal.New(portal.Config{
		BaseURL:            cfg.BaseURL,
		Media:              a.media,
		MediaLinks:         links,
		MediaLinkTTL:       cfg.MediaLinkTTL,
		GoogleClientID:     cfg.GoogleClientID,
		GoogleClientSecret: cfg.GoogleClientSecret,
		OIDCIssuer:         cfg.OIDCIssuer,
		OIDCClientID:       cfg.OIDCClientID,
		OIDCClientSecret:   cfg.OIDCClientSecret,
		AdminEmails:        cfg.AdminEmails,
		AllowedDomains:     cfg.AllowedDomains,
		AutoApprove:        cfg.Approval == "auto",
		Demo:               a.demo.enabled(),
		HTTPClient:         cfg.ProviderHTTPClient,
		PairingPerTenant:   cfg.PairingPerTenant,
		PairingPerNumber:   cfg.PairingPerNumber,
		StreamsPerUser:     cfg.StreamsPerUser,
		StreamLifetime:     cfg.StreamLifetime,
		APIRatePerMinute:   cfg.APIRatePerMinute,
	}, log, a.store, a.sessions, a.bot)

	a.echo = newEcho(cfg, log, portal.ErrorHandler(log))
	a.echo.Use(a.metrics.middleware)
	healthRoutes(a.echo, st)
	a.echo.GET("/metrics", a.metrics.handler(cfg.MetricsToken))
	a.portal.Routes(a.echo)
	a.demo.routes(a.echo, a.store)
	a.server = &http.Server{
		Handler:           a.portal.Handler(a.echo),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Live-update streams end when shutdown begins, or it would wait for them.
	a.server.RegisterOnShutdown(a.portal.Close)
	return a, nil
}

// Start listens on the configured address and serves in the background.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.cfg.Addr, err)
	}
	a.listener = ln
	a.bot.Start()
	if err := a.sessions.Start(a.bgCtx); err != nil {
		return err
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.sweepMedia(a.bgCtx)
	}()
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	a.log.Info("wabot serving", "addr", ln.Addr().String(), "url", a.cfg.BaseURL.String(), "version", Version())
	return nil
}

// Addr is the address the server listens on (useful with port 0).
func (a *App) Addr() string { return a.listener.Addr().String() }

// URL is http://<listen address>, for tests.
func (a *App) URL() string { return "http://" + a.Addr() }

// Store is the domain store, for tests and commands.
func (a *App) Store() *tenant.Store { return a.store }

// Media is the app's media store, for tests that put files in the log.
func (a *App) Media() *tenant.MediaStore { return a.media }

// Shutdown stops in order: stop accepting HTTP and let requests finish,
// stop background work, close the database. It is safe after a
// half-finished start and when called twice.
func (a *App) Shutdown(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.listener != nil {
			if err := a.server.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stopping http: %w", err))
				a.server.Close()
			}
		}
		a.bgCancel()
		if a.portal != nil {
			a.portal.Close()
		}
		if a.sessions != nil {
			if err := a.sessions.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if a.bot != nil {
			a.bot.Close()
		}
		done := make(chan struct{})
		go func() { a.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, errors.New("background work did not stop before the deadline"))
		}
		a.demo.close()
		if a.waker != nil {
			a.waker.Close()
		}
		if a.pgDevices != nil {
			if err := a.pgDevices.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing device stores: %w", err))
			}
		}
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing database: %w", err))
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

func openAndMigrate(ctx context.Context, cfg *Config, log *slog.Logger) (*tenant.Store, error) {
	path := filepath.Join(cfg.DataDir, "wabot.db")
	if cfg.DatabaseURL != "" {
		path = cfg.DatabaseURL
	}
	st, err := tenant.OpenURL(ctx, path)
	if err != nil {
		return nil, err
	}
	n, err := st.Migrate(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("database migrated", "database", st.Path(), "applied", n, "version", tenant.SchemaVersion())
	}
	return st, nil
}

// ensureDirs creates the data and sessions folders private to the service
// user (0700): they hold WhatsApp keys and sign-in tokens.
func ensureDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("securing %s: %w", d, err)
		}
	}
	return nil
}

// sweepMedia removes, at start and then every hour, media files that a
// crash left without a row, half-written files and the folders of tenants
// that are gone.
func (a *App) sweepMedia(ctx context.Context) {
	for {
		res, err := a.media.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("media sweep failed", "err", err)
		case err == nil && res != (tenant.SweepResult{}):
			a.log.Info("media sweep removed leftovers", "unreferenced", res.Unreferenced, "orphans", res.Orphans,
				"half_written", res.Temporary, "tenant_folders", res.Tenants, "bytes", res.Bytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}
