package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/session/fakewa/rigtest"
)

// Package app's tests cannot import app/apptest (app would import
// itself): these helpers are its small counterpart.

// testConfig is the configuration of a wabot on 127.0.0.1:0 with its
// folders in the test's temporary folder.
func testConfig(t *testing.T) *Config { return testConfigWith(t, nil) }

// testConfigWith is testConfig with env overriding the environment.
func testConfigWith(t *testing.T, env map[string]string) *Config {
	t.Helper()
	dir := t.TempDir()
	vals := map[string]string{
		"WABOT_ADDR":         "127.0.0.1:0",
		"WABOT_DATA_DIR":     filepath.Join(dir, "data"),
		"WABOT_SESSIONS_DIR": filepath.Join(dir, "sessions"),
	}
	maps.Copy(vals, env)
	cfg, err := loadConfig(envFrom(vals), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startApp starts wabot with JSON logs to logs, shut down when the test
// ends.
func startApp(t *testing.T, cfg *Config, logs io.Writer, opts ...Option) *App {
	t.Helper()
	a, err := New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		a.Shutdown(ctx)
	})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

// get fetches url and reads the whole response.
func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	return request(t, url, nil)
}

func request(t *testing.T, url string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestHealthAndReadiness(t *testing.T) {
	a := startApp(t, testConfig(t), io.Discard)
	if code, _, _ := get(t, a.URL()+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _, _ := get(t, a.URL()+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	a.store.Close()
	if code, body, _ := get(t, a.URL()+"/readyz"); code != 503 {
		t.Fatalf("/readyz with the database closed: %d %s", code, body)
	}
	if code, _, _ := get(t, a.URL()+"/healthz"); code != 200 {
		t.Fatalf("/healthz should not depend on the database: %d", code)
	}
}

func TestFoldersArePrivate(t *testing.T) {
	cfg := testConfig(t)
	startApp(t, cfg, io.Discard)
	for _, d := range []string{cfg.DataDir, cfg.SessionsDir} {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v, want 0700", d, info.Mode().Perm())
		}
	}
}

func TestNotFoundIsJSONUnderAPIAndHTMLElsewhere(t *testing.T) {
	a := startApp(t, testConfig(t), io.Discard)
	code, body, h := get(t, a.URL()+"/api/x")
	var v map[string]string
	if code != 404 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &v) != nil || v["error"] == "" {
		t.Fatalf("/api/x: %d %q %s", code, h.Get("Content-Type"), body)
	}
	code, body, h = get(t, a.URL()+"/no/such/page")
	if code != 404 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "data-testid=\"error-page\"") {
		t.Fatalf("/no/such/page: %d %q %s", code, h.Get("Content-Type"), body)
	}
	for _, hdr := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Request-Id"} {
		if h.Get(hdr) == "" {
			t.Errorf("missing header %s", hdr)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP %q lacks frame-ancestors 'none'", h.Get("Content-Security-Policy"))
	}
}

func TestPanicIs500WithoutStackAndLogged(t *testing.T) {
	logs := &rigtest.Buffer{}
	a := startApp(t, testConfig(t), logs)
	a.echo.GET("/boom", func(c echo.Context) error { panic("kaboom secret detail") })
	a.echo.GET("/api/boom", func(c echo.Context) error { panic("kaboom secret detail") })
	for _, path := range []string{"/boom", "/api/boom"} {
		code, body, _ := get(t, a.URL()+path)
		if code != 500 {
			t.Fatalf("%s: status %d", path, code)
		}
		if strings.Contains(body, "kaboom") || strings.Contains(body, "goroutine") || strings.Contains(body, ".go:") {
			t.Fatalf("%s leaks the panic: %s", path, body)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "kaboom secret detail") || !strings.Contains(out, "app_test.go") {
		t.Fatalf("the log should hold the panic and its stack:\n%s", out)
	}
}

func TestRequestLogOmitsQueryString(t *testing.T) {
	logs := &rigtest.Buffer{}
	a := startApp(t, testConfig(t), logs)
	get(t, a.URL()+"/auth/link?token=supersecret")
	if strings.Contains(logs.String(), "supersecret") {
		t.Fatalf("query string logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"path":"/auth/link"`) {
		t.Fatalf("request not logged:\n%s", logs.String())
	}
}

func TestRunStopsCleanlyOnCancel(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr rigtest.Buffer
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", cfg.DataDir, "--sessions-dir", cfg.SessionsDir, "--log-format", "json"},
			envFrom(nil), io.Discard, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "wabot serving") {
		if time.Now().After(deadline) {
			t.Fatalf("not serving:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(ShutdownTimeout):
		t.Fatal("Run did not return within the shutdown deadline")
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"serve", "--no-such-flag"}, {"serve", "--addr", "nope"}} {
		err := Run(context.Background(), args, envFrom(nil), io.Discard, io.Discard)
		if _, ok := err.(*UsageError); !ok {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, envFrom(nil), &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "wabot ") {
		t.Errorf("version: %q %v", out.String(), err)
	}
}

func TestMigrateCommand(t *testing.T) {
	cfg := testConfig(t)
	if err := Run(context.Background(), []string{"migrate", "--data-dir", cfg.DataDir}, envFrom(nil), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "wabot.db")); err != nil {
		t.Fatal(err)
	}
}
