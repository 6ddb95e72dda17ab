package portal

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/views"
)

// Routes lists every route of the portal and the JSON API.
//
// Handlers are named <area><Verb> for pages and api<Area><Verb> for the
// JSON API, auth<Step> for sign-in. Verbs: Show (GET a page or a JSON
// body), Save (replace a configuration), Create (a tenant), New (start a
// link attempt or ask for a pairing code), Confirm (GET: ask before an
// action) and Apply (POST: carry it out). linkEvents and chatsEvents are
// the link page's and the inbox's live streams.
func (p *Portal) Routes(e *echo.Echo) {
	e.Use(p.loadUser)
	e.GET("/static/*", staticHandler())

	e.GET("/", p.homeShow)
	e.GET("/auth/link", p.authLinkConfirm) // limits failed look-ups itself
	e.POST("/auth/link", p.authLinkApply, p.limited)
	e.GET("/auth/:provider", p.authBegin, p.limited)
	e.GET("/auth/:provider/callback", p.authCallback, p.limited)
	e.POST("/auth/logout", p.authLogout)
	e.GET("/media/:token", p.mediaLinkShow) // a signed link: no session

	app := e.Group("/app", p.requireUser)
	app.GET("", p.dashboardShow)
	app.POST("/tenant", p.tenantCreate)
	scoped := app.Group("", p.requireTenant)
	scoped.GET("/link", p.linkShow)
	scoped.POST("/link", p.linkNew)
	scoped.GET("/link/events", p.linkEvents)
	scoped.POST("/link/phone", p.linkPhoneNew)
	scoped.GET("/chats", p.chatsShow) // inbox.go
	scoped.GET("/chats/events", p.chatsEvents)
	scoped.GET("/chats/:chat", p.chatShow)
	scoped.POST("/chats/:chat/reply", p.chatReply)
	scoped.POST("/chats/:chat/pause", p.chatPause)
	scoped.POST("/chats/:chat/resume", p.chatResume)
	scoped.POST("/chats/:chat/assign", p.chatAssign)
	scoped.POST("/chats/:chat/contact", p.chatContact)
	scoped.GET("/settings/quick-replies", p.quickRepliesShow)
	scoped.POST("/settings/quick-replies", p.quickReplyCreate)
	scoped.POST("/settings/quick-replies/:id/delete", p.quickReplyDelete)
	scoped.GET("/logs", p.logsShow)
	scoped.GET("/logs/:id", p.messageShow)
	scoped.GET("/media/:id", p.mediaShow) // media.go
	scoped.GET("/bot", p.botShow)
	scoped.POST("/bot", p.botSave)
	scoped.GET("/session/:action", p.sessionActionConfirm)
	scoped.POST("/session/:action", p.sessionActionApply)
	scoped.GET("/settings/webhooks", p.webhooksShow)
	scoped.POST("/settings/webhooks", p.webhookCreate)
	scoped.POST("/settings/webhooks/:id/test", p.webhookTestApply)
	scoped.POST("/settings/webhooks/:id/secret", p.webhookSecretApply)
	scoped.GET("/settings/webhooks/:id/delete", p.webhookDeleteConfirm)
	scoped.POST("/settings/webhooks/:id/delete", p.webhookDeleteApply)
	scoped.POST("/settings/webhooks/deliveries/:id/resend", p.deliveryResendApply)
	scoped.GET("/settings/keys", p.keysShow)
	scoped.POST("/settings/keys", p.keysCreate)
	scoped.GET("/settings/keys/:id/revoke", p.keyRevokeConfirm)
	scoped.POST("/settings/keys/:id/revoke", p.keyRevokeApply)

	admin := e.Group("/admin", p.requireUser, p.requireAdmin)
	admin.GET("", p.adminShow)
	admin.GET("/tenants/:id/:action", p.adminActionConfirm)
	admin.POST("/tenants/:id/:action", p.adminActionApply)
	admin.GET("/keys", p.adminKeysShow)
	admin.POST("/keys", p.adminKeysCreate)
	admin.GET("/keys/:id/revoke", p.adminKeyRevokeConfirm)
	admin.POST("/keys/:id/revoke", p.adminKeyRevokeApply)

	api := e.Group("/api/portal", p.requireUser)
	api.POST("/tenant", p.apiTenantCreate)
	current := api.Group("/tenant/current", p.requireTenant)
	current.GET("/qr", p.apiQRShow)
	current.GET("/status", p.apiStatusShow)
	current.GET("/logs", p.apiLogsShow)
	current.GET("/bot", p.apiBotShow)
	current.PUT("/bot", p.apiBotSave)
	current.POST("/link", p.apiLinkNew)
	current.POST("/link/phone", p.apiLinkPhoneNew)

	p.apiV1Routes(e.Group(apiV1Prefix))
	e.GET("/docs/api", p.apiDocsShow)
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
