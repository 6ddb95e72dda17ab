package main

// The PostgreSQL half of the benchmark (issue 17): the same idle memory,
// restart and reply measurements as on SQLite, with WABOT_DATABASE_URL
// set, and the failover from a kill -9 of one of two instances to every
// tenant connected on the other.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
)

var (
	pgOn       = flag.Bool("postgres", true, "also measure wabot on PostgreSQL (-postgres=false skips it): WABOT_BENCH_POSTGRES (a superuser URL), else a throwaway server from .ci/postgres")
	pgTenants  = flag.Int("pg-tenants", 500, "tenants of the PostgreSQL memory, restart, load and failover runs")
	pgFailover = flag.String("pg-failover", "1s/5s,5s/15s", `WABOT_LEASE_RENEW/WABOT_LEASE_TTL pairs of the failover runs ("" skips them)`)
	pgReps     = flag.Int("pg-failover-reps", 3, "failover runs per pair; the report gives medians")
	pgScript   = flag.String("pg-script", ".ci/postgres", "the script that starts a throwaway PostgreSQL server")
	pgDurable  = flag.Bool("pg-durable", true, "restart the throwaway server with fsync and full_page_writes on (the test settings turn them off)")
)

// figures are what the side-by-side table compares of one backend.
type figures struct {
	n         int              // tenants of the restart and the load
	idle      map[int]int64    // tenants → wabot RSS over the empty process
	restart   time.Duration    // start to all n CONNECTED
	load      []map[string]any // closed loop, then steady rate
	failovers []string         // PostgreSQL only
}

// onSQLite is filled by the SQLite run for the comparison.
var onSQLite = figures{idle: map[int]int64{}}

// pgServer is the server the benchmark makes its databases on.
type pgServer struct {
	url  string // superuser URL
	dir  string // the throwaway server's folder; "" for WABOT_BENCH_POSTGRES
	made []string
}

// startPostgres uses WABOT_BENCH_POSTGRES or starts a throwaway server on
// a free port.
func startPostgres() (*pgServer, error) {
	if u := os.Getenv("WABOT_BENCH_POSTGRES"); u != "" {
		return &pgServer{url: u}, nil
	}
	b := make([]byte, 4)
	rand.Read(b)
	// Not under the benchmark's own folder: the postgres user must reach it.
	dir := filepath.Join(os.TempDir(), "wabot-bench-pg-"+hex.EncodeToString(b))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("bash", *pgScript, "start", dir)
	cmd.Env = append(os.Environ(), "WABOT_TEST_POSTGRES_PORT="+strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("starting PostgreSQL with %s: %w", *pgScript, err)
	}
	s := &pgServer{url: strings.TrimSpace(string(out)), dir: dir}
	if *pgDurable {
		if err := s.durable(port); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// durable restarts the throwaway server with a production server's crash
// safety: the WAL flushed to disk and whole pages logged (the script's
// test settings, given on its command line, turn both off). Commits stay
// asynchronous (synchronous_commit off: a crash of the machine may lose
// the last fraction of a second, never corrupt), as wabot's SQLite with
// synchronous=NORMAL in WAL mode does.
func (s *pgServer) durable(port int) error {
	data := filepath.Join(s.dir, "data")
	raw, err := os.ReadFile(filepath.Join(data, "postmaster.opts"))
	if err != nil {
		return err
	}
	// The file starts with the server binary: pg_ctl is beside it.
	bin := strings.Trim(strings.Fields(string(raw))[0], `"`)
	args := []string{filepath.Join(filepath.Dir(bin), "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "60", "restart", "-o",
		fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=400 -c synchronous_commit=off", port, s.dir)}
	if os.Getuid() == 0 { // as the script does: PostgreSQL refuses to run as root
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restarting PostgreSQL with fsync on: %w", err)
	}
	return nil
}

// settings describes the server's durability for the report.
func (s *pgServer) settings() string {
	admin, err := tenant.PostgresDB(s.url, 1)
	if err != nil {
		return "settings unknown"
	}
	defer admin.Close()
	var out []string
	for _, name := range []string{"fsync", "full_page_writes", "synchronous_commit", "shared_buffers"} {
		var v string
		if admin.QueryRow(`SELECT current_setting(?)`, name).Scan(&v) != nil {
			v = "?"
		}
		out = append(out, name+"="+v)
	}
	return strings.Join(out, ", ")
}

// stop drops the databases made (unless -keep) and stops a throwaway server.
func (s *pgServer) stop() {
	if *keep {
		fmt.Fprintf(os.Stderr, "keeping PostgreSQL at %s, databases %s", tenant.RedactURL(s.url), strings.Join(s.made, " "))
		if s.dir != "" {
			fmt.Fprintf(os.Stderr, " (stop it with %s stop %s)", *pgScript, s.dir)
		}
		fmt.Fprintln(os.Stderr)
		return
	}
	if s.dir != "" {
		exec.Command("bash", *pgScript, "stop", s.dir).Run()
		return
	}
	admin, err := tenant.PostgresDB(s.url, 1)
	if err != nil {
		return
	}
	defer admin.Close()
	for _, name := range s.made {
		// Server administration, not the app's SQL: no store method fits.
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	}
}

// newDatabase creates an empty database and returns its URL.
func (s *pgServer) newDatabase(label string) (string, error) {
	b := make([]byte, 4)
	rand.Read(b)
	name := "wabot_bench_" + label + "_" + hex.EncodeToString(b)
	admin, err := tenant.PostgresDB(s.url, 1)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	s.made = append(s.made, name)
	u, err := url.Parse(s.url)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// postmaster is the server's main process, when it runs on this machine:
// the parent of a backend the benchmark connects to.
func (s *pgServer) postmaster() int {
	if s.dir != "" {
		raw, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
		if err == nil {
			pid, _ := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
			return pid
		}
	}
	db, err := tenant.PostgresDB(s.url, 1)
	if err != nil {
		return 0
	}
	defer db.Close()
	var backend int
	if db.QueryRow(`SELECT pg_backend_pid()`).Scan(&backend) != nil {
		return 0
	}
	return ppidOf(backend)
}

func ppidOf(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// pgMemory is what the server's processes use: proportional set size
// (shared buffers counted once, not once per backend) of the postmaster
// and all its children, and the backends connected to one database.
type pgMemory struct {
	pss      int64
	procs    int
	backends int // connections to the database
}

func pgMemoryOf(postmaster int, database string) pgMemory {
	var m pgMemory
	if postmaster == 0 {
		return m
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || (pid != postmaster && ppidOf(pid) != postmaster) {
			continue
		}
		m.procs++
		m.pss += pssOf(pid)
		// A backend's title names its database: "postgres: user db host(port) idle".
		if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), " "+database+" ") {
			m.backends++
		}
	}
	return m
}

func pssOf(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func databaseName(dbURL string) string {
	u, _ := url.Parse(dbURL)
	return strings.TrimPrefix(u.Path, "/")
}

// startLinkedPG is startLinked on a new PostgreSQL database: seeds n
// tenants, starts wabot with WABOT_DATABASE_URL and links every tenant.
func startLinkedPG(pg *pgServer, root, name string, n int, fi fakewa.Info) (*idleResult, string, error) {
	dbURL, err := pg.newDatabase(name)
	if err != nil {
		return nil, "", err
	}
	ctx := context.Background()
	st, err := tenant.OpenURL(ctx, dbURL)
	if err != nil {
		return nil, "", err
	}
	if _, err := st.Migrate(ctx); err != nil {
		return nil, "", err
	}
	if err := seed(st, n); err != nil {
		return nil, "", err
	}
	// n pairings at once keep the app's pool busy enough on a loaded
	// machine that a lease round can come later than the default 15 s
	// allow, and the watchdog then stops every session mid-pairing (seen at
	// 500): the linking runs with 2-minute leases, as SQLite's are.
	r := pgInstance(root, name, dbURL, "a", []string{"WABOT_LEASE_RENEW=5s", "WABOT_LEASE_TTL=2m"})
	if err := r.start(); err != nil {
		return nil, "", err
	}
	// wabot's own writes go on beside the benchmark's reads.
	r.st = st
	t0 := time.Now()
	if n > 0 {
		if err := linkAll(st, fi.Control, n); err != nil {
			r.stop()
			return nil, "", err
		}
	}
	r.link = time.Since(t0)
	return r, dbURL, nil
}

// pgInstance is a wabot on the database with its own port and folders.
func pgInstance(root, name, dbURL, id string, extra []string) *idleResult {
	dir := filepath.Join(root, "pg-"+name+"-"+id)
	data, sessions := filepath.Join(dir, "data"), filepath.Join(dir, "sessions")
	os.MkdirAll(data, 0o700)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	return &idleResult{dir: dir, env: append(append(os.Environ(),
		"WABOT_ADDR="+addr, "WABOT_DATA_DIR="+data, "WABOT_SESSIONS_DIR="+sessions,
		"WABOT_DATABASE_URL="+dbURL, "WABOT_INSTANCE_ID="+id,
		"WABOT_LOG_LEVEL=warn", "WABOT_LOG_FORMAT=json", "WABOT_FAKEWA_REMOTE="+filepath.Join(root, "fakewa.json"),
		"WABOT_ADMIN_EMAILS=bench@example.com"), extra...)}
}

// postgresBench measures wabot on PostgreSQL and writes its section.
func postgresBench(root string, fi fakewa.Info, fake *exec.Cmd, rep *report) error {
	pg, err := startPostgres()
	if err != nil {
		return err
	}
	defer pg.stop()
	pm := pg.postmaster()
	n := *pgTenants

	rep.line("## PostgreSQL")
	rep.line("")
	where := "a throwaway server started by " + *pgScript
	if pg.dir == "" {
		where = "WABOT_BENCH_POSTGRES " + tenant.RedactURL(pg.url)
	}
	where += " (" + pg.settings() + "; wabot's SQLite runs WAL with synchronous=NORMAL)"
	rep.line("Same measurements with WABOT_DATABASE_URL on %s, a new database per wabot setup. wabot RSS is wabot's process alone; PostgreSQL's memory is given apart: the proportional set size (PSS, shared buffers counted once) summed over the server's processes, read from /proc/<pid>/smaps_rollup.", where)
	rep.line("")

	onPG := figures{n: n, idle: map[int]int64{}}
	base, baseURL, err := startLinkedPG(pg, root, "base", 0, fi)
	if err != nil {
		return err
	}
	time.Sleep(10 * time.Second)
	base.rss = rssOf(base.cmd.Process.Pid)
	basePG := pgMemoryOf(pm, databaseName(baseURL))
	base.stop()
	base.st.Close()

	r, dbURL, err := startLinkedPG(pg, root, "n"+strconv.Itoa(n), n, fi)
	if err != nil {
		return err
	}
	defer r.st.Close()
	defer func() { r.stop() }()
	time.Sleep(10 * time.Second)
	r.rss = rssOf(r.cmd.Process.Pid)
	dbName := databaseName(dbURL)
	idlePG := pgMemoryOf(pm, dbName)
	rep.line("| tenants connected | wabot RSS | RSS per tenant over the empty process | RSS / tenants | link time (2-minute leases) | PostgreSQL PSS (all its processes) | wabot's connections |")
	rep.line("|---:|---:|---:|---:|---:|---:|---:|")
	rep.line("| 0 | %.1f MB | – | – | – | %s | %d |", mb(base.rss), pssText(basePG), basePG.backends)
	onPG.idle[n] = r.rss - base.rss
	rep.line("| %d | %.1f MB | %.3f MB | %.3f MB | %.1f s | %s | %d |", n, mb(r.rss), mb(r.rss-base.rss)/float64(n), mb(r.rss)/float64(n), r.link.Seconds(),
		pssText(idlePG), idlePG.backends)
	rep.line("")

	// The restart and the load run with the default leases.
	r.stop()
	r.env = slices.DeleteFunc(r.env, func(e string) bool { return strings.HasPrefix(e, "WABOT_LEASE_") })
	t0 := time.Now()
	if err := r.start(); err != nil {
		return err
	}
	if err := waitConnected(r.st, n, t0); err != nil {
		return err
	}
	onPG.restart = time.Since(t0)
	rep.line("Start to all %d stored tenants CONNECTED: **%.2f s** (device stores in PostgreSQL).", n, onPG.restart.Seconds())
	rep.line("")

	numbers, err := tenantNumbers(r.st, *loadN)
	if err != nil {
		return err
	}
	rep.line("Throughput, as on SQLite: %d tenants × %d contacts, rules answer \"pong …\", rate limits off; every reply decrypted by the fake's contacts.", len(numbers), *contacts)
	rep.line("")
	rep.line("| run | sent | replies | lost | replies/s | median | p90 | p99 | max |")
	rep.line("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, l := range []struct {
		name string
		rate float64
	}{{"as fast as they can (closed loop)", 0}, {fmt.Sprintf("steady %.0f msg/s (open loop)", steadyRate()), steadyRate()}} {
		res, err := load(fi.Control, numbers, l.rate, "")
		if err != nil {
			return err
		}
		onPG.load = append(onPG.load, res)
		rep.line("| %s | %v | %v | %v | %.0f | %.1f ms | %.1f ms | %.1f ms | %.1f ms |", l.name, res["sent"], res["replies"], res["lost"],
			res["replies_per_s"], res["p50_ms"], res["p90_ms"], res["p99_ms"], res["max_ms"])
	}
	rep.line("")
	after := pgMemoryOf(pm, dbName)
	rep.line("After the load: wabot RSS %.1f MB; PostgreSQL PSS %s in %d processes, %d of them wabot's connections; fake RSS %.1f MB.",
		mb(rssOf(r.cmd.Process.Pid)), pssText(after), after.procs, after.backends, mb(rssOf(fake.Process.Pid)))
	rep.line("")
	r.stop()
	// The table closes the section, after the failover runs.
	defer func() { sideBySide(rep, onPG, idlePG, after) }()

	if strings.TrimSpace(*pgFailover) == "" {
		return nil
	}
	rep.line("Failover: two instances a and b on the database with the %d tenants; before each run both are started together and the benchmark records both heartbeats first, so the first claims split the tenants evenly (the split the shedding of 2 per round reaches after about n/4 rounds). "+
		"Once all are CONNECTED, kill -9 the instance holding more; the time runs from the kill until every tenant is CONNECTED again, the victim's with a connection newer than the kill, and the fake counts %d online devices. Medians of %d runs.", n, n, *pgReps)
	rep.line("")
	rep.line("| WABOT_LEASE_RENEW / TTL | tenants moved | first moved tenant CONNECTED | all CONNECTED on the survivor | runs (all) |")
	rep.line("|---|---:|---:|---:|---|")
	for _, pair := range strings.Split(*pgFailover, ",") {
		renew, ttl, ok := strings.Cut(strings.TrimSpace(pair), "/")
		if !ok {
			return fmt.Errorf("-pg-failover: %q is not RENEW/TTL", pair)
		}
		var runs []failoverRun
		for i := range *pgReps {
			fr, err := failover(root, dbURL, r.st, fi, n, renew, ttl, i)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "failover %s/%s run %d: %+v\n", renew, ttl, i, fr)
			runs = append(runs, fr)
		}
		med := func(f func(failoverRun) time.Duration) time.Duration {
			v := make([]time.Duration, len(runs))
			for i, r := range runs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		var all []string
		for _, r := range runs {
			all = append(all, fmt.Sprintf("%.1f s", r.all.Seconds()))
		}
		m := med(func(r failoverRun) time.Duration { return r.all })
		rep.line("| %s / %s | %d | %.1f s | **%.1f s** | %s |", renew, ttl, runs[0].moved, med(func(r failoverRun) time.Duration { return r.first }).Seconds(),
			m.Seconds(), strings.Join(all, ", "))
		onPG.failovers = append(onPG.failovers, fmt.Sprintf("%.1f s at %s/%s (%d tenants moved)", m.Seconds(), renew, ttl, runs[0].moved))
	}
	rep.line("")
	return nil
}

// sideBySide puts the PostgreSQL figures beside the SQLite run's.
func sideBySide(rep *report, pg figures, idle, loaded pgMemory) {
	rep.line("### SQLite and PostgreSQL side by side")
	rep.line("")
	rep.line("| | SQLite | PostgreSQL |")
	rep.line("|---|---:|---:|")
	n := pg.n
	sq := "not measured at this size"
	if v, ok := onSQLite.idle[n]; ok {
		sq = fmt.Sprintf("%.3f MB", mb(v)/float64(n))
	}
	rep.line("| wabot RSS per idle connected tenant at %d (over the empty process) | %s | %.3f MB |", n, sq, mb(pg.idle[n])/float64(n))
	rep.line("| database server memory (PSS), idle / after the load | inside wabot | %s / %s (%d / %d connections of wabot's) |", pssText(idle), pssText(loaded), idle.backends, loaded.backends)
	sq = "not measured"
	if onSQLite.restart > 0 {
		sq = fmt.Sprintf("%.2f s (%d tenants)", onSQLite.restart.Seconds(), onSQLite.n)
	}
	rep.line("| start to all stored tenants CONNECTED | %s | %.2f s (%d tenants) |", sq, pg.restart.Seconds(), n)
	for i, name := range []string{"replies/s, closed loop", fmt.Sprintf("replies/s at a steady %.0f msg/s (lost)", steadyRate())} {
		cell := func(f figures) string {
			if i >= len(f.load) {
				return "not measured"
			}
			if i == 0 {
				return fmt.Sprintf("%.0f (p50 %.0f ms)", f.load[i]["replies_per_s"], f.load[i]["p50_ms"])
			}
			return fmt.Sprintf("%.0f (%v lost)", f.load[i]["replies_per_s"], f.load[i]["lost"])
		}
		rep.line("| %s | %s | %s |", name, cell(onSQLite), cell(pg))
	}
	if len(pg.failovers) > 0 {
		rep.line("| failover, kill -9 to all CONNECTED on the survivor | one instance only | %s |", strings.Join(pg.failovers, "; "))
	}
	rep.line("")
}

func pssText(m pgMemory) string {
	if m.procs == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MB", mb(m.pss))
}

type failoverRun struct {
	moved      int
	first, all time.Duration
}

// failover starts instances a and b, waits until all n tenants are
// connected, kills the busier one with SIGKILL and times the move.
func failover(root, dbURL string, st *tenant.Store, fi fakewa.Info, n int, renew, ttl string, run int) (failoverRun, error) {
	var fr failoverRun
	ctx := context.Background()
	extra := []string{"WABOT_LEASE_RENEW=" + renew, "WABOT_LEASE_TTL=" + ttl}
	ids := []string{"a", "b"}
	inst := map[string]*idleResult{}
	now := time.Now()
	for _, id := range ids {
		if err := st.HeartbeatInstance(ctx, tenant.Instance{ID: id, Hostname: "bench", StartedAt: now}); err != nil {
			return fr, err
		}
	}
	t0 := time.Now()
	for _, id := range ids {
		inst[id] = pgInstance(root, fmt.Sprintf("failover%d", run), dbURL, id, extra)
		if err := inst[id].start(); err != nil {
			return fr, err
		}
	}
	defer func() {
		for _, r := range inst {
			r.stop()
		}
	}()
	if err := waitConnected(st, n, t0); err != nil {
		return fr, err
	}
	ttlD, err := time.ParseDuration(ttl)
	if err != nil {
		return fr, err
	}
	live, err := st.LiveInstances(ctx, ttlD)
	if err != nil {
		return fr, err
	}
	victim, held := "", -1
	for _, in := range live {
		if inst[in.ID] != nil && in.Tenants > held {
			victim, held = in.ID, in.Tenants
		}
	}
	survivor := "a"
	if victim == "a" {
		survivor = "b"
	}
	moving := map[string]bool{}
	all, err := st.Overviews(ctx, "")
	if err != nil {
		return fr, err
	}
	for _, o := range all {
		owner, _, err := st.LeaseOf(ctx, o.Tenant.ID)
		if err != nil {
			return fr, err
		}
		if owner == victim {
			moving[o.Tenant.ID] = true
		}
	}
	fr.moved = len(moving)

	kill := time.Now()
	inst[victim].cmd.Process.Signal(syscall.SIGKILL)
	inst[victim].cmd.Wait()
	since := kill.Truncate(time.Millisecond)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fr, fmt.Errorf("failover %s/%s: not every tenant connected again within 5 minutes", renew, ttl)
		}
		links, err := sessions(st)
		if err != nil {
			return fr, err
		}
		connected, moved := 0, 0
		var first time.Time
		for _, l := range links {
			if l.State != tenant.StateConnected {
				continue
			}
			if !moving[l.TenantID] {
				connected++
				continue
			}
			if !l.ConnectedAt.Before(since) {
				connected++
				moved++
				if first.IsZero() || l.ConnectedAt.Before(first) {
					first = l.ConnectedAt
				}
			}
		}
		if connected == n && moved == len(moving) && fakeOnline(fi.Control) == n {
			fr.all = time.Since(kill)
			fr.first = first.Sub(kill)
			break
		}
	}
	// Every tenant is the survivor's now.
	for id := range moving {
		owner, _, err := st.LeaseOf(ctx, id)
		if err != nil {
			return fr, err
		}
		if owner != survivor {
			return fr, fmt.Errorf("failover: tenant %s is held by %q, not the survivor %s", id, owner, survivor)
		}
	}
	return fr, nil
}

// fakeOnline is the standalone fake's count of online devices (GET /stats).
func fakeOnline(control string) int {
	resp, err := http.Get("http://" + control + "/stats")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var m map[string]int
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return -1
	}
	return m["online"]
}

// steadyRate is the lowest rate of -rates: the steady run PostgreSQL
// repeats beside SQLite's.
func steadyRate() float64 {
	first, _, _ := strings.Cut(*rates, ",")
	r, err := strconv.ParseFloat(strings.TrimSpace(first), 64)
	if err != nil || r <= 0 {
		return 500
	}
	return r
}
