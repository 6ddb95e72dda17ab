package portal_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"wabot/app"
	"wabot/session/fakewa"
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
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts wabot; vars override the environment it reads.
func newEnv(t *testing.T, vars map[string]string) *env {
	t.Helper()
	dir := t.TempDir()
	google := newFakeGoogle(t)
	vals := map[string]string{
		"WABOT_ADDR":                 "127.0.0.1:0",
		"WABOT_BASE_URL":             "http://wabot.test",
		"WABOT_DATA_DIR":             filepath.Join(dir, "data"),
		"WABOT_SESSIONS_DIR":         filepath.Join(dir, "sessions"),
		"WABOT_GOOGLE_CLIENT_ID":     "google-client",
		"WABOT_GOOGLE_CLIENT_SECRET": "google-secret",
		"WABOT_LOG_FORMAT":           "json",
		"WABOT_LOG_LEVEL":            "debug",
	}
	for k, v := range vars {
		vals[k] = v
	}
	cfg, err := app.LoadConfig(func(k string) string { return vals[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.ProviderHTTPClient = google.client()
	wa, err := fakewa.NewServer(fakewa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), app.WithConnector(wa))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	// Browsers use the base URL's host; the transport sends it to the
	// listener, so callbacks, cookies and origins all agree.
	google.route(cfg.BaseURL.Host, a.Addr())
	e := &env{t: t, app: a, url: cfg.BaseURL.String(), cfg: cfg, wa: wa, google: google, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		wa.Close()
		if t.Failed() && os.Getenv("PORTAL_LOGS") != "" {
			t.Log(logs.String())
		}
	})
	return e
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
	r := b.get("/auth/link?token=" + url.QueryEscape(token))
	if r.status != http.StatusOK {
		b.t.Fatalf("login link: %d %s", r.status, r.body)
	}
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
