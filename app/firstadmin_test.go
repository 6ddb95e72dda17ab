package app

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"wabot/session/fakewa/rigtest"
)

// Issue 13, design note 16: a served wabot without an admin never writes
// a sign-in link into a log that others may read (the journal); it says
// how to get one. Only on a terminal does it print the link.
func TestFirstAdminLinkOnlyOnATerminal(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr rigtest.Buffer
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", cfg.DataDir, "--sessions-dir", cfg.SessionsDir, "--log-format", "json"},
			envFrom(nil), io.Discard, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "no admin yet") {
		if time.Now().After(deadline) {
			t.Fatalf("no first-admin hint:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := stderr.String()
	if strings.Contains(out, "/auth/link") || strings.Contains(out, "token=") {
		t.Fatalf("a sign-in link went to a non-terminal log:\n%s", out)
	}
	if !strings.Contains(out, "wabot login-link EMAIL --admin") {
		t.Fatalf("the hint does not say how to get a link:\n%s", out)
	}

	// Run by hand on a terminal, the link is printed (and works once).
	logs := &rigtest.Buffer{}
	a := startApp(t, testConfigWith(t, map[string]string{"WABOT_DATA_DIR": cfg.DataDir, "WABOT_SESSIONS_DIR": cfg.SessionsDir}), logs)
	if err := a.printFirstAdminLink(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "/auth/link?token=") {
		t.Fatalf("no link on a terminal:\n%s", logs.String())
	}
}
