package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed to check the unit file: apt-get install systemd (.ci/run does)")
	}
	exe, _ := os.Executable()
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"systemd-unit", "--bin", exe}, envFrom(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	unit := out.String()
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "User=wabot", "StateDirectory=", "EnvironmentFile=-/etc/wabot/env",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "RestrictAddressFamilies=", "CapabilityBoundingSet=\n", "ExecStart=" + exe + " serve"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "wabot.service")
	os.WriteFile(path, []byte(unit), 0o644)
	cmd := exec.Command(analyze, "verify", path)
	res, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(res)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, res)
	}
}

func TestSDNotifyReadyWatchdogStopping(t *testing.T) {
	cfg := testConfig(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var msgs []string
	var mu sync.Mutex
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "200000", "WABOT_LOG_FORMAT": "json",
		"WABOT_ADDR": "127.0.0.1:0", "WABOT_DATA_DIR": cfg.DataDir, "WABOT_SESSIONS_DIR": cfg.SessionsDir}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"serve"}, envFrom(env), io.Discard, io.Discard) }()
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range msgs {
			if strings.HasPrefix(m, prefix) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(15 * time.Second)
	for count("WATCHDOG=1") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("messages so far: %q", msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(msgs[0], "READY=1") || !strings.Contains(msgs[0], "STATUS=0 of 0 tenants connected") {
		t.Fatalf("first message %q", msgs[0])
	}
	if last := msgs[len(msgs)-1]; last != "STOPPING=1" {
		t.Fatalf("last message %q", last)
	}
}

func TestNoNotifySocketNoMessages(t *testing.T) {
	n := newNotifier(envFrom(nil))
	if n.enabled() || n.notify("READY=1") != nil {
		t.Fatal("without NOTIFY_SOCKET nothing should be sent")
	}
}

// running is a started App with a fake WhatsApp and a linked tenant.
type running struct {
	a     *App
	cfg   *Config
	wa    *fakewa.Server
	phone *fakewa.Phone
	id    string
}

func startRunning(t *testing.T, env map[string]string) *running {
	t.Helper()
	cfg := testConfigWith(t, env)
	wa := fakewatest.NewServer(t, fakewa.Options{})
	a := startApp(t, cfg, io.Discard, WithConnector(wa))
	r := &running{a: a, cfg: cfg, wa: wa}
	ctx := context.Background()
	u, _ := a.store.EnsureUser(ctx, "ops@example.com")
	tn, err := a.store.CreateTenant(ctx, u.ID, "Ops Shop", true)
	if err != nil {
		t.Fatal(err)
	}
	r.id = tn.ID
	cfgBot := tenant.DefaultBotConfig()
	cfgBot.Rules = []tenant.Rule{{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"}}
	if _, err := a.bot.SaveConfig(ctx, tn.ID, cfgBot); err != nil {
		t.Fatal(err)
	}
	a.sessions.Add(tn.ID)
	r.phone = fakewatest.Link(t, wa, a.sessions, a.store, tn.ID, 30*time.Second)
	return r
}

func (r *running) waitState(t *testing.T, st tenant.LinkState) tenant.Link {
	t.Helper()
	return fakewatest.WaitSession(t, r.a.store, r.id, 30*time.Second, string(st), fakewatest.InState(st))
}

// scrape fetches url with the headers in hdr.
func scrape(t *testing.T, url string, hdr map[string]string) (int, string) {
	t.Helper()
	code, body, _ := request(t, url, hdr)
	return code, body
}

func TestMetricsAfterAFlow(t *testing.T) {
	r := startRunning(t, map[string]string{"WABOT_TRUSTED_PROXIES": "127.0.0.1/32"})
	ann := r.phone.NewContact("", "Ann")
	for _, text := range []string{"hi", "hi again", "bye"} {
		ann.Send(text)
	}
	for range 2 {
		if _, err := ann.Next(20 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for {
		var code int
		code, body = scrape(t, r.a.URL()+"/metrics", nil)
		if code != http.StatusOK {
			t.Fatalf("loopback scrape: %d", code)
		}
		if strings.Contains(body, `wabot_messages_total{direction="in",status="ignored"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the ignored message:\n%s", grepLines(body, "wabot_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, body = scrape(t, r.a.URL()+"/metrics", nil) // counts the scrapes before it
	for _, want := range []string{
		`wabot_tenants{status="ACTIVE"} 1`,
		`wabot_sessions{state="CONNECTED"} 1`,
		`wabot_messages_total{direction="in",status="received"} 3`,
		`wabot_messages_total{direction="in",status="replied"} 2`,
		`wabot_messages_total{direction="out",status="replied"} 2`,
		`wabot_reply_latency_seconds_count 2`,
		`wabot_reconnects_total 0`,
		`wabot_http_requests_total{method="GET",route="/metrics",status="200"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, r.id) {
		t.Error("a tenant id appears in a label")
	}
	// A client from elsewhere (behind the trusted proxy) needs the token,
	// and there is none: refused.
	if code, _ := scrape(t, r.a.URL()+"/metrics", map[string]string{"X-Forwarded-For": "203.0.113.9"}); code != http.StatusForbidden {
		t.Fatalf("remote client without a token configured: %d", code)
	}
}

func TestMetricsToken(t *testing.T) {
	a := startApp(t, func() *Config {
		c := testConfig(t)
		c.MetricsToken = "s3cret-token"
		return c
	}(), io.Discard)
	if code, _ := scrape(t, a.URL()+"/metrics", nil); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
	if code, _ := scrape(t, a.URL()+"/metrics", map[string]string{"Authorization": "Bearer wrong"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code, body := scrape(t, a.URL()+"/metrics", map[string]string{"Authorization": "Bearer s3cret-token"}); code != http.StatusOK || !strings.Contains(body, "wabot_tenants") {
		t.Fatalf("with the token: %d", code)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) || strings.HasPrefix(l, "# HELP "+prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAdminCommandsAgainstARunningInstance(t *testing.T) {
	r := startRunning(t, nil)
	env := envFrom(map[string]string{"WABOT_DATA_DIR": r.cfg.DataDir, "WABOT_SESSIONS_DIR": r.cfg.SessionsDir})
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := Run(context.Background(), args, env, &out, &errOut); err != nil {
			t.Fatalf("wabot %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	list := run("tenants")
	if !strings.Contains(list, r.id) || !strings.Contains(list, "Ops Shop") || !strings.Contains(list, "CONNECTED") || !strings.Contains(list, "+"+r.phone.Number()) {
		t.Fatalf("tenants:\n%s", list)
	}
	if out := run("tenant", "suspend", r.id); !strings.Contains(out, "done") {
		t.Fatalf("suspend: %s", out)
	}
	if w, _ := r.a.store.WorkerOf(context.Background(), r.id); w.Status != tenant.WorkerStopped {
		t.Fatalf("worker after suspend: %s", w.Status)
	}
	if out := run("tenant", "resume", r.id); !strings.Contains(out, "done") {
		t.Fatalf("resume: %s", out)
	}
	r.waitState(t, tenant.StateConnected)
	before, _ := r.a.store.WorkerOf(context.Background(), r.id)
	run("tenant", "restart", r.id)
	if w, _ := r.a.store.WorkerOf(context.Background(), r.id); w.Restarts != before.Restarts+1 {
		t.Fatalf("restarts %d -> %d", before.Restarts, w.Restarts)
	}
	run("tenant", "reset", r.id)
	r.waitState(t, tenant.StateQRReady)
	if out := run("admin", "grant", "newadmin@example.com"); !strings.Contains(out, "is an admin") {
		t.Fatalf("grant: %s", out)
	}
	if u, _ := r.a.store.UserByEmail(context.Background(), "newadmin@example.com"); !u.IsAdmin {
		t.Fatal("grant did not make an admin")
	}
	audit, _ := r.a.store.AuditLog(context.Background(), 10)
	if len(audit) != 5 || audit[0].Action != "grant-admin" || audit[4].Action != "suspend" || audit[4].ActorEmail != "command line" {
		t.Fatalf("audit %+v", audit)
	}
	var errOut bytes.Buffer
	if err := Run(context.Background(), []string{"tenant", "reset", "../../etc"}, env, io.Discard, &errOut); err == nil {
		t.Fatal("a path-like id was accepted")
	}
}

func TestBackupWhileWritingRestoresEveryCommittedRow(t *testing.T) {
	r := startRunning(t, nil)
	ctx := context.Background()
	// A writer commits rows the whole time the backup runs.
	var committed atomic.Int64
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := r.a.Store().Audit(ctx, tenant.User{ID: "w", Email: "writer"}, "write", "", fmt.Sprint(i))
			if err == nil {
				committed.Store(int64(i))
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	before := committed.Load()
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	var out bytes.Buffer
	env := envFrom(map[string]string{"WABOT_DATA_DIR": r.cfg.DataDir, "WABOT_SESSIONS_DIR": r.cfg.SessionsDir})
	if err := Run(ctx, []string{"backup", file}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-writerDone
	if !strings.Contains(out.String(), "1 tenant device stores") {
		t.Fatalf("backup: %s", out.String())
	}
	restoreDir := t.TempDir()
	renv := envFrom(map[string]string{"WABOT_DATA_DIR": filepath.Join(restoreDir, "data"), "WABOT_SESSIONS_DIR": filepath.Join(restoreDir, "sessions")})
	if err := Run(ctx, []string{"restore", file}, renv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(restoreDir, "data", "wabot.db"), filepath.Join(restoreDir, "sessions", r.id, "whatsmeow.db")} {
		db := tenanttest.Raw(t, path)
		var ok string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("%s: integrity %q %v", path, ok, err)
		}
		if strings.HasSuffix(path, "wabot.db") {
			var n int64
			db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'write' AND CAST(detail AS INTEGER) <= ?`, before).Scan(&n)
			if n != before+1 {
				t.Fatalf("rows committed before the backup: %d, restored: %d", before+1, n)
			}
		} else {
			var devices int
			db.QueryRow(`SELECT COUNT(*) FROM whatsmeow_device`).Scan(&devices)
			if devices != 1 {
				t.Fatalf("device store holds %d devices", devices)
			}
		}
	}
	// Restoring over an existing database is refused.
	if err := Run(ctx, []string{"restore", file}, renv, io.Discard, io.Discard); err == nil {
		t.Fatal("restore over an existing database succeeded")
	}
}

// TestTenantsListingEscapesNames: a name stored with a terminal escape,
// tabwriter's 0xff and a tab (written behind the store's back, as an
// older version or a hand edit could) is printed quoted and escaped, so
// nothing reaches the operator's terminal raw and the columns stay put.
func TestTenantsListingEscapesNames(t *testing.T) {
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "wabot.db")
	st := tenanttest.OpenAt(t, path)
	ctx := context.Background()
	u, _ := st.EnsureUser(ctx, "owner@example.com")
	tn, err := st.CreateTenant(ctx, u.ID, "Placeholder", true)
	if err != nil {
		t.Fatal(err)
	}
	evil := "Evil\x1b]0;pwned\a\x1b[2J\xff\tShop\u202e"
	if _, err := tenanttest.Raw(t, path).Exec(`UPDATE tenants SET name = ? WHERE id = ?`, evil, tn.ID); err != nil {
		t.Fatal(err)
	}
	env := envFrom(map[string]string{"WABOT_DATA_DIR": cfg.DataDir, "WABOT_SESSIONS_DIR": cfg.SessionsDir})
	var out bytes.Buffer
	if err := Run(ctx, []string{"tenants"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	list := out.String()
	for _, raw := range []string{"\x1b", "\a", "\xff", "\t", "\u202e"} {
		if strings.Contains(list, raw) {
			t.Fatalf("%q reached the output raw: %q", raw, list)
		}
	}
	want := `"Evil\x1b]0;pwned\a\x1b[2J\xff\tShop\u202e"`
	if !strings.Contains(list, want) {
		t.Fatalf("tenants output lacks the escaped name %s:\n%s", want, list)
	}
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], tn.ID+" ") || !strings.HasSuffix(lines[1], "owner@example.com") {
		t.Fatalf("columns broken:\n%s", list)
	}
}
