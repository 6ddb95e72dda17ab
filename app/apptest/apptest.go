// Package apptest starts a whole wabot for an end-to-end test, as WTF
// Dial's MustRunMain does: listening on 127.0.0.1:0, its data and sessions
// folders in the test's temporary folder, every tenant's client talking to
// a fake WhatsApp, its log captured, and shut down, in order, when the test
// ends. Tests inside package app cannot import it (app would import
// itself); they keep their own smaller helpers.
package apptest

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"wabot/app"
	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
	"wabot/session/fakewa/rigtest"
)

// App is a running wabot and what a test reaches around it.
type App struct {
	*app.App
	// Config is the configuration it runs with.
	Config *app.Config
	// Fake is the fake WhatsApp its tenants connect to; nil with
	// Options.NoFake.
	Fake *fakewa.Server
	// Logs holds everything it logged, as JSON lines.
	Logs *rigtest.Buffer
}

// Options adjust the wabot a test starts. The zero value is ready to use.
type Options struct {
	// Env overrides variables of the environment wabot reads. The
	// harness sets WABOT_ADDR, WABOT_DATA_DIR, WABOT_SESSIONS_DIR,
	// WABOT_LOG_FORMAT (json) and WABOT_LOG_LEVEL (debug); nothing else
	// comes from the real environment.
	Env map[string]string
	// Config, when set, changes the loaded configuration before wabot is
	// built: for the fields no variable sets, such as ProviderHTTPClient.
	Config func(*app.Config)
	// NoFake leaves tenants connecting the way the build does (in the
	// fakewa build, the demo's own fake, which its /dev/fake routes drive)
	// instead of to a fake the harness starts.
	NoFake bool
	// Fake, when set, is the fake WhatsApp to connect to instead of a new
	// one: a wabot started again over the same folders (or database)
	// finds the devices its last run linked.
	Fake *fakewa.Server
	// LogOnFailure prints the captured log, after shutdown, when the test
	// failed.
	LogOnFailure bool
}

// Start builds and starts wabot, failing t if it cannot, and shuts it
// down when the test ends (before the fake it talks to is closed).
func Start(t testing.TB, opts Options) *App {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"WABOT_ADDR":         "127.0.0.1:0",
		"WABOT_DATA_DIR":     filepath.Join(dir, "data"),
		"WABOT_SESSIONS_DIR": filepath.Join(dir, "sessions"),
		"WABOT_LOG_FORMAT":   "json",
		"WABOT_LOG_LEVEL":    "debug",
	}
	maps.Copy(env, opts.Env)
	cfg, err := app.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if opts.Config != nil {
		opts.Config(cfg)
	}
	h := &App{Config: cfg, Logs: &rigtest.Buffer{}}
	var appOpts []app.Option
	if !opts.NoFake {
		h.Fake = opts.Fake
		if h.Fake == nil {
			h.Fake = fakewatest.NewServer(t, fakewa.Options{})
		}
		appOpts = append(appOpts, app.WithConnector(h.Fake))
	}
	a, err := app.New(context.Background(), cfg, app.NewLogger(h.Logs, cfg.LogFormat, cfg.LogLevel), appOpts...)
	if err != nil {
		t.Fatal(err)
	}
	h.App = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), app.ShutdownTimeout)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Logf("shutting wabot down: %v", err)
		}
		if opts.LogOnFailure && t.Failed() {
			t.Log(h.Logs.String())
		}
	})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return h
}

// LoginLink creates a one-time sign-in link for email on this wabot's
// listener, as `wabot login-link` does.
func (h *App) LoginLink(t testing.TB, email string, admin bool) string {
	t.Helper()
	token, err := h.Store().CreateLoginLink(context.Background(), email, admin)
	if err != nil {
		t.Fatal(err)
	}
	return h.URL() + "/auth/link?token=" + url.QueryEscape(token)
}

// SignIn follows a one-time sign-in link with c as a person does: it
// opens the link's page (which spends nothing) and presses its button,
// sending the page's form. c needs a cookie jar and follows redirects.
// It fails t unless the button signs in (redirects to the landing page),
// and returns the page it landed on.
func SignIn(t testing.TB, c *http.Client, link string) string {
	t.Helper()
	page, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	if page.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(page.Body)
		t.Fatalf("sign-in link page: %d %s", page.StatusCode, body)
	}
	doc, err := goquery.NewDocumentFromReader(page.Body)
	if err != nil {
		t.Fatal(err)
	}
	form := doc.Find(`[data-testid="login-link"] form`)
	action, _ := form.Attr("action")
	target, err := page.Request.URL.Parse(action)
	if err != nil || form.Length() != 1 {
		t.Fatalf("sign-in link page has no form (action %q)", action)
	}
	vals := url.Values{}
	form.Find(`input[type="hidden"]`).Each(func(_ int, in *goquery.Selection) {
		name, _ := in.Attr("name")
		value, _ := in.Attr("value")
		vals.Set(name, value)
	})
	resp, err := c.Post(target.String(), "application/x-www-form-urlencoded", strings.NewReader(vals.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// A sign-in redirects to the landing page, whatever that page answers;
	// a refusal answers the POST itself.
	if resp.Request.URL.Path == target.Path || resp.StatusCode >= 500 {
		t.Fatalf("signing in with the link: %d at %s\n%.1000s", resp.StatusCode, resp.Request.URL, body)
	}
	return resp.Request.URL.String()
}
