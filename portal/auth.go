package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"github.com/markbates/goth"
	"github.com/markbates/goth/providers/google"
	"github.com/markbates/goth/providers/openidConnect"

	"wabot/tenant"
	"wabot/views"
)

// Provider names as they appear in URLs.
const (
	providerGoogle = "google"
	providerOIDC   = "oidc"
)

// authenticator drives goth's providers directly (no gothic): the state,
// the PKCE verifier, the OpenID nonce and the page to return to live in a
// short-lived, one-shot cookie, and only the code is passed to the
// provider.
type authenticator struct {
	cfg Config
	log *slog.Logger

	google *google.Provider

	oidcMu sync.Mutex
	oidc   *oidcProvider // discovered on first use
}

// oidcProvider is goth's OpenID Connect provider, which runs the code
// exchange and reads userinfo, and go-oidc's verifier, which checks the ID
// token's signature against the issuer's published keys, its issuer,
// audience and expiry (goth only decodes it).
type oidcProvider struct {
	goth     *openidConnect.Provider
	verifier *oidc.IDTokenVerifier
}

func newAuthenticator(cfg Config, log *slog.Logger) *authenticator {
	a := &authenticator{cfg: cfg, log: log}
	if cfg.GoogleClientID != "" {
		a.google = google.New(cfg.GoogleClientID, cfg.GoogleClientSecret, a.callbackURL(providerGoogle), "openid", "email", "profile")
		a.google.HTTPClient = cfg.HTTPClient
	}
	return a
}

func (a *authenticator) callbackURL(provider string) string {
	return a.cfg.BaseURL.String() + "/auth/" + provider + "/callback"
}

// providers lists the configured ones, for the sign-in page.
func (a *authenticator) providers() []string {
	var out []string
	if a.cfg.GoogleClientID != "" {
		out = append(out, providerGoogle)
	}
	if a.cfg.OIDCIssuer != "" {
		out = append(out, providerOIDC)
	}
	return out
}

// oidcProvider discovers the issuer on first use and keeps the result, so
// an issuer that is down at start-up does not stop wabot. go-oidc
// discovers (and refuses a document naming another issuer); goth gets
// the endpoints it found.
func (a *authenticator) oidcProvider() (*oidcProvider, error) {
	a.oidcMu.Lock()
	defer a.oidcMu.Unlock()
	if a.oidc != nil {
		return a.oidc, nil
	}
	// The key set keeps the client from this context (not its deadline)
	// for fetching keys later.
	ctx := context.Background()
	if a.cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, a.cfg.HTTPClient)
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	disc, err := oidc.NewProvider(dctx, a.cfg.OIDCIssuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OpenID Connect issuer: %w", err)
	}
	ep := disc.Endpoint()
	p, err := openidConnect.NewCustomisedURL(a.cfg.OIDCClientID, a.cfg.OIDCClientSecret, a.callbackURL(providerOIDC),
		ep.AuthURL, ep.TokenURL, a.cfg.OIDCIssuer, disc.UserInfoEndpoint(), "", "openid", "email", "profile")
	if err != nil {
		return nil, fmt.Errorf("configuring OpenID Connect: %w", err)
	}
	p.HTTPClient = a.cfg.HTTPClient
	a.oidc = &oidcProvider{goth: p, verifier: disc.VerifierContext(ctx, &oidc.Config{ClientID: a.cfg.OIDCClientID})}
	return a.oidc, nil
}

// oauthState is what the state cookie carries between begin and callback.
type oauthState struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Verifier string `json:"v,omitempty"`
	Nonce    string `json:"o,omitempty"` // OpenID Connect: the ID token must carry it
	Next     string `json:"n,omitempty"`
}

func (a *authenticator) stateCookieName() string {
	if a.cfg.secure() {
		return "__Host-wabot_oauth"
	}
	return "wabot_oauth"
}

func (a *authenticator) setStateCookie(c echo.Context, st oauthState) {
	raw, _ := json.Marshal(st)
	c.SetCookie(&http.Cookie{
		Name: a.stateCookieName(), Value: base64.RawURLEncoding.EncodeToString(raw),
		Path: "/", MaxAge: 600, HttpOnly: true, Secure: a.cfg.secure(), SameSite: http.SameSiteLaxMode,
	})
}

// takeStateCookie reads and deletes the state cookie: it works once.
func (a *authenticator) takeStateCookie(c echo.Context) (oauthState, bool) {
	ck, err := c.Cookie(a.stateCookieName())
	c.SetCookie(&http.Cookie{Name: a.stateCookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.cfg.secure(), SameSite: http.SameSiteLaxMode})
	if err != nil {
		return oauthState{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return oauthState{}, false
	}
	var st oauthState
	if json.Unmarshal(raw, &st) != nil || st.State == "" {
		return oauthState{}, false
	}
	return st, true
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// begin redirects the browser to the provider.
func (a *authenticator) begin(c echo.Context, provider string) error {
	st := oauthState{Provider: provider, State: randomToken(), Next: safeNext(c.QueryParam("next"))}
	var authURL string
	switch provider {
	case providerGoogle:
		if a.google == nil {
			return echo.NewHTTPError(http.StatusNotFound)
		}
		sess, err := a.google.BeginAuth(st.State)
		if err != nil {
			return err
		}
		if authURL, err = sess.GetAuthURL(); err != nil {
			return err
		}
	case providerOIDC:
		if a.cfg.OIDCIssuer == "" {
			return echo.NewHTTPError(http.StatusNotFound)
		}
		op, err := a.oidcProvider()
		if err != nil {
			a.log.Error("OpenID Connect unavailable", "err", err)
			return &tenant.Error{Code: tenant.CodeUnavailable, Msg: "the sign-in provider cannot be reached; try again shortly"}
		}
		sess, err := op.goth.BeginAuth(st.State)
		if err != nil {
			return err
		}
		if authURL, err = sess.GetAuthURL(); err != nil {
			return err
		}
		// PKCE (RFC 7636, S256): goth forwards the verifier at exchange.
		// The nonce ties the ID token to this browser's attempt.
		st.Verifier, st.Nonce = randomToken(), randomToken()
		sum := sha256.Sum256([]byte(st.Verifier))
		authURL = addQuery(authURL, "code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method", "S256",
			"nonce", st.Nonce)
	default:
		return echo.NewHTTPError(http.StatusNotFound)
	}
	a.setStateCookie(c, st)
	return c.Redirect(http.StatusFound, authURL)
}

func addQuery(raw string, kv ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var errBadState = &tenant.Error{Code: tenant.CodeBadRequest, Msg: "this sign-in attempt is invalid or expired; start again from the sign-in page"}

// callback checks the state, exchanges the code and returns the verified
// identity with the page to go to.
func (a *authenticator) callback(c echo.Context, provider string) (tenant.Identity, string, error) {
	st, ok := a.takeStateCookie(c)
	got := c.QueryParam("state")
	if !ok || st.Provider != provider || subtle.ConstantTimeCompare([]byte(st.State), []byte(got)) != 1 {
		return tenant.Identity{}, "", errBadState
	}
	if e := c.QueryParam("error"); e != "" {
		return tenant.Identity{}, "", tenant.Errorf(tenant.CodeForbidden, "the sign-in provider refused: %s", e)
	}
	code := c.QueryParam("code")
	if code == "" {
		return tenant.Identity{}, "", errBadState
	}
	var user goth.User
	var err error
	switch provider {
	case providerGoogle:
		if a.google == nil {
			return tenant.Identity{}, "", echo.NewHTTPError(http.StatusNotFound)
		}
		user, err = exchange(a.google, st.State, url.Values{"code": {code}})
	case providerOIDC:
		op, discoveryErr := a.oidcProvider()
		if discoveryErr != nil {
			return tenant.Identity{}, "", &tenant.Error{Code: tenant.CodeUnavailable, Msg: "the sign-in provider cannot be reached; try again shortly"}
		}
		user, err = exchange(op.goth, st.State, url.Values{"code": {code}, "code_verifier": {st.Verifier}})
		if err == nil {
			err = verifyIDToken(c.Request().Context(), op.verifier, user, st.Nonce)
		}
	default:
		return tenant.Identity{}, "", echo.NewHTTPError(http.StatusNotFound)
	}
	if err != nil {
		a.log.Warn("sign-in exchange failed", "provider", provider, "err", err)
		return tenant.Identity{}, "", tenant.Errorf(tenant.CodeBadRequest, "the sign-in could not be completed; start again from the sign-in page")
	}
	ident, err := a.identity(provider, user)
	return ident, st.Next, err
}

// verifyIDToken checks the ID token goth decoded without verifying: the
// issuer's signature, issuer, audience (our client id), expiry, the nonce
// this browser's attempt sent, and that it names the account goth read.
func verifyIDToken(ctx context.Context, v *oidc.IDTokenVerifier, u goth.User, nonce string) error {
	tok, err := v.Verify(ctx, u.IDToken)
	if err != nil {
		return fmt.Errorf("verifying the ID token: %w", err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
		return errors.New("the ID token's nonce is not this attempt's")
	}
	if tok.Subject != u.UserID {
		return errors.New("the ID token names another subject than the one signed in")
	}
	return nil
}

func exchange(provider goth.Provider, state string, params url.Values) (goth.User, error) {
	sess, err := provider.BeginAuth(state)
	if err != nil {
		return goth.User{}, err
	}
	if _, err := sess.Authorize(provider, params); err != nil {
		return goth.User{}, err
	}
	return provider.FetchUser(sess)
}

// identity applies the sign-in rules: an email the provider asserts is
// verified (it joins the existing user with that email), never a
// localhost address (the first admin's reserved admin@localhost must not
// be claimable from outside), and, when WABOT_ALLOWED_DOMAINS is set, a
// domain on the list: Google's hd claim when present (only Google's: any
// other provider could assert any hd), else the email's domain.
func (a *authenticator) identity(provider string, u goth.User) (tenant.Identity, error) {
	verified := claimTrue(u.RawData["verified_email"]) || claimTrue(u.RawData["email_verified"])
	if u.Email == "" || !verified {
		return tenant.Identity{}, tenant.Errorf(tenant.CodeForbidden, "your account's email address is not verified with the sign-in provider")
	}
	if u.UserID == "" {
		return tenant.Identity{}, tenant.Errorf(tenant.CodeForbidden, "the sign-in provider did not identify the account")
	}
	domain := strings.ToLower(u.Email[strings.LastIndexByte(u.Email, '@')+1:])
	if domain == "localhost" || strings.HasSuffix(domain, ".localhost") {
		return tenant.Identity{}, tenant.Errorf(tenant.CodeForbidden, "addresses at localhost are reserved for sign-in links and cannot sign in through a provider")
	}
	if len(a.cfg.AllowedDomains) > 0 {
		if hd, ok := u.RawData["hd"].(string); ok && hd != "" && provider == providerGoogle {
			domain = strings.ToLower(hd)
		}
		if !slices.Contains(a.cfg.AllowedDomains, domain) {
			return tenant.Identity{}, tenant.Errorf(tenant.CodeForbidden, "accounts of %s may not sign in here", domain)
		}
	}
	return tenant.Identity{Provider: provider, Subject: u.UserID, Email: u.Email, Name: u.Name}, nil
}

func claimTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

// safeNext accepts only a local path ("/app/link"), never another host:
// "//evil", "/\evil", "https://evil", "javascript:" and friends become "".
func safeNext(next string) string {
	if next == "" || len(next) > 512 || next[0] != '/' {
		return ""
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return ""
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

// limited rejects a client over its budget with 429.
func (p *Portal) limited(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ok, wait := p.limiter.allow(clientKey(c.RealIP())); !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many sign-in attempts; wait a minute and try again"}
		}
		return next(c)
	}
}

var errUnauthorized = &tenant.Error{Code: tenant.CodeUnauthorized, Msg: "unauthorized"}

// signIn records the user in a fresh session (a new token defeats session
// fixation).
func (p *Portal) signIn(c echo.Context, u tenant.User) error {
	ctx := c.Request().Context()
	if err := p.browser.RenewToken(ctx); err != nil {
		return err
	}
	p.browser.Put(ctx, sessionUserKey, u.ID)
	p.log.Info("signed in", "user", u.ID)
	return nil
}

const sessionUserKey = "uid"

func (p *Portal) authBegin(c echo.Context) error {
	return p.auth.begin(c, c.Param("provider"))
}

func (p *Portal) authCallback(c echo.Context) error {
	provider := c.Param("provider")
	ident, next, err := p.auth.callback(c, provider)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := p.store.SignIn(ctx, ident, slices.Contains(p.cfg.AdminEmails, strings.ToLower(ident.Email)))
	if err != nil {
		return err
	}
	// The provider verified the email: that is what an invitation names,
	// so the invitee need not open its link.
	joined, err := p.store.AcceptPendingInvitations(ctx, u)
	if err != nil {
		return err
	}
	for _, in := range joined {
		if err := p.store.Audit(ctx, u, "join", in.TenantID, u.Email+" as "+string(in.Role)+" (signed in by "+ident.Provider+")"); err != nil {
			return err
		}
	}
	if err := p.signIn(c, u); err != nil {
		return err
	}
	if len(joined) > 0 {
		p.browser.Put(ctx, sessionTenantKey, joined[len(joined)-1].TenantID)
		if u.TenantID == "" {
			u.TenantID = joined[0].TenantID // landing: the workspace, not /admin
		}
	}
	return c.Redirect(http.StatusSeeOther, landing(u, next))
}

// authLinkConfirm is a one-time link's page: it says whom the link signs
// in, and who is signed in already, and asks; it spends nothing, so a
// mail client's link scanner or a link an attacker lures someone to open
// signs no one in (login CSRF). Only failed look-ups count against the
// sign-in rate limit: a good link's budget is spent by its POST.
func (p *Portal) authLinkConfirm(c echo.Context) error {
	token := c.QueryParam("token")
	if token == "" {
		return tenant.Errorf(tenant.CodeBadRequest, "the sign-in link is incomplete")
	}
	email, admin, err := p.store.LoginLinkEmail(c.Request().Context(), token)
	if err != nil {
		if tenant.ErrorCode(err) == tenant.CodeForbidden {
			if ok, wait := p.limiter.allow(clientKey(c.RealIP())); !ok {
				c.Response().Header().Set("Retry-After", retryAfter(wait))
				return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many sign-in attempts; wait a minute and try again"}
			}
		}
		return err
	}
	return p.renderLinkPage(c, http.StatusOK, token, email, admin, safeNext(c.QueryParam("next")))
}

func (p *Portal) renderLinkPage(c echo.Context, status int, token, email string, admin bool, next string) error {
	v := views.LoginLinkView{Chrome: p.chrome(c, loc(c).T("TitleSignIn"), ""), Email: email, Admin: admin, Token: token, Next: next}
	if u, ok := currentUser(c); ok && u.Email != email {
		v.SignedIn, v.SwitchFrom = u.Email, u.ID
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return Render(c, status, views.LoginLinkPage(v))
}

// authLinkApply spends the link and signs its user in. Another user
// signed in on this browser is replaced only when the form names them
// (switch_from, the button on the page that showed who it replaces);
// otherwise the page comes back, 409, and the link stays unspent.
// Cross-site POSTs never get here (the cross-origin protection around
// the portal); scripts POST the link's URL itself.
func (p *Portal) authLinkApply(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.FormValue("token")
	if token == "" {
		return tenant.Errorf(tenant.CodeBadRequest, "the sign-in link is incomplete")
	}
	next := safeNext(c.FormValue("next"))
	if cur, ok := currentUser(c); ok {
		email, admin, err := p.store.LoginLinkEmail(ctx, token)
		if err != nil {
			return err
		}
		if cur.Email != email && subtle.ConstantTimeCompare([]byte(c.FormValue("switch_from")), []byte(cur.ID)) != 1 {
			return p.renderLinkPage(c, http.StatusConflict, token, email, admin, next)
		}
	}
	u, err := p.store.ConsumeLoginLink(ctx, token)
	if err != nil {
		return err
	}
	if slices.Contains(p.cfg.AdminEmails, u.Email) && !u.IsAdmin {
		if u, err = p.store.GrantAdmin(ctx, u.Email); err != nil {
			return err
		}
	}
	if err := p.signIn(c, u); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, landing(u, next))
}

func landing(u tenant.User, next string) string {
	if next != "" {
		return next
	}
	if u.IsAdmin && u.TenantID == "" {
		return "/admin"
	}
	return "/app"
}

func (p *Portal) authLogout(c echo.Context) error {
	if err := p.browser.Destroy(c.Request().Context()); err != nil {
		return err
	}
	if isAPI(c) {
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

var errNoTenant = &tenant.Error{Code: tenant.CodeNotFound, Msg: "no tenant"}
