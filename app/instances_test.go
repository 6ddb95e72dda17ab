package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestInstancesCommandAndLeaseMetrics(t *testing.T) {
	r := startRunning(t, map[string]string{"WABOT_INSTANCE_ID": "ops-1"})
	env := envFrom(map[string]string{"WABOT_DATA_DIR": r.cfg.DataDir, "WABOT_SESSIONS_DIR": r.cfg.SessionsDir})
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"instances"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "ops-1 ") ||
		!strings.Contains(lines[1], " 1 ") || !strings.HasSuffix(lines[1], "running") {
		t.Fatalf("wabot instances, want ops-1 running 1 tenant:\n%s", out.String())
	}
	code, body := scrape(t, r.a.URL()+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("scrape: %d", code)
	}
	for _, want := range []string{
		"wabot_leases_held 1",
		`wabot_lease_moves_total{move="acquired"} 1`,
		`wabot_lease_moves_total{move="lost"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(body, "wabot_lease"))
		}
	}
}
