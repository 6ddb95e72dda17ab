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
	ctxUser   = "wabot.user"
	ctxTenant = "wabot.tenant"
)

// loadUser puts the signed-in user, if any, into the request context. A
// session whose user is gone is treated as signed out.
func (p *Portal) loadUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		if uid := p.browser.GetString(ctx, sessionUserKey); uid != "" {
			u, err := p.store.UserByID(ctx, uid)
			switch {
			case err == nil:
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
	ch := views.Chrome{Title: title, Email: u.Email, IsAdmin: u.IsAdmin, HasTenant: u.TenantID != "", Active: active, Demo: p.cfg.Demo}
	if f := p.browser.PopString(c.Request().Context(), flashKey); f != "" {
		kind, text, _ := strings.Cut(f, "|")
		ch.Flash = views.Flash{Kind: kind, Text: text}
	}
	return ch
}
