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
