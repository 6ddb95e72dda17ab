// Package rigtest holds the few helpers every wabot test rig needs,
// whatever it starts: waiting for a condition, a log sink to read while the
// code under test writes it, and a check that no WhatsApp client goroutine
// outlives its test. It imports no wabot package, so the tests inside any
// package (fakewa's and app's own included) can use it; fakewatest and
// apptest build on it.
package rigtest

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing t after timeout: work happens
// on other goroutines (supervisors, whatsmeow, the fake), and a test sees
// its effects only by looking again.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Buffer is a log sink that tests read while a server writes it from
// other goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it may run alongside String.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger discards everything unless the environment variable env is set;
// then it writes debug-level text to stderr, for the developer chasing one
// failing test.
func Logger(env string) *slog.Logger {
	if os.Getenv(env) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Goroutines is a snapshot of the WhatsApp client goroutines (whatsmeow
// clients and their sockets, wabot's supervisors) running at one moment,
// each stack by its header line.
type Goroutines map[string]string

// ClientGoroutines takes the snapshot a test compares with at its end:
// goroutines of earlier tests are not its concern (whatsmeow can strand a
// frame reader when a frame arrives during its own close handshake), so
// only new ones count.
func ClientGoroutines() Goroutines {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := Goroutines{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "go.mau.fi/whatsmeow.(*Client)") || strings.Contains(g, "whatsmeow/socket.") || strings.Contains(g, "wabot/session.(*supervisor)") {
			id, _, _ := strings.Cut(g, " [")
			out[id] = g
		}
	}
	return out
}

// WaitNoneNew waits up to timeout for every client goroutine started
// since the snapshot to end, and fails t with the stacks of those left.
func (before Goroutines) WaitNoneNew(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for id, g := range ClientGoroutines() {
			if _, old := before[id]; !old {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines left after %s:\n%s", len(left), timeout, strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
