package portal

import (
	"cmp"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// sessionLangKey holds a signed-out browser's language choice; a signed-in
// user's is stored with the user.
const sessionLangKey = "lang"

// setLocale chooses the request's language and puts it into the request's
// context, where every component finds it: the signed-in user's choice,
// else the browser session's, else the best match for Accept-Language.
// It runs after loadUser.
func (p *Portal) setLocale(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if strings.HasPrefix(r.URL.Path, "/static/") {
			return next(c) // files speak no language
		}
		ctx := r.Context()
		code := ""
		if u, ok := currentUser(c); ok {
			lang, err := p.store.UserLanguage(ctx, u.ID)
			if err != nil && !errors.Is(err, tenant.ErrNotFound) {
				return err
			}
			code = lang
		}
		if !views.Supported(code) {
			code = p.browser.GetString(ctx, sessionLangKey)
		}
		if !views.Supported(code) {
			code = views.Negotiate(r.Header.Get("Accept-Language"))
		}
		c.SetRequest(r.WithContext(views.WithLocale(ctx, views.NewLocale(code))))
		c.Response().Header().Set("Content-Language", code)
		c.Response().Header().Add("Vary", "Accept-Language")
		return next(c)
	}
}

// languageApply stores the language chosen in the header's menu (with the
// user when signed in, in the browser session too) and goes back to the
// page it was chosen on.
func (p *Portal) languageApply(c echo.Context) error {
	code := c.FormValue("lang")
	if !views.Supported(code) {
		return tenant.Errorf(tenant.CodeInvalid, "unknown language %q", code)
	}
	ctx := c.Request().Context()
	if u, ok := currentUser(c); ok {
		if err := p.store.SetUserLanguage(ctx, u.ID, code); err != nil {
			return err
		}
	}
	p.browser.Put(ctx, sessionLangKey, code)
	// Only a path on this site: never an open redirect.
	next := cmp.Or(safeNext(c.FormValue("next")), "/")
	return c.Redirect(http.StatusSeeOther, next)
}
