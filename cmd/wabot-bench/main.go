// Command wabot-bench measures wabot against a fake WhatsApp running in
// its own process: resident memory per connected idle tenant, the time
// from start until every stored tenant is connected again, and replies
// per second with their latency, and API sends per second with their
// send-to-delivered latency. It writes a Markdown report.
//
//	go tool task bench
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
)

var (
	wabotBin  = flag.String("wabot", "bin/wabot-demo", "wabot built with -tags fakewa")
	fakewaBin = flag.String("fakewa", "bin/fakewa", "the standalone fake server")
	sizes     = flag.String("tenants", "100,1000", "tenant counts to measure memory at (the largest also takes the restart and the load)")
	loadN     = flag.Int("load-tenants", 50, "tenants taking part in the throughput run")
	contacts  = flag.Int("contacts", 10, "contacts per tenant in the throughput run")
	seconds   = flag.Float64("seconds", 10, "length of each throughput run")
	rates     = flag.String("rates", "500,1000", "messages per second of the steady-rate runs (uniform and skewed)")
	reps      = flag.Int("reps", 3, "runs of each load shape per program; the report gives medians")
	blBin     = flag.String("baseline", "bin/wabot-baseline", "the bare whatsmeow auto-reply program")
	baselineN = flag.Int("baseline-tenants", 0, "tenants the baseline links (at least -load-tenants)")
	profile   = flag.String("profile", "", "folder for wabot's and the baseline's CPU and allocation profiles of their first steady run at the highest rate (\"\" takes none)")
	out       = flag.String("out", "bin/bench-report.md", "report file")
	keep      = flag.Bool("keep", false, "keep the temporary folders (to inspect the databases)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wabot-bench:", err)
		os.Exit(1)
	}
}

type report struct {
	bytes.Buffer
}

func (r *report) line(format string, a ...any) {
	fmt.Fprintf(&r.Buffer, format+"\n", a...)
	fmt.Printf(format+"\n", a...)
}

func run() error {
	dir, err := os.MkdirTemp("", "wabot-bench-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	info := filepath.Join(dir, "fakewa.json")
	fake := exec.Command(*fakewaBin, "-info", info)
	fake.Stderr = os.Stderr
	stdout, _ := fake.StdoutPipe()
	if err := fake.Start(); err != nil {
		return err
	}
	defer func() { fake.Process.Signal(syscall.SIGTERM); fake.Wait() }()
	var fi fakewa.Info
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&fi); err != nil {
		return fmt.Errorf("reading the fake's info: %w", err)
	}
	go io.Copy(io.Discard, stdout)

	var rep report
	rep.line("# wabot benchmark (%s)", time.Now().UTC().Format(time.RFC3339))
	rep.line("")
	rep.line("Machine: %d cores. The fake WhatsApp runs in its own process (pid %d); RSS is wabot's alone, read from /proc/<pid>/status (VmRSS) after 10 s idle.", runtimeCPUs(), fake.Process.Pid)
	rep.line("")

	if strings.TrimSpace(*sizes) != "" {
		if err := memoryAndLoad(dir, fi, fake, &rep); err != nil {
			return err
		}
	}
	if *pgOn {
		if err := postgresBench(dir, fi, fake, &rep); err != nil {
			return err
		}
	}
	if strings.TrimSpace(*apiSizes) != "" {
		if err := apiBench(dir, fi, fake.Process.Pid, &rep); err != nil {
			return err
		}
	}
	return os.WriteFile(*out, rep.Bytes(), 0o644)
}

// memoryAndLoad measures idle memory at each size, the restart of the
// biggest, and the bot's replies per second.
func memoryAndLoad(dir string, fi fakewa.Info, fake *exec.Cmd, rep *report) error {
	base, err := measureIdle(dir, "base", 0, fi, nil)
	if err != nil {
		return err
	}
	rep.line("| tenants connected | wabot RSS | RSS per tenant over the empty process | RSS / tenants | link time |")
	rep.line("|---:|---:|---:|---:|---:|")
	rep.line("| 0 | %.1f MB | – | – | – |", mb(base.rss))
	var biggest *idleResult
	for _, s := range strings.Split(*sizes, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(s))
		if biggest != nil {
			biggest.stop() // one wabot at a time
		}
		res, err := measureIdle(dir, "n"+strconv.Itoa(n), n, fi, rep)
		if err != nil {
			return err
		}
		rep.line("| %d | %.1f MB | %.3f MB | %.3f MB | %.1f s |", n, mb(res.rss), mb(res.rss-base.rss)/float64(n), mb(res.rss)/float64(n), res.link.Seconds())
		biggest = res
		onSQLite.idle[n] = res.rss - base.rss
	}
	rep.line("")
	if biggest == nil {
		return nil
	}
	defer biggest.stop()

	// Restart: every stored tenant reconnects without a QR code.
	biggest.stop()
	t0 := time.Now()
	if err := biggest.start(); err != nil {
		return err
	}
	if err := waitConnected(biggest.st, biggest.n, t0); err != nil {
		return err
	}
	onSQLite.n, onSQLite.restart = biggest.n, time.Since(t0)
	rep.line("Start to all %d stored tenants CONNECTED: **%.2f s** (wabot start, migrations, %d device stores opened, 32 connects at a time).",
		biggest.n, time.Since(t0).Seconds(), biggest.n)
	rep.line("")

	// Throughput and latency with rate limits off, wabot and the bare
	// whatsmeow baseline taking turns at the same fake.
	numbers, err := tenantNumbers(biggest.st, *loadN)
	if err != nil {
		return err
	}
	bl, err := startBaseline(dir, max(*baselineN, len(numbers)))
	if err != nil {
		return err
	}
	defer bl.stop()
	return throughput(rep, fi.Control, fake.Process.Pid, biggest, numbers, bl)
}

func runtimeCPUs() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

type idleResult struct {
	n    int
	dir  string
	env  []string
	cmd  *exec.Cmd
	st   *tenant.Store
	rss  int64
	link time.Duration
}

func (r *idleResult) start() error {
	r.cmd = exec.Command(*wabotBin, "serve")
	r.cmd.Env = r.env
	r.cmd.Stderr = os.Stderr
	if err := r.cmd.Start(); err != nil {
		return err
	}
	addr := envValue(r.env, "WABOT_ADDR")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("wabot did not become ready")
}

func (r *idleResult) stop() {
	if r.cmd != nil && r.cmd.ProcessState == nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
	}
}

func envValue(env []string, k string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, k+"="); ok {
			return v
		}
	}
	return ""
}

// measureIdle seeds n tenants, starts wabot, links them all through the
// fake, lets it idle and reads its RSS.
func measureIdle(root, name string, n int, fi fakewa.Info, rep *report) (*idleResult, error) {
	r, err := startLinked(root, name, n, fi, nil, nil)
	if err != nil {
		return nil, err
	}
	time.Sleep(10 * time.Second)
	r.rss = rssOf(r.cmd.Process.Pid)
	if n == 0 {
		r.stop()
	}
	return r, nil
}

// startLinked seeds n tenants, lets prep write to the database before
// wabot owns it, starts wabot with the extra environment and links every
// tenant through the fake.
func startLinked(root, name string, n int, fi fakewa.Info, extra []string, prep func(*tenant.Store) error) (*idleResult, error) {
	dir := filepath.Join(root, name)
	data, sessions := filepath.Join(dir, "data"), filepath.Join(dir, "sessions")
	addr := freeAddr()
	r := &idleResult{n: n, dir: dir, env: append(append(os.Environ(),
		"WABOT_ADDR="+addr, "WABOT_DATA_DIR="+data, "WABOT_SESSIONS_DIR="+sessions,
		"WABOT_LOG_LEVEL=warn", "WABOT_LOG_FORMAT=json", "WABOT_FAKEWA_REMOTE="+filepath.Join(root, "fakewa.json"),
		"WABOT_ADMIN_EMAILS=bench@example.com"), extra...)}
	if *profile != "" {
		r.env = append(r.env, "WABOT_PPROF="+freeAddr())
	}
	os.MkdirAll(data, 0o700)
	st, err := tenant.Open(filepath.Join(data, "wabot.db"))
	if err != nil {
		return nil, err
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		return nil, err
	}
	if err := seed(st, n); err != nil {
		return nil, err
	}
	if prep != nil {
		if err := prep(st); err != nil {
			return nil, err
		}
	}
	st.Close()
	if err := r.start(); err != nil {
		return nil, err
	}
	// Only read from here on: wabot owns the database while it runs.
	ro, err := tenant.Open(filepath.Join(data, "wabot.db"))
	if err != nil {
		return nil, err
	}
	r.st = ro
	t0 := time.Now()
	if n > 0 {
		if err := linkAll(ro, fi.Control, n); err != nil {
			r.stop()
			return nil, err
		}
	}
	r.link = time.Since(t0)
	return r, nil
}

// seed creates n ACTIVE tenants answering "ping" with "pong", without
// rate limits. Their session rows say DISCONNECTED with no device store:
// wabot then starts a link attempt for each at start, as after a manual
// reset, and the benchmark scans the codes.
func seed(st *tenant.Store, n int) error {
	ctx := context.Background()
	cfg := tenant.DefaultBotConfig()
	cfg.Rules = []tenant.Rule{{Match: tenant.MatchPrefix, Pattern: "ping", Reply: "pong {{text}}"}}
	cfg.Limits = tenant.Limits{QueuePerChat: 100, PerChatPerMinute: 0, PerTenantPerMinute: 0}
	for i := range n {
		u, err := st.EnsureUser(ctx, fmt.Sprintf("owner%04d@example.com", i))
		if err != nil {
			return err
		}
		t, err := st.CreateTenant(ctx, u.ID, fmt.Sprintf("Bench %04d", i), true)
		if err != nil {
			return err
		}
		if _, err := st.SaveBotConfig(ctx, t.ID, cfg); err != nil {
			return err
		}
		if err := st.SaveLink(ctx, tenant.Link{TenantID: t.ID, State: tenant.StateDisconnected}); err != nil {
			return err
		}
	}
	return nil
}

// sessions reads every tenant's session row.
func sessions(st *tenant.Store) ([]tenant.Link, error) {
	list, err := st.Overviews(context.Background(), "")
	if err != nil {
		return nil, err
	}
	out := make([]tenant.Link, len(list))
	for i, o := range list {
		out[i] = o.Link
		// The overview leaves the QR code out; the link row has it.
		if o.Link.State == tenant.StateQRReady {
			if out[i], err = st.LinkOf(context.Background(), o.Tenant.ID); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// linkAll scans every QR code wabot shows until n tenants are connected.
func linkAll(st *tenant.Store, control string, n int) error {
	scanned := map[string]bool{}
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Duration(n)*time.Second + 2*time.Minute)
	for time.Now().Before(deadline) {
		all, err := sessions(st)
		if err != nil {
			return err
		}
		connected := 0
		var todo [][2]string
		for _, s := range all {
			switch {
			case s.State == tenant.StateConnected:
				connected++
			case s.State == tenant.StateQRReady && s.QRCode != "":
				todo = append(todo, [2]string{s.TenantID, s.QRCode})
			}
		}
		if connected == n {
			wg.Wait()
			return nil
		}
		for _, t := range todo {
			mu.Lock()
			done := scanned[t[1]]
			scanned[t[1]] = true
			mu.Unlock()
			if done {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(qr string) {
				defer wg.Done()
				defer func() { <-sem }()
				body, _ := json.Marshal(map[string]string{"qr": qr})
				resp, err := http.Post("http://"+control+"/scan", "application/json", bytes.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
			}(t[1])
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not all %d tenants connected in time", n)
}

func waitConnected(st *tenant.Store, n int, since time.Time) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		all, err := sessions(st)
		if err != nil {
			return err
		}
		c := 0
		for _, s := range all {
			if s.State == tenant.StateConnected && !s.ConnectedAt.Before(since.Truncate(time.Millisecond)) {
				c++
			}
		}
		if c == n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not all %d tenants reconnected", n)
}

func tenantNumbers(st *tenant.Store, n int) ([]string, error) {
	all, err := sessions(st)
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].TenantID < all[j].TenantID })
	var out []string
	for _, s := range all {
		if s.State == tenant.StateConnected && len(out) < n {
			out = append(out, strings.TrimPrefix(tenant.PhoneOf(s.JID), "+"))
		}
	}
	return out, nil
}

func freeAddr() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return ln.Addr().String()
}

// load asks the fake for one run; hot, when not "", gets half of a
// steady run's messages.
func load(control string, numbers []string, rate float64, hot string) (map[string]any, error) {
	body, _ := json.Marshal(map[string]any{"numbers": numbers, "contacts": *contacts, "seconds": *seconds, "rate": rate, "hot": hot})
	resp, err := http.Post("http://"+control+"/load", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("load: %s", raw)
	}
	var res map[string]any
	return res, json.NewDecoder(resp.Body).Decode(&res)
}

func rssOf(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
