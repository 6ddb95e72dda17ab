package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

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

	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: func() string { return tenant.NewID("r") },
	}))
	e.Use(requestLogger(log))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		StackSize:       16 << 10,
		DisableStackAll: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic in handler",
				"method", c.Request().Method, "path", c.Request().URL.Path,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"err", err, "stack", string(stack))
			return echo.NewHTTPError(http.StatusInternalServerError).SetInternal(err)
		},
	}))
	e.Use(middleware.BodyLimit("1M"))
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
				"method", req.Method,
				"path", req.URL.Path,
				"status", status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000,
				"ip", c.RealIP(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			return nil
		}
	}
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
