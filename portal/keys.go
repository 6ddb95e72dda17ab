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

// scopeLabels say in words what each tenant scope allows.
var scopeLabels = map[tenant.Scope]string{
	tenant.ScopeMessagesSend:  "send messages",
	tenant.ScopeMessagesRead:  "read messages and chats",
	tenant.ScopeSessionManage: "link, unlink and restart WhatsApp",
	tenant.ScopeBotManage:     "read and change the bot",
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
	return keyPage{tenantID: currentTenant(c).ID, base: "/app/settings/keys", active: "keys", heading: "API keys",
		intro: "Keys let your own programs use this workspace through the API, under /api/v1. Each key does only what its scopes allow; revoke one the moment it may have leaked."}
}

func adminKeyPage() keyPage {
	return keyPage{base: "/admin/keys", active: "admin-keys", heading: "Instance keys",
		intro: "Instance keys hold the admin scope: a program with one creates, approves, suspends and resumes workspaces through /api/v1/admin. They cannot read any workspace's messages."}
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
			LastUsed: "never", RevokeURL: kp.base + "/" + k.ID + "/revoke"}
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
			v.Scopes = append(v.Scopes, views.ScopeChoice{Value: string(sc), Label: scopeLabels[sc]})
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

func (p *Portal) adminKeysShow(c echo.Context) error { return p.showKeys(c, adminKeyPage()) }

func (p *Portal) adminKeysCreate(c echo.Context) error { return p.createKey(c, adminKeyPage()) }

func (p *Portal) adminKeyRevokeConfirm(c echo.Context) error {
	return p.confirmRevokeKey(c, adminKeyPage())
}

func (p *Portal) adminKeyRevokeApply(c echo.Context) error { return p.revokeKey(c, adminKeyPage()) }

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
		v.Name, v.Errors = name, de.Fields
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
		Chrome: p.chrome(c, "Revoke this key?", kp.active), Title: "Revoke this key?",
		Message: k.Name + " (" + k.Prefix + "…): programs using it are refused from now on. This cannot be undone.",
		Action:  kp.base + "/" + k.ID + "/revoke", Button: "Revoke", Cancel: kp.base, Danger: true,
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
	p.flash(c, "ok", "Key "+k.Name+" revoked.")
	return c.Redirect(http.StatusSeeOther, kp.base)
}
