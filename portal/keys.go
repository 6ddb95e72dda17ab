package portal

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// scopeLabel says in words what a tenant scope allows.
func scopeLabel(l *views.Locale, sc tenant.Scope) string {
	switch sc {
	case tenant.ScopeMessagesSend:
		return l.T("ScopeMessagesSend")
	case tenant.ScopeMessagesRead:
		return l.T("ScopeMessagesRead")
	case tenant.ScopeSessionManage:
		return l.T("ScopeSessionManage")
	case tenant.ScopeBotManage:
		return l.T("ScopeBotManage")
	}
	return string(sc)
}

// keyPages are the two API keys pages, a workspace's and the instance's,
// which differ only in whose keys and where they live.
type keyPage struct {
	tenantID string // "" for instance keys
	base     string // URL of the page
	active   string // nav entry
	heading  string
	intro    string
}

func (p *Portal) tenantKeyPage(c echo.Context) keyPage {
	return keyPage{tenantID: currentTenant(c).ID, base: "/app/settings/keys", active: "keys", heading: loc(c).T("NavAPIKeys"),
		intro: loc(c).T("KeysIntro")}
}

func adminKeyPage(c echo.Context) keyPage {
	return keyPage{base: "/admin/keys", active: "admin-keys", heading: loc(c).T("NavInstanceKeys"),
		intro: loc(c).T("InstanceKeysIntro")}
}

func (p *Portal) keysView(c echo.Context, kp keyPage) (views.KeysView, error) {
	keys, err := p.store.APIKeys(c.Request().Context(), kp.tenantID)
	if err != nil {
		return views.KeysView{}, err
	}
	v := views.KeysView{Chrome: p.chrome(c, kp.heading, kp.active), Heading: kp.heading, Intro: kp.intro, Action: kp.base,
		DocsURL: "/docs/api", Errors: map[string]string{}}
	now := time.Now()
	for _, k := range keys {
		row := views.KeyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Created: loc(c).DateTime(k.CreatedAt),
			LastUsed: loc(c).T("AgoNever"), RevokeURL: kp.base + "/" + k.ID + "/revoke"}
		var scopes []string
		for _, sc := range k.Scopes {
			scopes = append(scopes, string(sc))
		}
		row.Scopes = strings.Join(scopes, ", ")
		if !k.LastUsedAt.IsZero() {
			row.LastUsed = loc(c).Ago(k.LastUsedAt, now)
		}
		if k.Revoked() {
			row.Revoked = loc(c).DateTime(k.RevokedAt)
		}
		v.Keys = append(v.Keys, row)
	}
	if kp.tenantID != "" {
		for _, sc := range tenant.TenantScopes {
			v.Scopes = append(v.Scopes, views.ScopeChoice{Value: string(sc), Label: scopeLabel(loc(c), sc)})
		}
	}
	return v, nil
}

// keysShow lists the workspace's keys with a form for a new one; only
// members of the workspace reach it (requireTenant), and a workspace has
// one member, the user who created it.
func (p *Portal) keysShow(c echo.Context) error { return p.showKeys(c, p.tenantKeyPage(c)) }

func (p *Portal) keysCreate(c echo.Context) error { return p.createKey(c, p.tenantKeyPage(c)) }

func (p *Portal) keyRevokeConfirm(c echo.Context) error {
	return p.confirmRevokeKey(c, p.tenantKeyPage(c))
}

func (p *Portal) keyRevokeApply(c echo.Context) error { return p.revokeKey(c, p.tenantKeyPage(c)) }

func (p *Portal) adminKeysShow(c echo.Context) error { return p.showKeys(c, adminKeyPage(c)) }

func (p *Portal) adminKeysCreate(c echo.Context) error { return p.createKey(c, adminKeyPage(c)) }

func (p *Portal) adminKeyRevokeConfirm(c echo.Context) error {
	return p.confirmRevokeKey(c, adminKeyPage(c))
}

func (p *Portal) adminKeyRevokeApply(c echo.Context) error { return p.revokeKey(c, adminKeyPage(c)) }

func (p *Portal) showKeys(c echo.Context, kp keyPage) error {
	v, err := p.keysView(c, kp)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.KeysPage(v))
}

// createKey makes a key and shows its secret in this response only: it
// is never stored, so there is no page to redirect to that could show it.
func (p *Portal) createKey(c echo.Context, kp keyPage) error {
	form, err := c.FormParams()
	if err != nil {
		return tenant.Errorf(tenant.CodeBadRequest, "the form cannot be read")
	}
	name, picked := form.Get("name"), form["scopes"]
	var scopes []tenant.Scope
	if kp.tenantID != "" {
		scopes, err = tenant.ParseScopes(picked)
	}
	u, _ := currentUser(c)
	var k tenant.APIKey
	var secret string
	if err == nil {
		k, secret, err = p.store.CreateAPIKey(c.Request().Context(), kp.tenantID, name, scopes, u.ID)
	}
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		v, verr := p.keysView(c, kp)
		if verr != nil {
			return verr
		}
		v.Name, v.Errors = name, fieldTexts(loc(c), de.Fields)
		for i := range v.Scopes {
			v.Scopes[i].Checked = slices.Contains(picked, v.Scopes[i].Value)
		}
		return Render(c, http.StatusUnprocessableEntity, views.KeysPage(v))
	}
	if err != nil {
		return err
	}
	if kp.tenantID == "" {
		if err := p.store.Audit(c.Request().Context(), u, "create instance key", "", k.Name+" ("+k.Prefix+"…)"); err != nil {
			return err
		}
	}
	p.log.Info("API key created", "key", k.ID, "tenant", kp.tenantID, "user", u.ID)
	v, err := p.keysView(c, kp)
	if err != nil {
		return err
	}
	v.Created = &views.CreatedKey{Name: k.Name, Secret: secret}
	c.Response().Header().Set("Cache-Control", "no-store")
	return Render(c, http.StatusCreated, views.KeysPage(v))
}

// keyOf finds the key named in the path among the page's keys: a key of
// another workspace is not found.
func (p *Portal) keyOf(c echo.Context, kp keyPage) (tenant.APIKey, error) {
	keys, err := p.store.APIKeys(c.Request().Context(), kp.tenantID)
	if err != nil {
		return tenant.APIKey{}, err
	}
	for _, k := range keys {
		if k.ID == c.Param("id") {
			return k, nil
		}
	}
	return tenant.APIKey{}, echo.NewHTTPError(http.StatusNotFound)
}

func (p *Portal) confirmRevokeKey(c echo.Context, kp keyPage) error {
	k, err := p.keyOf(c, kp)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.ConfirmPage(views.ConfirmView{
		Chrome: p.chrome(c, loc(c).T("RevokeKeyTitle"), kp.active), Title: loc(c).T("RevokeKeyTitle"),
		Message: loc(c).T("RevokeKeyMessage", "Key", k.Name+" ("+k.Prefix+"…)"),
		Action:  kp.base + "/" + k.ID + "/revoke", Button: loc(c).T("Revoke"), Cancel: kp.base, Danger: true,
	}))
}

func (p *Portal) revokeKey(c echo.Context, kp keyPage) error {
	k, err := p.keyOf(c, kp)
	if err != nil {
		return err
	}
	if err := p.store.RevokeAPIKey(c.Request().Context(), kp.tenantID, k.ID); err != nil {
		return err
	}
	u, _ := currentUser(c)
	if kp.tenantID == "" {
		if err := p.store.Audit(c.Request().Context(), u, "revoke instance key", "", k.Name+" ("+k.Prefix+"…)"); err != nil {
			return err
		}
	}
	p.log.Info("API key revoked", "key", k.ID, "tenant", kp.tenantID, "user", u.ID)
	p.flash(c, "ok", loc(c).T("FlashKeyRevoked", "Name", k.Name))
	return c.Redirect(http.StatusSeeOther, kp.base)
}
