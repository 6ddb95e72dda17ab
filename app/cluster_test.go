package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wabot/session/fakewa"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// Several wabot instances on one PostgreSQL database (issue 17): each a
// process of the demo build, so a test can kill -9, stop, freeze or add
// one, every tenant's client talking to one fake WhatsApp in this test
// process. Contacts write "ping N" at a steady rate; the fake reports every
// answer a contact decrypted, and each N must be answered exactly once.

// Lease timings of the cluster tests: short, so a dead instance's tenants
// move in seconds.
const (
	clusterRenew = time.Second
	clusterTTL   = 6 * time.Second
)

// clusterTenants is how many tenants each cluster runs.
const clusterTenants = 30

// TestMain removes the demo build the cluster tests made.
func TestMain(m *testing.M) {
	code := m.Run()
	if demoBin != "" {
		os.RemoveAll(filepath.Dir(demoBin))
	}
	os.Exit(code)
}

var (
	demoOnce sync.Once
	demoBin  string
	demoErr  error
)

// demoBinary builds the demo build once per test process, without -race:
// several instances run at once on a small machine.
func demoBinary(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wabot-cluster-bin-")
		if err != nil {
			demoErr = err
			return
		}
		demoBin = filepath.Join(dir, "wabot-demo")
		out, err := exec.Command("go", "build", "-tags", "fakewa", "-o", demoBin, "wabot").CombinedOutput()
		if err != nil {
			demoErr = fmt.Errorf("building the demo build: %v\n%s", err, out)
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoBin
}

type cluster struct {
	t    *testing.T
	bin  string
	dir  string
	st   *tenant.Store
	fake *fakewa.Server
	env  []string
	// undecryptable: messages from a linked device a contact could not
	// decrypt, which the fake then never reports through OnSent.
	undecryptable *decryptFailures

	ids     []string                   // tenants, in seeding order
	devices map[string]types.JID       // tenant → its linked device
	phones  map[string]*fakewa.Phone   // tenant → the phone that scanned its code
	writers map[string]*fakewa.Contact // tenant → the contact sending the load

	mu        sync.Mutex
	instances map[string]*instance
	replies   map[int]int // N → answers "pong ping N" the contacts got
	sent      map[int]string
	seq       int

	loadStop chan struct{}
	loadDone chan struct{}
}

type instance struct {
	id   string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// newCluster starts instances, seeds the tenants once they all beat, has
// their owners show QR codes and scans each with a new phone.
func newCluster(t *testing.T, instances ...string) *cluster {
	t.Helper()
	st := tenanttest.OpenPostgres(t) // fails clearly without WABOT_TEST_POSTGRES
	bin := demoBinary(t)
	dir := t.TempDir()
	undecryptable := &decryptFailures{}
	fake, err := fakewa.NewServer(fakewa.Options{Trace: undecryptable})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	info, _ := json.Marshal(fake.Info(""))
	if err := os.WriteFile(filepath.Join(dir, "fakewa.json"), info, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, st: st, fake: fake, undecryptable: undecryptable,
		devices: map[string]types.JID{}, phones: map[string]*fakewa.Phone{}, writers: map[string]*fakewa.Contact{},
		instances: map[string]*instance{}, replies: map[int]int{}, sent: map[int]string{}}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WABOT_") {
			c.env = append(c.env, e)
		}
	}
	c.env = append(c.env,
		"WABOT_DATABASE_URL="+tenanttest.URL(t, st),
		"WABOT_FAKEWA_REMOTE="+filepath.Join(dir, "fakewa.json"),
		"WABOT_LOG_FORMAT=json", "WABOT_LOG_LEVEL=info",
		"WABOT_LEASE_RENEW="+clusterRenew.String(), "WABOT_LEASE_TTL="+clusterTTL.String())
	c.bin = bin
	fake.OnSent(c.onSent)
	t.Cleanup(c.stopAll)
	for _, id := range instances {
		c.start(id)
	}
	c.waitLive(len(instances))
	c.seedAndLink(clusterTenants)
	return c
}

// onSent counts what each contact received: "pong ping N" answers N.
func (c *cluster) onSent(s fakewa.Sent) {
	rest, ok := strings.CutPrefix(s.Text, "pong ping ")
	if !ok {
		return
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.replies[n]++
	c.mu.Unlock()
}

// decryptFailures keeps the fake's trace lines saying a contact could not
// decrypt a device's message, and drops the rest of its trace.
type decryptFailures struct {
	mu    sync.Mutex
	lines []string
}

func (d *decryptFailures) Write(p []byte) (int, error) {
	if line := string(p); strings.Contains(line, "cannot decrypt") {
		d.mu.Lock()
		d.lines = append(d.lines, time.Now().UTC().Format("15:04:05.000")+" "+strings.TrimSpace(line))
		d.mu.Unlock()
	}
	return len(p), nil
}

func (d *decryptFailures) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

func (d *decryptFailures) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.lines, "\n")
}

// start runs one more instance, returning once it answers /readyz.
func (c *cluster) start(id string) *instance {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(c.dir, id+".log")
	if keep := os.Getenv("WABOT_CLUSTER_LOGS"); keep != "" { // to read whole logs after a run
		logPath = filepath.Join(keep, c.t.Name()+"-"+id+".log")
	}
	logf, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = append(slices.Clone(c.env),
		"WABOT_INSTANCE_ID="+id, "WABOT_ADDR="+addr, "WABOT_BASE_URL=http://"+addr,
		"WABOT_DATA_DIR="+filepath.Join(c.dir, id, "data"), "WABOT_SESSIONS_DIR="+filepath.Join(c.dir, id, "sessions"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	in := &instance{id: id, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(in.done) }()
	c.mu.Lock()
	c.instances[id] = in
	c.mu.Unlock()
	c.waitFor(60*time.Second, id+" ready", func() bool {
		select {
		case <-in.done:
			c.t.Fatalf("%s exited at start", id)
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return in
}

// waitFor is rigtest.WaitFor polling less often: every poll here reads
// the database.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out (%v) waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) instance(id string) *instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instances[id]
}

// stopAll ends every instance (waking a frozen one first) and, when the
// test failed, prints the end of each one's log.
func (c *cluster) stopAll() {
	c.stopLoad()
	c.mu.Lock()
	var list []*instance
	for _, in := range c.instances {
		list = append(list, in)
	}
	c.mu.Unlock()
	slices.SortFunc(list, func(a, b *instance) int { return strings.Compare(a.id, b.id) })
	for _, in := range list {
		in.cmd.Process.Signal(syscall.SIGCONT)
		in.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, in := range list {
		select {
		case <-in.done:
		case <-time.After(30 * time.Second):
			c.t.Errorf("%s did not stop within 30 s of SIGTERM", in.id)
			in.cmd.Process.Kill()
			<-in.done
		}
	}
	if c.t.Failed() {
		for _, in := range list {
			b, _ := os.ReadFile(in.log)
			c.t.Logf("--- last lines of %s's log:\n%s", in.id, tail(b, 40))
		}
	}
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// live lists the instances beating, with the leases each holds.
func (c *cluster) live() map[string]int {
	list, err := c.st.LiveInstances(context.Background(), clusterTTL)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int{}
	for _, in := range list {
		if !in.Draining {
			out[in.ID] = in.Tenants
		}
	}
	return out
}

func (c *cluster) waitLive(n int) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("%d live instances", n), func() bool { return len(c.live()) == n })
}

// owners maps each tenant to the instance holding its unexpired lease
// ("" for none).
func (c *cluster) owners() map[string]string {
	out := map[string]string{}
	now := time.Now()
	for _, id := range c.ids {
		owner, l, err := c.st.LeaseOf(context.Background(), id)
		if err != nil {
			c.t.Fatal(err)
		}
		if owner != "" && l.ExpiresAt.After(now) {
			out[id] = owner
		}
	}
	return out
}

// seedAndLink creates n tenants answering "ping" with "pong <text>", waits
// until the instances shared them out, asks each owner (through a control
// request, as the portal of another instance would) to show a QR code,
// and scans every code with a new phone until all are CONNECTED.
func (c *cluster) seedAndLink(n int) {
	c.t.Helper()
	ctx := context.Background()
	cfg := tenant.DefaultBotConfig()
	cfg.Rules = []tenant.Rule{{Match: tenant.MatchPrefix, Pattern: "ping", Reply: "pong {{text}}"}}
	cfg.Limits = tenant.Limits{QueuePerChat: 100} // no rate limits: every ping is answered
	for i := range n {
		u, err := c.st.EnsureUser(ctx, fmt.Sprintf("owner%03d@example.com", i))
		if err != nil {
			c.t.Fatal(err)
		}
		tn, err := c.st.CreateTenant(ctx, u.ID, fmt.Sprintf("Shop %03d", i), true)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := c.st.SaveBotConfig(ctx, tn.ID, cfg); err != nil {
			c.t.Fatal(err)
		}
		c.ids = append(c.ids, tn.ID)
	}
	c.waitFor(30*time.Second, "every tenant leased", func() bool { return len(c.owners()) == n })
	asked := map[string]time.Time{}
	ask := func(id string) {
		asked[id] = time.Now()
		if _, err := c.st.AskControl(ctx, tenant.ControlRequest{TenantID: id, Action: tenant.ControlLink, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, id := range c.ids {
		ask(id)
	}
	type scanned struct {
		id  string
		p   *fakewa.Phone
		dev types.JID
		err error
	}
	results := make(chan scanned)
	tried := map[string]string{} // tenant → last code scanned
	busy := 0
	deadline := time.Now().Add(90 * time.Second)
	for len(c.devices) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("only %d of %d tenants linked in time", len(c.devices), n)
		}
		for _, id := range c.ids {
			if _, ok := c.devices[id]; ok || busy >= 6 {
				continue
			}
			l, err := c.st.LinkOf(ctx, id)
			if err != nil {
				c.t.Fatal(err)
			}
			// A link attempt ends when its session stops (a lease that
			// moved, or not renewed in time under the load of linking):
			// its code then shows as expired, and the test asks again.
			if (l.State == tenant.StateQRExpired || l.State == tenant.StateQRPending) && time.Since(asked[id]) > 5*time.Second {
				c.t.Logf("%s shows %s: asking for a link attempt again", id, l.State)
				ask(id)
			}
			if l.State != tenant.StateQRReady || l.QRCode == "" || tried[id] == l.QRCode {
				continue
			}
			tried[id] = l.QRCode
			busy++
			go func(id, qr string) {
				sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				p := c.fake.NewPhone("")
				dev, err := p.Scan(sctx, qr)
				results <- scanned{id, p, dev, err}
			}(id, l.QRCode)
		}
	drain:
		for {
			select {
			case r := <-results:
				busy--
				if r.err != nil {
					c.t.Logf("scanning %s's code: %v (trying its next code)", r.id, r.err)
					continue
				}
				c.devices[r.id], c.phones[r.id] = r.dev, r.p
				c.writers[r.id] = r.p.NewContact("", "Load")
			case <-time.After(100 * time.Millisecond):
				break drain
			}
		}
	}
	c.waitFor(30*time.Second, "every tenant CONNECTED and online", func() bool { return c.online() == n && c.connected() == n })
}

// online is how many tenants' devices have a logged-in connection in the
// fake.
func (c *cluster) online() int {
	n := 0
	for _, dev := range c.devices {
		if c.fake.Online(dev) {
			n++
		}
	}
	return n
}

func (c *cluster) connected() int {
	n := 0
	for _, id := range c.ids {
		l, err := c.st.LinkOf(context.Background(), id)
		if err != nil {
			c.t.Fatal(err)
		}
		if l.State == tenant.StateConnected {
			n++
		}
	}
	return n
}

// servedBy reports whether every tenant is online in the fake and leased
// to one of alive.
func (c *cluster) servedBy(alive ...string) bool {
	if c.online() != len(c.ids) {
		return false
	}
	owners := c.owners()
	for _, id := range c.ids {
		if !slices.Contains(alive, owners[id]) {
			return false
		}
	}
	return true
}

// startLoad sends "ping N" from each tenant's contact in turn, perSecond
// messages a second in all, until stopLoad.
func (c *cluster) startLoad(perSecond int) {
	c.loadStop, c.loadDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.loadDone)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-c.loadStop:
				return
			case <-tick.C:
			}
			id := c.ids[i%len(c.ids)]
			c.mu.Lock()
			c.seq++
			n := c.seq
			c.mu.Unlock()
			// Delivered now, or queued by the fake until the device is
			// online again.
			if _, err := c.writers[id].Send(fmt.Sprintf("ping %d", n)); err != nil {
				c.t.Errorf("contact of %s sending ping %d: %v", id, n, err)
				continue
			}
			c.mu.Lock()
			c.sent[n] = id
			c.mu.Unlock()
		}
	}()
}

func (c *cluster) stopLoad() {
	if c.loadStop == nil {
		return
	}
	select {
	case <-c.loadStop:
	default:
		close(c.loadStop)
	}
	<-c.loadDone
}

// checkAnswers stops the load and waits until every ping sent was
// answered (the fake redelivers what a dead instance never acknowledged),
// then a little longer for late doubles, and fails for each ping missing
// or answered twice.
func (c *cluster) checkAnswers() {
	c.t.Helper()
	c.stopLoad()
	missing := func() []int {
		c.mu.Lock()
		defer c.mu.Unlock()
		var out []int
		for n := range c.sent {
			if c.replies[n] == 0 {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	start := time.Now()
	for m := missing(); len(m) > 0 && time.Since(start) < 30*time.Second; m = missing() {
		// An answer the contact could not decrypt never comes: after a
		// few seconds for redelivery, waiting longer is for nothing.
		if len(m) <= c.undecryptable.count() && time.Since(start) > 5*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * clusterRenew) // a double would come now
	c.mu.Lock()
	var doubled []string
	for n, k := range c.replies {
		if k > 1 {
			doubled = append(doubled, fmt.Sprintf("ping %d (tenant %s) ×%d", n, c.sent[n], k))
		}
	}
	sent := len(c.sent)
	c.mu.Unlock()
	slices.Sort(doubled)
	if m := missing(); len(m) > 0 {
		var ls []string
		for _, n := range m {
			ls = append(ls, fmt.Sprintf("ping %d (tenant %s)", n, c.sent[n]))
		}
		c.t.Errorf("%d of %d pings never answered: %s", len(m), sent, strings.Join(ls, ", "))
		if c.undecryptable.count() > 0 {
			// A reply sent but unreadable: a Signal counter reused by a
			// send and a decryption racing on one session (session/signal.go).
			c.t.Logf("answers the contacts could not decrypt:\n%s", c.undecryptable)
		}
	}
	if len(doubled) > 0 {
		c.t.Errorf("%d of %d pings answered more than once: %s", len(doubled), sent, strings.Join(doubled, ", "))
	}
	c.t.Logf("%d pings sent, each answered exactly once unless reported above", sent)
}

// busiest is the live instance holding the most leases.
func (c *cluster) busiest() (string, int) {
	best, most := "", -1
	for id, n := range c.live() {
		if n > most || n == most && id < best {
			best, most = id, n
		}
	}
	return best, most
}

func (c *cluster) others(not string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, in := range c.instances {
		select {
		case <-in.done:
			continue
		default:
		}
		if id != not {
			out = append(out, id)
		}
	}
	return out
}

func conflictCount(m map[types.JID]int) int {
	n := 0
	for _, k := range m {
		n += k
	}
	return n
}

func TestClusterKill9(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	c.startLoad(15)
	time.Sleep(2 * time.Second) // answers flowing before the crash
	victim, held := c.busiest()
	alive := c.others(victim)
	t0 := time.Now()
	if err := c.instance(victim).cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitFor(20*time.Second, fmt.Sprintf("every tenant online on %v after kill -9 of %s", alive, victim), func() bool { return c.servedBy(alive...) })
	t.Logf("failover: kill -9 of %s (%d tenants) → every tenant online and leased on %v in %.1f s (lease renew %v, TTL %v)",
		victim, held, alive, time.Since(t0).Seconds(), clusterRenew, clusterTTL)
	time.Sleep(3 * time.Second) // load goes on after the move
	c.checkAnswers()
}

func TestClusterSIGTERM(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	c.startLoad(15)
	time.Sleep(2 * time.Second)
	victim, held := c.busiest()
	alive := c.others(victim)
	t0 := time.Now()
	if err := c.instance(victim).cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitFor(5*time.Second, fmt.Sprintf("every tenant online on %v after SIGTERM to %s", alive, victim), func() bool { return c.servedBy(alive...) })
	t.Logf("SIGTERM to %s (%d tenants) → every tenant online and leased on %v in %.1f s", victim, held, alive, time.Since(t0).Seconds())
	select {
	case <-c.instance(victim).done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not exit after SIGTERM", victim)
	}
	time.Sleep(3 * time.Second)
	c.checkAnswers()
}

func TestClusterFrozen(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	c.startLoad(15)
	time.Sleep(2 * time.Second)
	victim, held := c.busiest()
	alive := c.others(victim)
	before := conflictCount(c.fake.AllConflicts())
	in := c.instance(victim)
	if err := in.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c.waitFor(20*time.Second, fmt.Sprintf("every tenant online on %v while %s is frozen", alive, victim), func() bool { return c.servedBy(alive...) })
	t.Logf("SIGSTOP of %s (%d tenants) → every tenant online and leased on %v in %.1f s", victim, held, alive, time.Since(t0).Seconds())
	time.Sleep(2 * time.Second) // frozen well past its lease
	frozen := conflictCount(c.fake.AllConflicts())
	// While frozen its sockets stay open: the fake replaces each with a
	// conflict when the new owner logs in, which no code of the frozen
	// instance could prevent. What it does after waking is its own.
	t.Logf("stream-replaced conflicts while %s was frozen: %d (before: %d)", victim, frozen-before, before)
	if err := in.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Awake, it stops the sessions it had (their leases are gone), then
	// beats again and gets its share back from the others, each moved
	// cleanly: the fake must count no conflict from here on.
	c.waitFor(30*time.Second, victim+" back with its share after waking", func() bool {
		return c.live()[victim] >= held-2 && c.servedBy(victim, alive[0], alive[1])
	})
	time.Sleep(clusterTTL) // time to fight, if it would
	after := c.fake.AllConflicts()
	if n := conflictCount(after); n != frozen {
		t.Errorf("the fake counted %d stream-replaced conflicts after %s woke (%d while it was frozen): %v", n-frozen, victim, frozen-before, after)
	}
	if !c.servedBy(victim, alive[0], alive[1]) {
		t.Errorf("not every tenant online and leased after %s woke", victim)
	}
	c.checkAnswers()
	// Its sessions stopped when it woke; none may hang on a lease it lost
	// (a write refused with ErrLeaseLost, retried for minutes, held its
	// shutdown past the 20 s deadline).
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not exit within 15 s of SIGTERM after waking", victim)
	}
}

func TestClusterJoin(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	c.startLoad(15)
	time.Sleep(2 * time.Second)
	var (
		mu       sync.Mutex
		minimum  = len(c.ids)
		sampling = make(chan struct{})
		sampled  = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n := c.online()
			mu.Lock()
			minimum = min(minimum, n)
			mu.Unlock()
		}
	}()
	c.start("d")
	share := (len(c.ids) + 3) / 4
	// Settled: d holds at least what the others shed to reach their
	// share, everyone is online, and nobody is above the share.
	c.waitFor(30*time.Second, "d taking its share", func() bool {
		live := c.live()
		if live["d"] < share-2 || c.online() != len(c.ids) {
			return false
		}
		for _, n := range live {
			if n > share {
				return false
			}
		}
		return c.servedBy("a", "b", "c", "d")
	})
	close(sampling)
	<-sampled
	live := c.live()
	t.Logf("after d joined: leases %v; fewest tenants online at once while it took its share: %d of %d", live, minimum, len(c.ids))
	if live["d"] < 6 || live["d"] > 9 {
		t.Errorf("d holds %d tenants, want about a quarter of %d (6–9)", live["d"], len(c.ids))
	}
	if slack := 2; minimum < len(c.ids)-(share+slack) {
		t.Errorf("%d of %d tenants online at the worst moment: more went offline at once than d's share (%d) and %d", minimum, len(c.ids), share, slack)
	}
	c.checkAnswers()
}
