package portal_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/portal"
	"wabot/tenant"
)

// signalledSessions is a session manager whose change signals the test
// sends itself; the other methods are not called.
type signalledSessions struct {
	portal.Sessions
	changed      chan struct{}
	unsubscribed atomic.Bool
}

func (s *signalledSessions) Subscribe(string) (<-chan struct{}, func()) {
	return s.changed, func() { s.unsubscribed.Store(true) }
}

// TestLinkStreamRereadsOnSignal: the live link panel reads the session
// row when the session manager signals a write, not by polling, with a
// slow re-read as a safety net; it unsubscribes when the page goes.
func TestLinkStreamRereadsOnSignal(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("stream@example.com", "Stream Shop")
	// A second portal over the same database and sign-in sessions, whose
	// session manager is the test.
	sessions := &signalledSessions{changed: make(chan struct{}, 1)}
	p := portal.New(portal.Config{BaseURL: e.cfg.BaseURL}, slog.New(slog.NewTextHandler(io.Discard, nil)), e.app.Store(), sessions, nil)
	defer p.Close()
	ec := echo.New()
	p.Routes(ec)
	srv := httptest.NewServer(p.Handler(ec))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/app/link/events", nil)
	req.AddCookie(b.cookie("wabot_session"))
	// The stream's slow re-read comes 5 s after this at the earliest.
	opened := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev strings.Builder
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ":") {
				continue // a keepalive comment
			}
			if sc.Text() == "" && ev.Len() > 0 {
				events <- ev.String()
				ev.Reset()
				continue
			}
			ev.WriteString(sc.Text() + "\n")
		}
		close(events)
	}()
	next := func(within time.Duration) (string, bool) {
		select {
		case ev := <-events:
			return ev, true
		case <-time.After(within):
			return "", false
		}
	}
	// nextOf skips events until one of the state comes.
	nextOf := func(state tenant.LinkState, within time.Duration) bool {
		deadline := time.After(within)
		for {
			select {
			case ev := <-events:
				if strings.Contains(ev, "id: "+string(state)+"|") {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !nextOf(tenant.StateQRPending, 10*time.Second) {
		t.Fatal("no first event")
	}

	// The wabot under the env runs this tenant too; it writes this row
	// only when asked, and nobody asks it during the test.
	st := e.app.Store()
	write := func(state tenant.LinkState) {
		t.Helper()
		if err := st.SaveLink(context.Background(), tenant.Link{TenantID: id, State: state}); err != nil {
			t.Fatal(err)
		}
	}
	write(tenant.StateQRExpired)
	if ev, ok := next(time.Second); ok && time.Since(opened) < 5*time.Second {
		t.Fatalf("a write without a signal was streamed at once, as by polling: %q", ev)
	}
	write(tenant.StateError)
	sessions.changed <- struct{}{}
	if !nextOf(tenant.StateError, 3*time.Second) {
		t.Fatal("a signalled write was not streamed")
	}

	// Without a signal, the safety re-read still finds a change.
	write(tenant.StateQRPending)
	if !nextOf(tenant.StateQRPending, 12*time.Second) {
		t.Fatal("the safety re-read did not find an unsignalled write")
	}
	if since := time.Since(opened); since < 5*time.Second {
		t.Fatalf("an unsignalled write was streamed %s after the page opened, sooner than the slow re-read", since)
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for !sessions.unsubscribed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not unsubscribe when the page went")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamRig is a second portal over the env's database and sign-in
// sessions, with the stream limits a test sets.
type streamRig struct {
	url string
}

func newStreamRig(t *testing.T, e *env, cfg portal.Config) *streamRig {
	t.Helper()
	cfg.BaseURL = e.cfg.BaseURL
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := portal.New(cfg, log, e.app.Store(), &signalledSessions{changed: make(chan struct{})}, nil)
	t.Cleanup(p.Close)
	ec := echo.New()
	ec.HTTPErrorHandler = portal.ErrorHandler(log)
	p.Routes(ec)
	srv := httptest.NewServer(p.Handler(ec))
	t.Cleanup(srv.Close)
	return &streamRig{url: srv.URL}
}

// openStream opens the link page's stream with the browser's cookie. The
// returned channel is closed when the server ends the stream.
func (r *streamRig) openStream(t *testing.T, b *browser) (status int, ended <-chan struct{}) {
	t.Helper()
	return r.openStreamAt(t, b, "/app/link/events")
}

// openStreamAt opens the live stream at path, as openStream does.
func (r *streamRig) openStreamAt(t *testing.T, b *browser, path string) (status int, ended <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+path, nil)
	req.AddCookie(b.cookie("wabot_session"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, resp.Body)
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return resp.StatusCode, done
}

func endsWithin(ended <-chan struct{}, d time.Duration) bool {
	select {
	case <-ended:
		return true
	case <-time.After(d):
		return false
	}
}

// TestLinkStreamEndsAtSignOut: a stream opened before signing out stops
// delivering soon after, instead of streaming fresh QR codes forever.
func TestLinkStreamEndsAtSignOut(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("signout-stream@example.com", "Signout Shop")
	rig := newStreamRig(t, e, portal.Config{StreamRecheck: 200 * time.Millisecond})
	status, ended := rig.openStream(t, b)
	if status != http.StatusOK {
		t.Fatalf("stream: %d", status)
	}
	if endsWithin(ended, time.Second) {
		t.Fatal("the stream ended while still signed in")
	}
	if r := b.do(http.MethodPost, "/auth/logout", nil, nil); r.status != http.StatusOK {
		t.Fatalf("logout: %d", r.status)
	}
	if !endsWithin(ended, 10*time.Second) {
		t.Fatal("the stream still runs after signing out")
	}
}

// TestLinkStreamsPerUser: a user holds a few streams at once; the next is
// refused with 429 until one closes.
func TestLinkStreamsPerUser(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("many-streams@example.com", "Many Shop")
	other, _ := e.tenantUser("other-streams@example.com", "Other Shop")
	rig := newStreamRig(t, e, portal.Config{})
	var firstCancel func()
	for i := range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		if i == 0 {
			firstCancel = cancel
		} else {
			t.Cleanup(cancel)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rig.url+"/app/link/events", nil)
		req.AddCookie(b.cookie("wabot_session"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, resp.StatusCode)
		}
	}
	// Bounded: a stream let through would never end by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rig.url+"/app/link/events", nil)
	req.AddCookie(b.cookie("wabot_session"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(strings.ToLower(string(body)), "too many live pages") {
		t.Fatalf("5th stream: %d %s, want 429 saying too many live pages", resp.StatusCode, body)
	}
	// Another user is not counted against this one.
	if status, _ := rig.openStream(t, other); status != http.StatusOK {
		t.Fatalf("another user's stream: %d", status)
	}
	// Closing one frees its place.
	firstCancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := rig.openStream(t, b)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stream closed by the page did not free its place: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLinkStreamLifetime: a stream ends at its lifetime even while the
// session is valid; the page's EventSource reconnects.
func TestLinkStreamLifetime(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("lifetime-stream@example.com", "Lifetime Shop")
	rig := newStreamRig(t, e, portal.Config{StreamLifetime: time.Second})
	status, ended := rig.openStream(t, b)
	if status != http.StatusOK {
		t.Fatalf("stream: %d", status)
	}
	if !endsWithin(ended, 15*time.Second) {
		t.Fatal("the stream outlived its lifetime")
	}
	if status, _ := rig.openStream(t, b); status != http.StatusOK {
		t.Fatalf("reconnect after the lifetime: %d", status)
	}
}
