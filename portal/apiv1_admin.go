package portal

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// The admin scope's routes: an operator's program provisions workspaces
// for its own customers. Each action is audited with the key as actor.

type adminTenantV1 struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Status     string  `json:"status"`
	OwnerEmail string  `json:"owner_email"`
	State      *string `json:"state"` // the WhatsApp link's; null when not read
	Number     *string `json:"number"`
	CreatedAt  string  `json:"created_at"`
}

type adminTenantsV1 struct {
	Tenants []adminTenantV1 `json:"tenants"`
	Page    int             `json:"page"`
	Pages   int             `json:"pages"`
	Total   int             `json:"total"`
}

// maxAPIPerPage bounds ?per_page=.
const maxAPIPerPage = 200

// apiV1AdminTenantsShow lists workspaces, oldest first, a page at a time
// (?page=, ?per_page= up to 200, ?status=).
func (p *Portal) apiV1AdminTenantsShow(c echo.Context) error {
	q := tenant.TenantQuery{Page: 1, PerPage: tenant.DefaultPerPage, Sort: tenant.SortCreated}
	fields := map[string]string{}
	if raw := c.QueryParam("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			fields["page"] = "Use a whole number from 1."
		}
		q.Page = n
	}
	if raw := c.QueryParam("per_page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxAPIPerPage {
			fields["per_page"] = "Use a whole number from 1 to 200."
		}
		q.PerPage = n
	}
	if raw := tenant.Status(c.QueryParam("status")); raw != "" {
		if !slices.Contains(tenant.Statuses, raw) {
			fields["status"] = "Use PENDING, ACTIVE, SUSPENDED or ERROR."
		}
		q.Status = raw
	}
	if len(fields) > 0 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "a query parameter is not valid", Fields: fields}
	}
	list, err := p.store.AdminTenants(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := adminTenantsV1{Tenants: []adminTenantV1{}, Page: list.Page, Pages: list.Pages, Total: list.Total}
	for _, o := range list.Overviews {
		state := string(o.Link.State)
		out.Tenants = append(out.Tenants, adminTenantV1{ID: o.Tenant.ID, Name: o.Tenant.Name, Status: string(o.Tenant.Status),
			OwnerEmail: o.Owner, State: &state, Number: nullIfEmpty(tenant.PhoneOf(o.Link.JID)),
			CreatedAt: o.Tenant.CreatedAt.UTC().Format(time.RFC3339)})
	}
	return c.JSON(http.StatusOK, out)
}

// apiV1AdminTenantCreate creates a workspace owned by owner_email (the
// user is created when new; they sign in with a login link or a provider
// using that email). It is PENDING or ACTIVE as the instance's approval
// setting says, and its session starts at once.
func (p *Portal) apiV1AdminTenantCreate(c echo.Context) error {
	var in struct {
		Name       string `json:"name"`
		OwnerEmail string `json:"owner_email"`
	}
	if err := decodeAPIV1JSON(c, &in); err != nil {
		return err
	}
	fields := map[string]string{}
	if _, err := tenant.ValidateTenantName(in.Name); err != nil {
		if de, ok := err.(*tenant.Error); ok {
			fields["name"] = de.Fields["name"]
		}
	}
	if !tenant.ValidEmail(in.OwnerEmail) {
		fields["owner_email"] = "Enter the owner's email address."
	}
	if len(fields) > 0 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "the workspace cannot be created as asked", Fields: fields}
	}
	ctx := c.Request().Context()
	owner, err := p.store.EnsureUser(ctx, in.OwnerEmail)
	if err != nil {
		return err
	}
	t, err := p.store.CreateTenant(ctx, owner.ID, in.Name, p.cfg.AutoApprove)
	if tenant.ErrorCode(err) == tenant.CodeConflict {
		return newAPIError(http.StatusConflict, "conflict", fmt.Sprintf("%s already owns %d workspaces, the most one person may", in.OwnerEmail, tenant.MaxOwnedTenants))
	}
	if err != nil {
		return err
	}
	k := apiKeyOf(c)
	if err := p.store.Audit(ctx, k.Actor(), "create", t.ID, t.Name+" for "+owner.Email); err != nil {
		return err
	}
	p.log.Info("tenant created through the API", "tenant", t.ID, "status", t.Status, "key", k.ID)
	if err := p.sessions.Add(t.ID); err != nil {
		p.log.Error("cannot start the new tenant's session", "tenant", t.ID, "err", err)
	}
	return p.showAdminTenantV1(c, http.StatusCreated, t.ID)
}

func (p *Portal) showAdminTenantV1(c echo.Context, status int, id string) error {
	ctx := c.Request().Context()
	t, err := p.store.TenantByID(ctx, id)
	if err != nil {
		return err
	}
	out := adminTenantV1{ID: t.ID, Name: t.Name, Status: string(t.Status), CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339)}
	if l, err := p.store.LinkOf(ctx, t.ID); err == nil {
		state := string(l.State)
		out.State, out.Number = &state, nullIfEmpty(tenant.PhoneOf(l.JID))
	}
	if list, err := p.store.AdminTenants(ctx, tenant.TenantQuery{Search: t.ID, PerPage: 1}); err == nil && len(list.Overviews) == 1 {
		out.OwnerEmail = list.Overviews[0].Owner
	}
	return c.JSON(status, out)
}

// apiV1AdminTenantAction approves, suspends or resumes the workspace in
// the path, as the admin console does, and answers with it afterwards.
func (p *Portal) apiV1AdminTenantAction(action tenant.Action) echo.HandlerFunc {
	return func(c echo.Context) error {
		t, err := p.tenantFromPath(c)
		if err != nil {
			return err
		}
		k := apiKeyOf(c)
		if err := p.sessions.Apply(c.Request().Context(), k.Actor(), t, action); err != nil {
			return err
		}
		p.log.Info("admin action through the API", "key", k.ID, "action", action, "tenant", t.ID)
		return p.showAdminTenantV1(c, http.StatusOK, t.ID)
	}
}

// apiV1AdminTenantLink starts linking the workspace in the path and
// answers with its link as POST /session/link does (the QR code as text
// and as a PNG data URI when it came within 3 s), for an operator's
// program to show its customer. Audited with the key as actor.
func (p *Portal) apiV1AdminTenantLink(c echo.Context) error {
	t, err := p.tenantFromPath(c)
	if err != nil {
		return err
	}
	if t.Status == tenant.StatusSuspended {
		return newAPIError(http.StatusConflict, "conflict", t.Name+" is suspended; resume it before linking")
	}
	k := apiKeyOf(c)
	return p.startLinkV1(c, t.ID, func() error {
		p.log.Info("link started through the API", "key", k.ID, "tenant", t.ID)
		return p.store.Audit(c.Request().Context(), k.Actor(), "link", t.ID, t.Name)
	})
}

// apiV1AdminTenantSessionShow answers with the workspace's link, to poll
// for a fresh QR code or the connection.
func (p *Portal) apiV1AdminTenantSessionShow(c echo.Context) error {
	t, err := p.tenantFromPath(c)
	if err != nil {
		return err
	}
	return p.showSessionV1(c, http.StatusOK, t.ID)
}
