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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	opened := time.Now()
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
	if ev, ok := next(10 * time.Second); !ok || !strings.Contains(ev, "id: QR_PENDING") {
		t.Fatalf("first event %q", ev)
	}

	// The wabot under the env runs this tenant too; it writes this row
	// only when asked, and nobody asks it during the test.
	st := e.app.Store()
	write := func(state tenant.SessionState) {
		t.Helper()
		if err := st.SaveSession(context.Background(), tenant.Session{TenantID: id, State: state}); err != nil {
			t.Fatal(err)
		}
	}
	write(tenant.StateQRExpired)
	if ev, ok := next(time.Second); ok {
		t.Fatalf("a write without a signal was streamed at once, as by polling: %q", ev)
	}
	sessions.changed <- struct{}{}
	if ev, ok := next(2 * time.Second); !ok || !strings.Contains(ev, "id: QR_EXPIRED") {
		t.Fatalf("after the signal: %q", ev)
	}

	// Without a signal, the safety re-read still finds the change.
	write(tenant.StateQRPending)
	if ev, ok := next(10 * time.Second); !ok || !strings.Contains(ev, "id: QR_PENDING") {
		t.Fatalf("after the safety re-read: %q", ev)
	} else if since := time.Since(opened); since < 4*time.Second {
		t.Fatalf("the unsignalled write came after %s, sooner than the slow re-read", since)
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
