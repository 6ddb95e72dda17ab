package portal

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/views"
)

// Routes lists every route of the portal and the JSON API.
func (p *Portal) Routes(e *echo.Echo) {
	e.Use(p.loadUser)
	e.GET("/static/*", staticHandler())

	e.GET("/", p.home)
	e.GET("/auth/link", p.handleLoginLink, p.limited)
	e.GET("/auth/:provider", p.handleBegin, p.limited)
	e.GET("/auth/:provider/callback", p.handleCallback, p.limited)
	e.POST("/auth/logout", p.handleLogout)

	app := e.Group("/app", p.requireUser)
	app.GET("", p.dashboard)
	app.POST("/tenant", p.createTenantForm)
	scoped := app.Group("", p.requireTenant)
	scoped.GET("/link", p.linkPage)
	scoped.POST("/link", p.linkNew)
	scoped.GET("/link/events", p.linkEvents)
	scoped.POST("/link/phone", p.linkPhoneForm)
	scoped.GET("/logs", p.logsPage)
	scoped.GET("/bot", p.botPage)
	scoped.POST("/bot", p.botSave)
	scoped.GET("/session/:action", p.confirmSessionAction)
	scoped.POST("/session/:action", p.sessionAction)

	admin := e.Group("/admin", p.requireUser, p.requireAdmin)
	admin.GET("", p.adminPage)
	admin.GET("/tenants/:id/:action", p.adminConfirm)
	admin.POST("/tenants/:id/:action", p.adminAction)

	api := e.Group("/api/portal", p.requireUser)
	api.POST("/tenant", p.apiCreateTenant)
	cur := api.Group("/tenant/current", p.requireTenant)
	cur.GET("/qr", p.apiQR)
	cur.GET("/status", p.apiStatus)
	cur.GET("/logs", p.apiLogs)
	cur.GET("/bot", p.apiBotGet)
	cur.PUT("/bot", p.apiBotPut)
	cur.POST("/link", p.apiLink)
	cur.POST("/link/phone", p.apiLinkPhone)
}

// staticHandler serves the embedded assets; their URLs carry a content
// version, so they are cached for a year.
func staticHandler() echo.HandlerFunc {
	files := http.FileServer(http.FS(views.Static))
	return func(c echo.Context) error {
		name := strings.TrimPrefix(c.Param("*"), "/")
		if _, err := fs.Stat(views.Static, name); err != nil || name == "" {
			return echo.NewHTTPError(http.StatusNotFound)
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		req := c.Request().Clone(c.Request().Context())
		req.URL.Path = "/" + name
		files.ServeHTTP(c.Response(), req)
		return nil
	}
}
