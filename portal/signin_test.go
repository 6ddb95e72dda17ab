package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"wabot/app/apptest"
	"wabot/tenant/tenanttest"
)

func TestGoogleSignInCreatesASession(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	if r := b.get("/api/portal/tenant/current/status"); r.status != http.StatusUnauthorized || r.json(t)["error"] != "unauthorized" {
		t.Fatalf("before sign-in: %d %s", r.status, r.body)
	}
	before := b.get("/") // an anonymous page may not set a session
	if !strings.Contains(before.body, `data-testid="provider-google"`) || strings.Contains(before.body, "provider-oidc") {
		t.Fatal("the sign-in page should list Google only")
	}
	r := b.get("/auth/google?next=" + url.QueryEscape("/app?from=signin"))
	if r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app?from=signin") {
		t.Fatalf("after sign-in: %d at %s", r.status, r.url)
	}
	if r := b.get("/api/portal/tenant/current/status"); r.status != http.StatusNotFound || r.json(t)["error"] != "no tenant" {
		t.Fatalf("signed in without tenant: %d %s", r.status, r.body)
	}
	u, err := e.app.Store().UserByEmail(context.Background(), "ann@example.com")
	if err != nil || u.Name != "Ann" || u.IsAdmin {
		t.Fatalf("user %+v %v", u, err)
	}
	// Keyed on Google's subject: a changed email is still the same user.
	b2 := e.browser()
	e.google.signInAs(googleUser{Sub: "g-1001", Email: "ann.new@example.com", EmailVerified: true, Name: "Ann"})
	b2.get("/auth/google")
	if _, err := e.app.Store().UserByEmail(context.Background(), "ann.new@example.com"); err == nil {
		t.Fatal("a second user was created for the same Google account")
	}
}

func TestSessionTokenChangesAndLogoutKillsIt(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.postForm("/auth/logout", nil) // creates nothing, but must not fail
	// An anonymous session with data (a flash) exists before sign-in.
	b.get("/")
	b.get("/auth/google")
	c1 := b.cookie("wabot_session")
	if c1 == nil {
		t.Fatal("no session cookie after sign-in")
	}
	b.get("/auth/google")
	c2 := b.cookie("wabot_session")
	if c2.Value == c1.Value {
		t.Fatal("the session token did not change at sign-in")
	}
	old := *c2
	if r := b.postForm("/auth/logout", nil); r.status != http.StatusOK || !strings.Contains(r.body, "Sign in to wabot") {
		t.Fatalf("logout: %d", r.status)
	}
	// Replaying the old cookie is anonymous now.
	replay := e.browser()
	u, _ := url.Parse(e.url)
	replay.jar.SetCookies(u, []*http.Cookie{{Name: old.Name, Value: old.Value}})
	if r := replay.get("/api/portal/tenant/current/status"); r.status != http.StatusUnauthorized {
		t.Fatalf("old cookie after logout: %d", r.status)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, c := range []struct {
		base   string
		name   string
		secure bool
	}{{"http://wabot.test", "wabot_session", false}, {"https://wabot.test", "__Host-wabot_session", true}} {
		e := newEnv(t, map[string]string{"WABOT_BASE_URL": c.base})
		client := &http.Client{Transport: e.google.transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		token, _ := e.app.Store().CreateLoginLink(context.Background(), "c@example.com", false)
		resp, err := client.PostForm("http://wabot.test/auth/link", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var set string
		for _, h := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(h, c.name+"=") {
				set = h
			}
		}
		if set == "" {
			t.Fatalf("%s: no %s cookie in %v", c.base, c.name, resp.Header.Values("Set-Cookie"))
		}
		for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(set, attr) {
				t.Errorf("%s: cookie %q lacks %s", c.base, set, attr)
			}
		}
		if strings.Contains(set, "Secure") != c.secure || strings.Contains(set, "Domain=") {
			t.Errorf("%s: cookie %q: Secure should be %v, and no Domain", c.base, set, c.secure)
		}
	}
}

func TestTamperedOrReplayedStateIs400(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	// Stop at the provider: take the consent redirect by hand.
	noFollow := &http.Client{Jar: b.jar, Transport: e.google.transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := noFollow.Get(e.url + "/auth/google")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	consent, err := noFollow.Get(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	consent.Body.Close()
	callback, _ := url.Parse(consent.Header.Get("Location"))
	q := callback.Query()
	tampered := *callback
	tq := callback.Query()
	tq.Set("state", q.Get("state")+"x")
	tampered.RawQuery = tq.Encode()
	if r := b.get(tampered.String()); r.status != http.StatusBadRequest {
		t.Fatalf("tampered state: %d", r.status)
	}
	// The state cookie is spent even by a failed attempt; the genuine
	// callback afterwards, or a replay in another browser, fails too.
	if r := b.get(callback.String()); r.status != http.StatusBadRequest {
		t.Fatalf("replayed callback: %d", r.status)
	}
	if r := e.browser().get(callback.String()); r.status != http.StatusBadRequest {
		t.Fatalf("callback in another browser: %d", r.status)
	}
}

func TestUnverifiedEmailAndForeignDomainAre403(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_ALLOWED_DOMAINS": "example.com"})
	e.google.signInAs(googleUser{Sub: "g-2", Email: "eve@example.com", EmailVerified: false})
	if r := e.browser().get("/auth/google"); r.status != http.StatusForbidden {
		t.Fatalf("unverified email: %d", r.status)
	}
	e.google.signInAs(googleUser{Sub: "g-3", Email: "mallory@other.org", EmailVerified: true})
	if r := e.browser().get("/auth/google"); r.status != http.StatusForbidden {
		t.Fatalf("foreign domain: %d", r.status)
	}
	// The hd claim decides for Workspace accounts, not the address.
	e.google.signInAs(googleUser{Sub: "g-4", Email: "bob@example.com", EmailVerified: true, HD: "corp.other.org"})
	if r := e.browser().get("/auth/google"); r.status != http.StatusForbidden {
		t.Fatalf("foreign hd: %d", r.status)
	}
	e.google.signInAs(googleUser{Sub: "g-5", Email: "carol@example.com", EmailVerified: true})
	if r := e.browser().get("/auth/google"); r.status != http.StatusOK {
		t.Fatalf("allowed domain: %d", r.status)
	}
}

func TestAdminEmailsBecomeAdmins(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_ADMIN_EMAILS": "Boss@Example.com"})
	e.google.signInAs(googleUser{Sub: "g-9", Email: "boss@example.com", EmailVerified: true})
	b := e.browser()
	if r := b.get("/auth/google"); r.status != http.StatusOK || !strings.HasSuffix(r.url, "/admin") {
		t.Fatalf("admin lands on %s (%d)", r.url, r.status)
	}
}

func TestLoginLinkOnceAndNotExpired(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	token, _ := e.app.Store().CreateLoginLink(ctx, "x@example.com", false)
	apptest.SignIn(t, e.browser().c, e.url+"/auth/link?token="+token)
	if r := e.browser().get("/auth/link?token=" + token); r.status != http.StatusForbidden {
		t.Fatalf("second use, the page: %d", r.status)
	}
	if r := e.browser().postForm("/auth/link", url.Values{"token": {token}}); r.status != http.StatusForbidden {
		t.Fatalf("second use, the button: %d", r.status)
	}
	old, _ := e.app.Store().CreateLoginLink(ctx, "y@example.com", false)
	raw := tenanttest.Raw(t, e.app.Store().Path())
	raw.Exec(`UPDATE login_links SET expires_at = ? WHERE email = 'y@example.com'`, time.Now().Add(-time.Minute).UnixMilli())
	if r := e.browser().get("/auth/link?token=" + old); r.status != http.StatusForbidden {
		t.Fatalf("expired link: %d", r.status)
	}
	var hashed int
	raw.QueryRow(`SELECT COUNT(*) FROM login_links WHERE token_hash = ?`, token).Scan(&hashed)
	if hashed != 0 {
		t.Fatal("the token is stored in clear")
	}
}

func TestRateLimitIgnoresSpoofedForwardedFor(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	var last int
	for i := range 12 {
		last = b.do(http.MethodGet, "/auth/link?token=nope", nil, map[string]string{"X-Forwarded-For": "203.0.113." + string(rune('1'+i%9))}).status
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("12 attempts with changing X-Forwarded-For: last status %d, want 429", last)
	}
}

func TestTrustedProxyForwardedForCounts(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_TRUSTED_PROXIES": "127.0.0.1/32"})
	b := e.browser()
	for i := range 12 {
		r := b.do(http.MethodGet, "/auth/link?token=nope", nil, map[string]string{"X-Forwarded-For": "203.0.113." + string(rune('1'+i%9))})
		if r.status == http.StatusTooManyRequests {
			t.Fatalf("attempt %d limited although each came from another client behind the trusted proxy", i)
		}
	}
}

func TestCrossSitePostIs403ScriptsPass(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("cs@example.com", "Cross")
	r := b.do(http.MethodPost, "/api/portal/tenant/current/link", nil, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if r.status != http.StatusForbidden {
		t.Fatalf("cross-site API POST: %d", r.status)
	}
	r = b.do(http.MethodPost, "/app/session/reset", nil, map[string]string{"Origin": "https://evil.example"})
	if r.status != http.StatusForbidden {
		t.Fatalf("old-browser cross-origin form POST: %d", r.status)
	}
	r = b.do(http.MethodPost, "/app/link", nil, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.url})
	if r.status != http.StatusOK {
		t.Fatalf("same-origin POST: %d", r.status)
	}
}

func TestNextMustBeALocalPath(t *testing.T) {
	e := newEnv(t, nil)
	for _, next := range []string{"//evil.example", "/\\evil.example", "https://evil.example", "javascript:alert(1)", "/\tevil", "evil.example", "/%2F%2Fevil.example"} {
		b := e.browser()
		token, _ := e.app.Store().CreateLoginLink(context.Background(), "n@example.com", false)
		landed := apptest.SignIn(t, b.c, e.url+"/auth/link?token="+token+"&next="+url.QueryEscape(next))
		u, _ := url.Parse(landed)
		if u.Host != "wabot.test" {
			t.Errorf("next=%q left the site: %s", next, landed)
		}
	}
}

func TestOpenIDConnectWithPKCE(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	cfg := m.Config()
	e := newEnv(t, map[string]string{
		"WABOT_GOOGLE_CLIENT_ID": "", "WABOT_GOOGLE_CLIENT_SECRET": "",
		"WABOT_OIDC_ISSUER": cfg.Issuer, "WABOT_OIDC_CLIENT_ID": cfg.ClientID, "WABOT_OIDC_CLIENT_SECRET": cfg.ClientSecret,
	})
	b := e.browser()
	if r := b.get("/"); !strings.Contains(r.body, "provider-oidc") || strings.Contains(r.body, "provider-google") {
		t.Fatal("the sign-in page should list single sign-on only")
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-77", Email: "dana@example.com", EmailVerified: true, PreferredUsername: "dana"})
	if r := b.get("/auth/oidc"); r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app") {
		t.Fatalf("OIDC sign-in: %d at %s", r.status, r.url)
	}
	if _, err := e.app.Store().UserByEmail(context.Background(), "dana@example.com"); err != nil {
		t.Fatal(err)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-78", Email: "unverified@example.com", EmailVerified: false})
	if r := e.browser().get("/auth/oidc"); r.status != http.StatusForbidden {
		t.Fatalf("unverified OIDC email: %d", r.status)
	}
}
