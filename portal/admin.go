package portal

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

func (p *Portal) adminShow(c echo.Context) error {
	ctx := c.Request().Context()
	filter := tenant.LinkState(c.QueryParam("state"))
	if filter != "" && !slices.Contains(tenant.LinkStates, filter) {
		return tenant.Errorf(tenant.CodeBadRequest, "unknown session state %q", filter)
	}
	overviews, err := p.store.Overviews(ctx, "")
	if err != nil {
		return err
	}
	audit, err := p.store.AuditLog(ctx, 50)
	if err != nil {
		return err
	}
	now := time.Now()
	v := views.AdminView{Chrome: p.chrome(c, "Admin", "admin"), Filter: string(filter), Counts: map[string]int{}}
	for _, s := range tenant.LinkStates {
		v.States = append(v.States, string(s))
	}
	for _, o := range overviews {
		v.Counts[string(o.Link.State)]++
		if filter != "" && o.Link.State != filter {
			continue
		}
		label, _ := stateWords(o.Link.State)
		v.Tenants = append(v.Tenants, views.AdminTenantRow{
			ID: o.Tenant.ID, Name: o.Tenant.Name, Owner: o.Owner, Status: string(o.Tenant.Status),
			State: string(o.Link.State), StateLabel: label, Number: tenant.PhoneOf(o.Link.JID),
			LastSeen: ago(o.Worker.LastSeenAt, now), Restarts: o.Worker.Restarts, LastError: o.Link.LastError,
			WorkerStatus: string(o.Worker.Status), Actions: adminActions(o.Tenant.Status),
		})
	}
	for _, entry := range audit {
		v.Audit = append(v.Audit, views.AuditRow{At: entry.At.UTC().Format("2 Jan 15:04:05"), Actor: entry.ActorEmail, Action: entry.Action, Tenant: entry.TenantID, Detail: entry.Detail})
	}
	return Render(c, http.StatusOK, views.AdminPage(v))
}

// adminActions are the actions that make sense for a tenant's status,
// as the admin page's buttons name them.
func adminActions(status tenant.Status) []string {
	var names []string
	for _, a := range tenant.ActionsFor(status) {
		names = append(names, string(a))
	}
	return names
}

var adminActionText = map[tenant.Action]struct{ title, message string }{
	tenant.ActionApprove: {"Approve this tenant?", "Its bot starts answering messages as soon as its WhatsApp is connected."},
	tenant.ActionSuspend: {"Suspend this tenant?", "Its WhatsApp session stops and its bot answers nobody until you resume it. The link is kept."},
	tenant.ActionResume:  {"Resume this tenant?", "Its WhatsApp session starts again and its bot answers messages."},
	tenant.ActionRestart: {"Restart this tenant's session?", "wabot reconnects its WhatsApp client, keeping the link."},
	tenant.ActionReset:   {"Reset this tenant's session?", "wabot deletes the device keys under sessions/<tenantId>/; the tenant must scan a new QR code."},
}

// tenantFromPath loads the tenant named in the path, after checking the id
// has wabot's shape.
func (p *Portal) tenantFromPath(c echo.Context) (tenant.Tenant, error) {
	id := c.Param("id")
	if !tenant.ValidTenantID(id) {
		return tenant.Tenant{}, echo.NewHTTPError(http.StatusNotFound)
	}
	t, err := p.store.TenantByID(c.Request().Context(), id)
	if errors.Is(err, tenant.ErrNotFound) {
		return t, echo.NewHTTPError(http.StatusNotFound)
	}
	return t, err
}

// adminActionConfirm asks before an admin action on a tenant;
// adminActionApply carries it out.
func (p *Portal) adminActionConfirm(c echo.Context) error {
	action, err := tenant.ParseAction(c.Param("action"))
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	text := adminActionText[action]
	t, err := p.tenantFromPath(c)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.ConfirmPage(views.ConfirmView{
		Chrome: p.chrome(c, text.title, "admin"), Title: text.title, Message: t.Name + ": " + text.message,
		Action: "/admin/tenants/" + t.ID + "/" + string(action), Button: string(action), Cancel: "/admin",
		Danger: action != tenant.ActionApprove && action != tenant.ActionResume,
	}))
}

func (p *Portal) adminActionApply(c echo.Context) error {
	action, err := tenant.ParseAction(c.Param("action"))
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	t, err := p.tenantFromPath(c)
	if err != nil {
		return err
	}
	admin, _ := currentUser(c)
	if err := p.sessions.Apply(c.Request().Context(), admin, t, action); err != nil {
		if tenant.ErrorCode(err) == "" {
			return err
		}
		p.flash(c, "error", err.Error())
		return c.Redirect(http.StatusSeeOther, "/admin")
	}
	p.log.Info("admin action", "admin", admin.ID, "action", action, "tenant", t.ID)
	p.flash(c, "ok", t.Name+": "+string(action)+" done.")
	return c.Redirect(http.StatusSeeOther, "/admin")
}
