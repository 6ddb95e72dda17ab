package portal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// oidcEnv is wabot with OpenID Connect sign-in against mockoidc, Google off.
func oidcEnv(t *testing.T, vars map[string]string) (*env, *mockoidc.MockOIDC) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	cfg := m.Config()
	all := map[string]string{
		"WABOT_GOOGLE_CLIENT_ID": "", "WABOT_GOOGLE_CLIENT_SECRET": "",
		"WABOT_OIDC_ISSUER": cfg.Issuer, "WABOT_OIDC_CLIENT_ID": cfg.ClientID, "WABOT_OIDC_CLIENT_SECRET": cfg.ClientSecret,
	}
	for k, v := range vars {
		all[k] = v
	}
	return newEnv(t, all), m
}

// claimsUser is a mockoidc user whose ID token carries extra claims.
type claimsUser struct {
	*mockoidc.MockUser
	extra map[string]any
}

func (u claimsUser) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c, err := u.MockUser.Claims(scope, base)
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(c)
	var m jwt.MapClaims
	json.Unmarshal(raw, &m)
	for k, v := range u.extra {
		m[k] = v
	}
	return m, nil
}

// Issue 13, finding 6: only Google's hd claim speaks for a domain; any
// other provider could assert any hd for an address of another domain.
func TestHDClaimCountsOnlyFromGoogle(t *testing.T) {
	e, m := oidcEnv(t, map[string]string{"WABOT_ALLOWED_DOMAINS": "example.com"})
	m.QueueUser(claimsUser{&mockoidc.MockUser{Subject: "kc-hd", Email: "mallory@other.org", EmailVerified: true}, map[string]any{"hd": "example.com"}})
	if r := e.browser().get("/auth/oidc"); r.status != http.StatusForbidden {
		t.Fatalf("OIDC hd=example.com for mallory@other.org: %d at %s", r.status, r.url)
	}
	if _, err := e.app.Store().UserByEmail(context.Background(), "mallory@other.org"); err == nil {
		t.Fatal("the user was created")
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-ok", Email: "olga@example.com", EmailVerified: true})
	if r := e.browser().get("/auth/oidc"); r.status != http.StatusOK {
		t.Fatalf("an allowed OIDC address: %d", r.status)
	}
}

// Issue 13, design note 16: a provider's account never joins the reserved
// admin@localhost of the first admin's link.
func TestProvidersCannotJoinTheLocalAdmin(t *testing.T) {
	e, m := oidcEnv(t, nil)
	if _, err := e.app.Store().GrantAdmin(context.Background(), "admin@localhost"); err != nil {
		t.Fatal(err)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-root", Email: "admin@localhost", EmailVerified: true})
	b := e.browser()
	if r := b.get("/auth/oidc"); r.status != http.StatusForbidden {
		t.Fatalf("OIDC sign-in as admin@localhost: %d at %s", r.status, r.url)
	}
	if r := b.get("/admin"); r.status == http.StatusOK && strings.Contains(r.body, "admin-tenants") {
		t.Fatal("an OIDC account became the local admin")
	}
}

// idTokenTamperer changes the id_token in mockoidc's token responses.
func idTokenTamperer(change func(header, payload map[string]any) (sig string)) func(*http.Response) {
	return func(resp *http.Response) {
		if resp.Request.URL.Path != mockoidc.TokenEndpoint || resp.StatusCode != http.StatusOK {
			return
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body map[string]any
		json.Unmarshal(raw, &body)
		parts := strings.Split(body["id_token"].(string), ".")
		var header, payload map[string]any
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		p, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(h, &header)
		json.Unmarshal(p, &payload)
		sig := parts[2]
		if s := change(header, payload); s != "keep" {
			sig = s
		}
		h, _ = json.Marshal(header)
		p, _ = json.Marshal(payload)
		body["id_token"] = base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
		raw, _ = json.Marshal(body)
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		resp.ContentLength = int64(len(raw))
		resp.Header.Del("Content-Length")
	}
}

// Issue 13, finding 13: ID tokens are verified against the issuer's keys
// and must carry this attempt's nonce.
func TestOIDCIDTokenIsVerified(t *testing.T) {
	e, m := oidcEnv(t, nil)
	unverified := func(sub string) *mockoidc.MockUser {
		return &mockoidc.MockUser{Subject: sub, Email: sub + "@example.com", EmailVerified: false}
	}
	forged := []struct {
		name   string
		change func(header, payload map[string]any) string
	}{
		{"claims changed, signature kept", func(_, p map[string]any) string { p["email_verified"] = true; return "keep" }},
		{"unsigned (alg none)", func(h, p map[string]any) string { h["alg"] = "none"; p["email_verified"] = true; return "" }},
	}
	for i, f := range forged {
		sub := "forged" + string(rune('a'+i))
		m.QueueUser(unverified(sub))
		tamper := idTokenTamperer(f.change)
		e.google.tamper.Store(&tamper)
		r := e.browser().get("/auth/oidc")
		e.google.tamper.Store(nil)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d at %s", f.name, r.status, r.url)
		}
		if _, err := e.app.Store().UserByEmail(context.Background(), sub+"@example.com"); err == nil {
			t.Errorf("%s: the user was created", f.name)
		}
	}

	// A nonce other than the one this browser's attempt sent.
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-nonce", Email: "nonce@example.com", EmailVerified: true})
	b := e.browser()
	noFollow := &http.Client{Jar: b.jar, Transport: e.google.transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	begin, err := noFollow.Get(e.url + "/auth/oidc")
	if err != nil {
		t.Fatal(err)
	}
	begin.Body.Close()
	authURL, _ := url.Parse(begin.Header.Get("Location"))
	q := authURL.Query()
	if q.Get("nonce") == "" {
		t.Error("the authorization request carries no nonce")
	}
	q.Set("nonce", "attacker-chosen")
	authURL.RawQuery = q.Encode()
	if r := b.get(authURL.String()); r.status != http.StatusBadRequest {
		t.Errorf("wrong nonce: %d at %s", r.status, r.url)
	}
	if _, err := e.app.Store().UserByEmail(context.Background(), "nonce@example.com"); err == nil {
		t.Error("wrong nonce: the user was created")
	}

	// The genuine flow still signs in.
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-good", Email: "good@example.com", EmailVerified: true})
	if r := e.browser().get("/auth/oidc"); r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app") {
		t.Fatalf("genuine OIDC sign-in: %d at %s", r.status, r.url)
	}
}
