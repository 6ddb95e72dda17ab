package portal_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"wabot/app"
	"wabot/app/apptest"
	"wabot/session/fakewa"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
)

// env is a whole wabot on 127.0.0.1:0, its tenants' clients talking to a
// fake WhatsApp server, with a fake of Google's sign-in endpoints.
type env struct {
	t      *testing.T
	app    *app.App
	url    string
	cfg    *app.Config
	wa     *fakewa.Server
	google *fakeGoogle
	logs   *rigtest.Buffer
}

// newEnv starts wabot; vars override the environment it reads. With
// PORTAL_LOGS set, a failed test prints wabot's log.
func newEnv(t *testing.T, vars map[string]string) *env {
	t.Helper()
	google := newFakeGoogle(t)
	vals := map[string]string{
		"WABOT_BASE_URL":             "http://wabot.test",
		"WABOT_GOOGLE_CLIENT_ID":     "google-client",
		"WABOT_GOOGLE_CLIENT_SECRET": "google-secret",
	}
	maps.Copy(vals, vars)
	a := apptest.Start(t, apptest.Options{
		Env:          vals,
		Config:       func(cfg *app.Config) { cfg.ProviderHTTPClient = google.client() },
		LogOnFailure: os.Getenv("PORTAL_LOGS") != "",
	})
	// Browsers use the base URL's host; the transport sends it to the
	// listener, so callbacks, cookies and origins all agree.
	google.route(a.Config.BaseURL.Host, a.Addr())
	return &env{t: t, app: a.App, url: a.Config.BaseURL.String(), cfg: a.Config, wa: a.Fake, google: google, logs: a.Logs}
}

// browser is an HTTP client with a cookie jar that follows redirects,
// reaching Google's fake through the same routing as the server.
type browser struct {
	t   *testing.T
	e   *env
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: e.google.transport(), Timeout: 30 * time.Second}
	return &browser{t: e.t, e: e, c: c, jar: jar}
}

// resp is a finished response with its body read.
type resp struct {
	status int
	body   string
	header http.Header
	url    string
}

func (b *browser) do(method, path string, body io.Reader, hdr map[string]string) resp {
	b.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.e.url + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, body: string(raw), header: r.Header, url: r.Request.URL.String()}
}

func (b *browser) get(path string) resp { return b.do(http.MethodGet, path, nil, nil) }

func (b *browser) postForm(path string, form url.Values) resp {
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

func (b *browser) postJSON(method, path string, v any) resp {
	raw, _ := json.Marshal(v)
	return b.do(method, path, strings.NewReader(string(raw)), map[string]string{"Content-Type": "application/json"})
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("not JSON (%d): %s", r.status, r.body)
	}
	return m
}

// loginLink signs the browser in through a one-time link, as scripts do.
func (b *browser) loginLink(email string, admin bool) tenant.User {
	b.t.Helper()
	token, err := b.e.app.Store().CreateLoginLink(context.Background(), email, admin)
	if err != nil {
		b.t.Fatal(err)
	}
	apptest.SignIn(b.t, b.c, b.e.url+"/auth/link?token="+url.QueryEscape(token))
	u, err := b.e.app.Store().UserByEmail(context.Background(), email)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// tenantUser signs in a new user and creates their tenant (ACTIVE when
// the env approves automatically).
func (e *env) tenantUser(email, name string) (*browser, string) {
	e.t.Helper()
	b := e.browser()
	b.loginLink(email, false)
	r := b.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": name})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	return b, r.json(e.t)["id"].(string)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
