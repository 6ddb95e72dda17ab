package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"wabot/portal"
	"wabot/tenant"
)

// newEcho builds the Echo instance with the middleware every route shares:
// request ids, request logging, panic recovery, a body limit and security
// headers. errorHandler renders every error, HTML or JSON.
func newEcho(cfg *Config, log *slog.Logger, errorHandler echo.HTTPErrorHandler) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler
	e.IPExtractor = ipExtractor(cfg)

	e.Pre(boundRequestID)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: func() string { return tenant.NewID("r") },
	}))
	e.Use(requestLogger(log))
	e.Use(warnUntrustedProxy(cfg, log))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		StackSize:       16 << 10,
		DisableStackAll: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic in handler",
				"method", methodLabel(c.Request().Method), "path", loggedPath(c.Request().URL.Path),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"err", err, "stack", string(stack))
			return echo.NewHTTPError(http.StatusInternalServerError).SetInternal(err)
		},
	}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: "1M",
		// Uploads bound their bodies by the media caps themselves.
		Skipper: func(c echo.Context) bool { return portal.OwnsBodyLimit(c.Request()) },
	}))
	e.Use(securityHeaders(cfg.Secure()))
	return e
}

// ipExtractor believes X-Forwarded-For only from WABOT_TRUSTED_PROXIES, so
// a client cannot pick its own address for rate limits and logs.
func ipExtractor(cfg *Config) echo.IPExtractor {
	if len(cfg.TrustedProxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range cfg.TrustedProxies {
		_, n, _ := net.ParseCIDR(p.String())
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// requestLogger logs one line per request. The path is logged without its
// query string, which can hold sign-in codes and tokens.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // writes the response so the status below is final
			}
			req := c.Request()
			status := c.Response().Status
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/metrics":
				level = slog.LevelDebug
			}
			log.Log(req.Context(), level, "http request",
				"method", methodLabel(req.Method),
				"path", loggedPath(req.URL.Path),
				"status", status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000,
				"ip", c.RealIP(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			return nil
		}
	}
}

// methodLabel maps a request method to a fixed set. Go's server accepts
// any token as a method, up to the header limit (1 MB): logged or used as
// a metric label as is, each new one would grow memory, the scrape and
// the log.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// maxLoggedPath bounds the path in log lines; wabot's own routes are far
// shorter, so what is cut is only a stranger's noise.
const maxLoggedPath = 256

func loggedPath(p string) string {
	if len(p) <= maxLoggedPath {
		return p
	}
	return strings.ToValidUTF8(p[:maxLoggedPath], "") + "…"
}

// boundRequestID drops a client's X-Request-ID that is long or holds more
// than letters, digits and "-._:": it is echoed and logged, and a fresh
// one is generated instead.
func boundRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !validRequestID(id) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func validRequestID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._:", r)) {
			return false
		}
	}
	return true
}

// forwarded reports whether a request says it came through a proxy.
func forwarded(r *http.Request) bool {
	return r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Real-IP") != ""
}

// warnUntrustedProxy logs once when forwarded requests come from a local
// address that WABOT_TRUSTED_PROXIES does not list: behind such a proxy
// every client looks like the proxy, so they share one sign-in rate-limit
// bucket and the logs show only the proxy.
func warnUntrustedProxy(cfg *Config, log *slog.Logger) echo.MiddlewareFunc {
	var warned atomic.Bool
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !warned.Load() && forwarded(c.Request()) {
				if ip, ok := untrustedProxy(cfg, c.Request().RemoteAddr); ok && warned.CompareAndSwap(false, true) {
					log.Warn("requests arrive through a proxy that WABOT_TRUSTED_PROXIES does not list: every client looks like the proxy to rate limits and logs, "+
						"and /metrics is refused to forwarded requests; set WABOT_TRUSTED_PROXIES to the proxy's address", "proxy", ip.String())
				}
			}
			return next(c)
		}
	}
}

// untrustedProxy returns the peer's address when it is not a trusted proxy
// and could be one: any address while none is trusted, else only loopback
// and private ones (a stranger sending X-Forwarded-For is no proxy).
func untrustedProxy(cfg *Config, remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap()
	for _, p := range cfg.TrustedProxies {
		if p.Contains(ip) {
			return ip, false
		}
	}
	return ip, len(cfg.TrustedProxies) == 0 || ip.IsLoopback() || ip.IsPrivate()
}

// contentSecurityPolicy allows only the portal's own scripts, styles and
// images, plus data: images for the server-rendered QR code.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

func securityHeaders(https bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if https {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			return next(c)
		}
	}
}

// healthRoutes serves /healthz (the process answers) and /readyz (the
// database answers and carries this binary's schema).
func healthRoutes(e *echo.Echo, st *tenant.Store) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
		}
		v, err := st.StoredSchemaVersion(ctx)
		if err != nil || v != tenant.SchemaVersion() {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "migrations not applied"})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
}
