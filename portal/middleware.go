package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

const (
	ctxUser        = "wabot.user"
	ctxTenant      = "wabot.tenant"
	ctxRole        = "wabot.role"
	ctxMemberships = "wabot.memberships"
)

// sessionTenantKey holds the browser session's current tenant: a user in
// several tenants works in one per browser, chosen in the header.
const sessionTenantKey = "tid"

// loadUser puts the signed-in user, if any, into the request context. A
// session whose user is gone is treated as signed out.
func (p *Portal) loadUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		if uid := p.browser.GetString(ctx, sessionUserKey); uid != "" {
			u, err := p.store.UserByID(ctx, uid)
			switch {
			case err == nil:
				if u, err = p.resolveTenant(c, u); err != nil {
					return err
				}
				c.Set(ctxUser, u)
			case errors.Is(err, tenant.ErrNotFound):
				p.browser.Remove(ctx, sessionUserKey)
			default:
				return err
			}
		}
		return next(c)
	}
}

// resolveTenant is the one place that decides a request's tenant and role:
// the session's current tenant if the user is still its member, else
// their first membership. The user's TenantID becomes that tenant, so a
// removed member loses it on their next request.
func (p *Portal) resolveTenant(c echo.Context, u tenant.User) (tenant.User, error) {
	ctx := c.Request().Context()
	ms, err := p.store.Memberships(ctx, u.ID)
	if err != nil {
		return u, err
	}
	u.TenantID = ""
	if len(ms) == 0 {
		return u, nil
	}
	cur := ms[0]
	if want := p.browser.GetString(ctx, sessionTenantKey); want != "" {
		for _, m := range ms {
			if m.TenantID == want {
				cur = m
			}
		}
	}
	u.TenantID = cur.TenantID
	c.Set(ctxRole, cur.Role)
	c.Set(ctxMemberships, ms)
	return u, nil
}

// currentRole is the signed-in user's role in the current tenant ("" without one).
func currentRole(c echo.Context) tenant.Role {
	r, _ := c.Get(ctxRole).(tenant.Role)
	return r
}

// errOwnerOnly refuses an agent what only an owner may do.
var errOwnerOnly = &tenant.Error{Code: tenant.CodeForbidden, Msg: "only the workspace's owners may open this; ask an owner"}

// requireOwner guards the routes an agent may not use: everything but the
// conversations.
func (p *Portal) requireOwner(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if currentRole(c) != tenant.RoleOwner {
			return errOwnerOnly
		}
		return next(c)
	}
}

func currentUser(c echo.Context) (tenant.User, bool) {
	u, ok := c.Get(ctxUser).(tenant.User)
	return u, ok
}

// CurrentUser is the signed-in user of the request, for routes outside
// this package (the demo build's).
func CurrentUser(c echo.Context) (tenant.User, bool) { return currentUser(c) }

// requireUser answers 401 (API) or sends the browser to sign in.
func (p *Portal) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := currentUser(c); ok {
			return next(c)
		}
		if isAPI(c) || c.Request().Method != http.MethodGet {
			return errUnauthorized
		}
		return c.Redirect(http.StatusSeeOther, "/?next="+url.QueryEscape(c.Request().URL.RequestURI()))
	}
}

// requireTenant loads the signed-in user's tenant: every tenant-scoped
// handler gets it from here, never from the request.
func (p *Portal) requireTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, _ := currentUser(c)
		if u.TenantID == "" {
			if isAPI(c) {
				return errNoTenant
			}
			return c.Redirect(http.StatusSeeOther, "/app")
		}
		t, err := p.store.TenantByID(c.Request().Context(), u.TenantID)
		if err != nil {
			if errors.Is(err, tenant.ErrNotFound) {
				return errNoTenant
			}
			return err
		}
		c.Set(ctxTenant, t)
		return next(c)
	}
}

func currentTenant(c echo.Context) tenant.Tenant {
	t, _ := c.Get(ctxTenant).(tenant.Tenant)
	return t
}

// requireAdmin hides admin routes from everyone else with a 404.
func (p *Portal) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if u, ok := currentUser(c); !ok || !u.IsAdmin {
			return echo.NewHTTPError(http.StatusNotFound)
		}
		return next(c)
	}
}

const flashKey = "flash"

// flash stores a one-time message for the next page.
func (p *Portal) flash(c echo.Context, kind, text string) {
	p.browser.Put(c.Request().Context(), flashKey, kind+"|"+text)
}

func (p *Portal) chrome(c echo.Context, title, active string) views.Chrome {
	u, _ := currentUser(c)
	ch := views.Chrome{Title: title, Path: c.Request().URL.Path, Email: u.Email, IsAdmin: u.IsAdmin, HasTenant: u.TenantID != "", Active: active, Demo: p.cfg.Demo,
		IsOwner: currentRole(c) == tenant.RoleOwner}
	ms, _ := c.Get(ctxMemberships).([]tenant.Membership)
	for _, m := range ms {
		ch.Tenants = append(ch.Tenants, views.TenantChoice{ID: m.TenantID, Name: m.TenantName, Role: string(m.Role), Current: m.TenantID == u.TenantID})
	}
	if f := p.browser.PopString(c.Request().Context(), flashKey); f != "" {
		kind, text, _ := strings.Cut(f, "|")
		ch.Flash = views.Flash{Kind: kind, Text: text}
	}
	return ch
}
