package app

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
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

// tarEntry is one entry of a hand-made archive: body, or size bytes that
// start like an SQLite database and go on as zeros when body is nil.
type tarEntry struct {
	name string
	typ  byte
	body []byte
	size int64
	link string
}

func writeArchive(t *testing.T, entries []tarEntry) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if e.body == nil && typ == tar.TypeReg {
			size = e.size
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: typ, Size: size, Linkname: e.link, Mode: 0o600, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if e.body != nil {
			tw.Write(e.body)
		} else if size > 0 {
			tw.Write([]byte("SQLite format 3\x00"))
			io.CopyN(tw, zeroReader{}, size-16)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return file
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// sqliteFile returns a database file's bytes: a migrated app database
// holding one tenant (schema set to a version from the future when
// future), or a small device store.
func sqliteFile(t *testing.T, app, future bool) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	if app {
		st := tenanttest.OpenAt(t, src)
		u, _ := st.EnsureUser(context.Background(), "restored@example.com")
		if _, err := st.CreateTenant(context.Background(), u.ID, "Restored Shop", true); err != nil {
			t.Fatal(err)
		}
	}
	raw := tenanttest.Raw(t, src)
	if !app {
		raw.Exec(`CREATE TABLE whatsmeow_device (jid TEXT)`)
	}
	if future {
		raw.Exec(`PRAGMA user_version = 9999`)
	}
	dst := filepath.Join(dir, "copy.db")
	if err := vacuumInto(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot is every folder and file under root with its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = string(b)
		return nil
	})
	return out
}

// TestRestoreRefusesBadArchives: each archive that is not a plain wabot
// backup is refused with a sentence saying why, and the folders it was
// to restore into (which already hold other files) are left exactly as
// they were: nothing half-written, no staging folders left behind.
func TestRestoreRefusesBadArchives(t *testing.T) {
	manifest := tarEntry{name: "wabot-backup.txt", body: []byte("wabot backup\nversion: test\n")}
	appDB := sqliteFile(t, true, false)
	store := sqliteFile(t, false, false)
	existing, fresh, fresh2 := tenant.NewID("t"), tenant.NewID("t"), tenant.NewID("t")
	cases := []struct {
		name    string
		env     map[string]string
		entries []tarEntry
		want    string
	}{
		{"symbolic link", nil, []tarEntry{manifest, {name: "data/wabot.db", typ: tar.TypeSymlink, link: "/etc/passwd"}}, "symbolic link"},
		{"hard link", nil, []tarEntry{manifest, {name: "sessions/" + fresh + "/whatsmeow.db", body: store},
			{name: "data/wabot.db", typ: tar.TypeLink, link: "sessions/" + fresh + "/whatsmeow.db"}}, "hard link"},
		{"device", nil, []tarEntry{manifest, {name: "data/wabot.db", typ: tar.TypeChar}}, "device"},
		{"named pipe", nil, []tarEntry{manifest, {name: "data/wabot.db", typ: tar.TypeFifo}}, "named pipe"},
		{"manifest only", nil, []tarEntry{manifest}, "holds no app database"},
		{"no manifest", nil, []tarEntry{{name: "data/wabot.db", body: appDB}}, "not a wabot backup"},
		{"file over the cap", map[string]string{"WABOT_RESTORE_MAX_FILE": "1M"},
			[]tarEntry{manifest, {name: "data/wabot.db", size: 2 << 20}}, "more than the 1M a file may"},
		{"total over the cap", map[string]string{"WABOT_RESTORE_MAX_FILE": "1M", "WABOT_RESTORE_MAX_TOTAL": "1M"},
			[]tarEntry{manifest, {name: "sessions/" + fresh + "/whatsmeow.db", size: 600 << 10},
				{name: "sessions/" + fresh2 + "/whatsmeow.db", size: 600 << 10}, {name: "data/wabot.db", body: appDB}}, "more than 1M"},
		{"parent path", nil, []tarEntry{manifest, {name: "../evil/whatsmeow.db", body: store}, {name: "data/wabot.db", body: appDB}}, "leads outside"},
		{"parent inside path", nil, []tarEntry{manifest, {name: "data/wabot.db", body: appDB}, {name: "sessions/../../evil.db", body: store}}, "leads outside"},
		{"absolute path", nil, []tarEntry{manifest, {name: "data/wabot.db", body: appDB}, {name: "/tmp/evil.db", body: store}}, "leads outside"},
		{"unknown file", nil, []tarEntry{manifest, {name: "data/wabot.db", body: appDB}, {name: "data/.bashrc", body: []byte("x")}}, "no such file"},
		{"twice", nil, []tarEntry{manifest, {name: "data/wabot.db", body: appDB}, {name: "data/wabot.db", body: appDB}}, "appears twice"},
		{"not a database", nil, []tarEntry{manifest, {name: "sessions/" + fresh + "/whatsmeow.db", body: store},
			{name: "data/wabot.db", body: []byte("not a database")}}, "not an SQLite database"},
		{"database from the future", nil, []tarEntry{manifest, {name: "sessions/" + fresh + "/whatsmeow.db", body: store},
			{name: "data/wabot.db", body: sqliteFile(t, true, true)}}, "newer than this binary"},
		{"device store already there", nil, []tarEntry{manifest, {name: "sessions/" + existing + "/whatsmeow.db", body: store},
			{name: "data/wabot.db", body: appDB}}, "exists; restore into empty folders"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			data, sessions := filepath.Join(root, "data"), filepath.Join(root, "sessions")
			os.MkdirAll(filepath.Join(sessions, existing), 0o700)
			os.MkdirAll(data, 0o700)
			os.WriteFile(filepath.Join(data, "secret"), []byte("keep"), 0o600)
			os.WriteFile(filepath.Join(sessions, existing, "whatsmeow.db"), []byte("keep this store"), 0o600)
			before := snapshot(t, root)
			vars := map[string]string{"WABOT_DATA_DIR": data, "WABOT_SESSIONS_DIR": sessions}
			maps.Copy(vars, c.env)
			file := writeArchive(t, c.entries)
			err := Run(context.Background(), []string{"restore", file}, envFrom(vars), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore: %v, want an error saying %q", err, c.want)
			}
			if after := snapshot(t, root); !maps.Equal(before, after) {
				t.Fatalf("a refused restore changed the folders:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestRestoreRoundTrip: a backup made by wabot backup restores into
// folders that hold other files already, and the result opens.
func TestRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	srcData, srcSessions := filepath.Join(src, "data"), filepath.Join(src, "sessions")
	os.MkdirAll(srcData, 0o700)
	os.WriteFile(filepath.Join(srcData, "wabot.db"), sqliteFile(t, true, false), 0o600)
	st := tenanttest.OpenAt(t, filepath.Join(srcData, "wabot.db"))
	list, err := st.Tenants(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("source tenants %v %v", list, err)
	}
	id := list[0].ID
	os.MkdirAll(filepath.Join(srcSessions, id), 0o700)
	os.WriteFile(filepath.Join(srcSessions, id, "whatsmeow.db"), sqliteFile(t, false, false), 0o600)
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	if err := Run(ctx, []string{"backup", file}, envFrom(map[string]string{"WABOT_DATA_DIR": srcData, "WABOT_SESSIONS_DIR": srcSessions}), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}

	dst := t.TempDir()
	data, sessions := filepath.Join(dst, "data"), filepath.Join(dst, "sessions")
	other := tenant.NewID("t")
	os.MkdirAll(filepath.Join(sessions, other), 0o700)
	os.WriteFile(filepath.Join(sessions, other, "whatsmeow.db"), []byte("other"), 0o600)
	var out bytes.Buffer
	env := envFrom(map[string]string{"WABOT_DATA_DIR": data, "WABOT_SESSIONS_DIR": sessions})
	if err := Run(ctx, []string{"restore", file}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "restored 2 files") {
		t.Fatalf("restore: %s", out.String())
	}
	got := snapshot(t, dst)
	for _, want := range []string{"data/", "data/wabot.db", "sessions/" + id + "/whatsmeow.db", "sessions/" + other + "/whatsmeow.db"} {
		if _, ok := got[want]; !ok {
			t.Errorf("after restore %s is missing", want)
		}
	}
	for name := range got {
		if strings.Contains(name, ".wabot-restore-") {
			t.Errorf("a staging folder was left: %s", name)
		}
	}
	restored := tenanttest.OpenAt(t, filepath.Join(data, "wabot.db"))
	if tn, err := restored.TenantByID(ctx, id); err != nil || tn.Name != "Restored Shop" {
		t.Fatalf("restored tenant %+v %v", tn, err)
	}
	if info, err := os.Stat(data); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("data folder mode %v %v", info.Mode(), err)
	}
}
