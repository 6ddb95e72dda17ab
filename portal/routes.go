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
	e.Use(p.loadUser, p.setLocale)
	e.GET("/static/*", staticHandler())

	e.GET("/", p.homeShow)
	e.GET("/auth/link", p.authLinkConfirm) // limits failed look-ups itself
	e.POST("/auth/link", p.authLinkApply, p.limited)
	e.GET("/auth/:provider", p.authBegin, p.limited)
	e.GET("/auth/:provider/callback", p.authCallback, p.limited)
	e.POST("/auth/logout", p.authLogout)
	e.POST("/language", p.languageApply)    // language.go
	e.GET("/media/:token", p.mediaLinkShow) // a signed link: no session

	// /invite/:token is outside /app: a signed-out invitee signs in first
	// and comes back; the user needs no tenant yet.
	e.GET("/invite/:token", p.invitationConfirm, p.requireUser) // members.go
	e.POST("/invite/:token", p.invitationAccept, p.requireUser, p.limited)

	// Every /app route is in one of two groups: the conversations, which
	// any member may use (agentRoutes in roles_test.go), and the rest,
	// owners only. TestEveryAppRouteHasARole walks them all as an agent.
	app := e.Group("/app", p.requireUser)
	app.GET("", p.dashboardShow) // an agent is sent on to /app/chats
	app.POST("/tenant", p.tenantCreate)
	app.GET("/tenant/new", p.tenantNew)
	app.POST("/tenant/switch", p.tenantSwitch)
	member := app.Group("", p.requireTenant)
	member.GET("/chats", p.chatsShow) // inbox.go
	member.GET("/chats/events", p.chatsEvents)
	member.GET("/chats/:chat", p.chatShow)
	member.POST("/chats/:chat/reply", p.chatReply)
	member.POST("/chats/:chat/pause", p.chatPause)
	member.POST("/chats/:chat/resume", p.chatResume)
	member.POST("/chats/:chat/assign", p.chatAssign)
	member.POST("/chats/:chat/contact", p.chatContact)
	member.GET("/settings/quick-replies", p.quickRepliesShow)
	member.POST("/settings/quick-replies", p.quickReplyCreate)
	member.POST("/settings/quick-replies/:id/delete", p.quickReplyDelete)
	member.GET("/logs", p.logsShow)
	member.GET("/logs/:id", p.messageShow)
	member.GET("/media/:id", p.mediaShow) // media.go
	owner := app.Group("", p.requireTenant, p.requireOwner)
	owner.GET("/link", p.linkShow)
	owner.POST("/link", p.linkNew)
	owner.GET("/link/events", p.linkEvents)
	owner.POST("/link/phone", p.linkPhoneNew)
	owner.GET("/bot", p.botShow)
	owner.POST("/bot", p.botSave)
	owner.GET("/session/:action", p.sessionActionConfirm)
	owner.POST("/session/:action", p.sessionActionApply)
	owner.GET("/settings/webhooks", p.webhooksShow)
	owner.POST("/settings/webhooks", p.webhookCreate)
	owner.POST("/settings/webhooks/:id/test", p.webhookTestApply)
	owner.POST("/settings/webhooks/:id/secret", p.webhookSecretApply)
	owner.GET("/settings/webhooks/:id/delete", p.webhookDeleteConfirm)
	owner.POST("/settings/webhooks/:id/delete", p.webhookDeleteApply)
	owner.POST("/settings/webhooks/deliveries/:id/resend", p.deliveryResendApply)
	owner.GET("/settings/keys", p.keysShow)
	owner.POST("/settings/keys", p.keysCreate)
	owner.GET("/settings/keys/:id/revoke", p.keyRevokeConfirm)
	owner.POST("/settings/keys/:id/revoke", p.keyRevokeApply)
	owner.GET("/settings/members", p.membersShow) // members.go
	owner.POST("/settings/members", p.memberInvite)
	owner.POST("/settings/members/:user/role", p.memberRoleApply)
	owner.GET("/settings/members/:user/remove", p.memberRemoveConfirm)
	owner.POST("/settings/members/:user/remove", p.memberRemoveApply)
	owner.POST("/settings/members/invitations/:id/revoke", p.invitationRevokeApply)

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
	current.GET("/logs", p.apiLogsShow)
	ownerAPI := current.Group("", p.requireOwner)
	ownerAPI.GET("/qr", p.apiQRShow)
	ownerAPI.GET("/status", p.apiStatusShow)
	ownerAPI.GET("/bot", p.apiBotShow)
	ownerAPI.PUT("/bot", p.apiBotSave)
	ownerAPI.POST("/link", p.apiLinkNew)
	ownerAPI.POST("/link/phone", p.apiLinkPhoneNew)

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
