package bot

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wabot/session"
	"wabot/session/fakewa"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// TestSoak runs 50 linked tenants under a steady load of messages while a
// chaos loop, planned from a seed, restarts them, cuts their connections,
// refuses and stalls new connections, restarts their streams (515), fails
// their logins (503) and withholds their keepalive answers. After the
// chaos and a settle period, every message must have been stored once and
// answered once (or logged with a reason), every session row must match
// what the fake WhatsApp sees, no device may have had two clients at once,
// and goroutines and file descriptors must be back near where they were.
//
// WABOT_SOAK sets how long the load and the chaos last (default 60s);
// WABOT_SOAK_SEED replays a run's chaos plan and load schedule (timing on
// a loaded machine still varies). To narrow a failure down,
// WABOT_SOAK_SKIP=515,restart plays a cut in place of the actions named
// (the rest of the plan stays as the seed drew it). BOT_LOG=1 prints the
// pipeline's and the supervisors' log.
//
// Resets are left out: a reset unlinks the number by design, after which
// "answered once" cannot hold for the messages in flight.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: 50 tenants for a minute or more")
	}
	p := soakParamsFromEnv(t)
	t.Logf("soak: seed %d, %s of load and chaos, %d tenants x %d contacts (replay: WABOT_SOAK_SEED=%d WABOT_SOAK=%s)",
		p.seed, p.duration, p.tenants, p.contacts, p.seed, p.duration)
	sk := newSoak(t, p)
	sk.link()
	sk.run()
	sk.settle()
	sk.check()
	sk.checkResources()
	sk.report()
}

type soakParams struct {
	seed      uint64
	duration  time.Duration // of load and chaos
	tenants   int
	contacts  int           // per tenant
	sendEvery time.Duration // mean gap between one tenant's messages
	settle    time.Duration // longest wait for recovery after the chaos
	skip      map[chaosAction]bool
}

func soakParamsFromEnv(t *testing.T) soakParams {
	p := soakParams{
		seed:      uint64(time.Now().UnixNano()),
		duration:  60 * time.Second,
		tenants:   50,
		contacts:  3,
		sendEvery: 2 * time.Second,
		settle:    60 * time.Second,
	}
	if v := os.Getenv("WABOT_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("WABOT_SOAK=%q: want a duration such as 5m", v)
		}
		p.duration = d
	}
	if v := os.Getenv("WABOT_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WABOT_SOAK_SEED=%q: want a number", v)
		}
		p.seed = s
	}
	if v := os.Getenv("WABOT_SOAK_SKIP"); v != "" {
		p.skip = map[chaosAction]bool{}
		for name := range strings.SplitSeq(v, ",") {
			a := slices.IndexFunc(chaosActions(), func(a chaosAction) bool { return a.String() == strings.TrimSpace(name) })
			if a < 0 {
				t.Fatalf("WABOT_SOAK_SKIP: no chaos action %q; there are %v", name, chaosActions())
			}
			p.skip[chaosAction(a)] = true
		}
		t.Logf("soak: playing a cut in place of %s", v)
	}
	return p
}

// soak is one run: the rig, the tenants, what the load sent and what the
// chaos did.
type soak struct {
	t   *testing.T
	p   soakParams
	r   *rig
	raw *sql.DB

	tenants []*soakTenant
	plan    []chaosStep // written by the chaos goroutine, read after it ends
	start   time.Time   // of the load and the chaos

	settled    time.Duration // how long recovery took
	baseG      int           // goroutines and fds under load before the chaos
	baseFD     int
	issues     map[int][]string // by tenant index; -1 for the whole run
	issueCount int
	duplicates int // inbound rows logged as duplicates
}

type soakTenant struct {
	idx      int
	id       string
	phone    *fakewa.Phone
	dev      types.JID
	contacts []*fakewa.Contact
	sent     []sentMsg     // written by the tenant's load goroutine
	got      []map[int]int // per contact: "ping N" answers received, by N
	odd      []string      // texts received that answer nothing sent
	row      tenant.Link   // at the end
	worker   tenant.Worker // at the end
	online   bool          // at the end, as the fake sees it
}

type sentMsg struct {
	contact, seq int
	waID         string
	at           time.Duration // since the start of the load
	err          error
}

func newSoak(t *testing.T, p soakParams) *soak {
	r := newRig(t, Options{})
	// Reconnects as in production, scaled down: 10 attempts over about
	// 5-10 s, longer than any refusal or stall the chaos injects (3 s at
	// most, never two at once).
	r.stop()
	r.startWith(session.Config{ReconnectBaseDelay: 100 * time.Millisecond, ReconnectMaxDelay: 2 * time.Second})
	return &soak{t: t, p: p, r: r, raw: tenanttest.Raw(t, r.store.Path()), issues: map[int][]string{}}
}

func (sk *soak) fatalf(format string, args ...any) {
	sk.t.Helper()
	sk.t.Fatalf("[seed %d] "+format, append([]any{sk.p.seed}, args...)...)
}

func (sk *soak) issue(tenantIdx int, format string, args ...any) {
	sk.issues[tenantIdx] = append(sk.issues[tenantIdx], fmt.Sprintf(format, args...))
	sk.issueCount++
}

// Linking.

// soakReply is the rule's answer to "ping N": "pong for ping N".
const soakReply = "pong for {{text}}"

func pongFor(seq int) string { return fmt.Sprintf("pong for ping %d", seq) }

// link creates and links every tenant, a few at a time, each with its own
// phone and contacts.
func (sk *soak) link() {
	begin := time.Now()
	sk.tenants = make([]*soakTenant, sk.p.tenants)
	errs := make([]error, sk.p.tenants)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range sk.tenants {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sk.tenants[i], errs[i] = sk.linkOne(i)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			sk.fatalf("linking tenant %d: %v", i, err)
		}
	}
	sk.t.Logf("soak: %d tenants linked in %s", len(sk.tenants), time.Since(begin).Round(time.Millisecond))
}

func (sk *soak) linkOne(i int) (*soakTenant, error) {
	cfg := rules(tenant.Rule{Match: tenant.MatchPrefix, Pattern: "ping", Reply: soakReply})
	cfg.Limits = tenant.Limits{QueuePerChat: 1000} // no rate limits, no drops
	cfg.BusyReply = ""
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := sk.r
	u, err := r.store.EnsureUser(ctx, fmt.Sprintf("soak%02d@example.com", i))
	if err != nil {
		return nil, err
	}
	tn, err := r.store.CreateTenant(ctx, u.ID, fmt.Sprintf("Soak %02d", i), true)
	if err != nil {
		return nil, err
	}
	if _, err := r.bot.SaveConfig(ctx, tn.ID, cfg); err != nil {
		return nil, err
	}
	if err := r.m.Add(tn.ID); err != nil {
		return nil, err
	}
	if err := r.m.Link(ctx, tn.ID); err != nil {
		return nil, err
	}
	s, err := waitSession(ctx, r.store, tn.ID, func(s tenant.Link) bool { return s.State == tenant.StateQRReady })
	if err != nil {
		return nil, fmt.Errorf("waiting for a QR code: %w", err)
	}
	phone := r.srv.NewPhone("")
	dev, err := phone.Scan(ctx, s.QRCode)
	if err != nil {
		return nil, err
	}
	if _, err := waitSession(ctx, r.store, tn.ID, func(s tenant.Link) bool { return s.State == tenant.StateConnected }); err != nil {
		return nil, fmt.Errorf("waiting for CONNECTED: %w", err)
	}
	st := &soakTenant{idx: i, id: tn.ID, phone: phone, dev: dev}
	for c := range sk.p.contacts {
		st.contacts = append(st.contacts, phone.NewContact("", fmt.Sprintf("Contact %d-%d", i, c)))
		st.got = append(st.got, map[int]int{})
	}
	return st, nil
}

// waitSession is rig.wait for any goroutine: it returns an error instead
// of failing the test.
func waitSession(ctx context.Context, st *tenant.Store, id string, cond func(tenant.Link) bool) (tenant.Link, error) {
	for {
		s, err := st.LinkOf(ctx, id)
		if err == nil && cond(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("%w (state %s %s)", ctx.Err(), s.State, s.LastError)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The load and the chaos.

// run sends the load and plays the chaos plan for the run's duration,
// after a few seconds of load alone to measure goroutines and fds under
// load.
func (sk *soak) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sk.start = time.Now()
	var load sync.WaitGroup
	for _, tn := range sk.tenants {
		load.Go(func() { sk.sendLoad(ctx, tn) })
	}
	const warmup = 5 * time.Second
	time.Sleep(warmup)
	sk.baseG, sk.baseFD = runtime.NumGoroutine(), openFDs()
	sk.plan = planChaos(sk.p)
	var chaos sync.WaitGroup
	chaos.Go(func() { sk.playChaos(ctx, sk.start.Add(warmup)) })
	time.Sleep(sk.p.duration)
	cancel()
	load.Wait()
	chaos.Wait()
	sk.r.srv.ClearFaults()
	sent := 0
	for _, tn := range sk.tenants {
		sent += len(tn.sent)
	}
	sk.t.Logf("soak: %d messages sent, %d chaos actions in %s", sent, len(sk.plan), time.Since(sk.start).Round(time.Millisecond))
}

// sendLoad has the tenant's contacts take turns sending "ping N", one
// message every sendEvery on average.
func (sk *soak) sendLoad(ctx context.Context, tn *soakTenant) {
	rng := rand.New(rand.NewPCG(sk.p.seed, uint64(tn.idx)+1))
	next := time.Now().Add(durN(rng, sk.p.sendEvery))
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		c := seq % len(tn.contacts)
		m := sentMsg{contact: c, seq: seq, at: time.Since(sk.start)}
		m.waID, m.err = tn.contacts[c].Send(fmt.Sprintf("ping %d", seq))
		tn.sent = append(tn.sent, m)
		next = next.Add(sk.p.sendEvery/2 + durN(rng, sk.p.sendEvery))
	}
}

type chaosAction int

const (
	chaosRestart       chaosAction = iota // Manager.Restart
	chaosCut                              // the connection drops
	chaosRefuse                           // connections refused for a while, then a cut
	chaosStream515                        // <stream:error code=515>
	chaosWithholdPings                    // keepalive answers withheld for a while
	chaosFailLogin503                     // the next logins fail with 503, then a cut
	chaosStallTLS                         // new connections stall in TLS for a while, then a cut
	numChaosActions
)

func chaosActions() []chaosAction {
	var out []chaosAction
	for a := range numChaosActions {
		out = append(out, a)
	}
	return out
}

func (a chaosAction) String() string {
	return [...]string{"restart", "cut", "refuse", "515", "withhold-pings", "fail-login-503", "stall-tls"}[a]
}

// global: refusals and stalls hit every tenant that dials meanwhile.
func (a chaosAction) global() bool { return a == chaosRefuse || a == chaosStallTLS }

// chaosStep is one planned action and, once played, what it did.
type chaosStep struct {
	at     time.Duration // planned, since the chaos started
	tenant int
	action chaosAction
	d      time.Duration // refusal, stall or withheld pings
	n      int           // failed logins

	ran  time.Duration // since the start of the load
	took time.Duration
	note string
}

func (s chaosStep) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%.1fs %s", s.ran.Seconds(), s.action)
	switch s.action {
	case chaosRefuse, chaosStallTLS, chaosWithholdPings:
		fmt.Fprintf(&b, " %s", s.d.Round(100*time.Millisecond))
	case chaosFailLogin503:
		fmt.Fprintf(&b, " x%d", s.n)
	}
	if s.took > time.Second {
		fmt.Fprintf(&b, " (took %s)", s.took.Round(100*time.Millisecond))
	}
	if s.note != "" {
		b.WriteString(" " + s.note)
	}
	return b.String()
}

// planChaos draws the whole chaos plan from the seed, so a seed replays
// it. An action every 0.3-1.2 s; refusals and stalls last 0.5-3 s and
// never overlap, with a second between them; withheld pings last from 10 s
// to most of the run (beyond 3 minutes whatsmeow reconnects by itself).
func planChaos(p soakParams) []chaosStep {
	rng := rand.New(rand.NewPCG(p.seed, 0xC4A05))
	maxWithhold := min(max(p.duration*4/5, 30*time.Second), 4*time.Minute)
	var steps []chaosStep
	var at, globalFree time.Duration
	for {
		at += 300*time.Millisecond + durN(rng, 900*time.Millisecond)
		if at >= p.duration {
			return steps
		}
		s := chaosStep{at: at, tenant: rng.IntN(p.tenants), action: chaosAction(rng.IntN(int(numChaosActions)))}
		short := 500*time.Millisecond + durN(rng, 2500*time.Millisecond)
		long := 10*time.Second + durN(rng, maxWithhold-10*time.Second)
		s.n = 1 + rng.IntN(2)
		if p.skip[s.action] {
			s.action = chaosCut
		}
		switch {
		case s.action.global() && at < globalFree:
			s.action = chaosCut
		case s.action.global():
			s.d = short
			globalFree = at + short + time.Second
		case s.action == chaosWithholdPings:
			s.d = long
		}
		steps = append(steps, s)
	}
}

func (sk *soak) playChaos(ctx context.Context, start time.Time) {
	for i := range sk.plan {
		s := &sk.plan[i]
		select {
		case <-ctx.Done():
			sk.plan = sk.plan[:i]
			return
		case <-time.After(time.Until(start.Add(s.at))):
		}
		begin := time.Now()
		s.ran = begin.Sub(sk.start)
		sk.apply(s)
		s.took = time.Since(begin)
	}
}

func (sk *soak) apply(s *chaosStep) {
	srv, tn := sk.r.srv, sk.tenants[s.tenant]
	offline := func(was bool) {
		if !was {
			s.note = "(was offline)"
		}
	}
	switch s.action {
	case chaosRestart:
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sk.r.m.Restart(ctx, tn.id); err != nil {
			s.note = "returned " + err.Error()
			sk.issue(s.tenant, "Manager.Restart at +%.1fs returned after %s: %v", s.ran.Seconds(), time.Since(sk.start.Add(s.ran)).Round(time.Millisecond), err)
		}
	case chaosCut:
		offline(srv.Cut(tn.dev))
	case chaosRefuse:
		srv.RefuseFor(s.d)
		offline(srv.Cut(tn.dev))
	case chaosStream515:
		offline(srv.StreamError(tn.dev, "515"))
	case chaosWithholdPings:
		srv.WithholdPings(tn.dev, s.d)
	case chaosFailLogin503:
		srv.FailLogins(tn.dev, fakewa.Failure{Reason: 503}, s.n)
		offline(srv.Cut(tn.dev))
	case chaosStallTLS:
		srv.StallTLS(s.d)
		offline(srv.Cut(tn.dev))
	}
}

// Recovery and checks.

// settle waits until every tenant is connected again, every message is
// answered and every contact has its answers, or the settle time is over;
// then a little longer, for answers sent twice.
func (sk *soak) settle() {
	begin := time.Now()
	deadline := begin.Add(sk.p.settle)
	for {
		sk.drainInboxes()
		if sk.recovered() || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	sk.settled = time.Since(begin)
	time.Sleep(3 * time.Second)
	sk.drainInboxes()
	for _, tn := range sk.tenants {
		s, err := sk.r.store.LinkOf(context.Background(), tn.id)
		if err != nil {
			sk.fatalf("reading tenant %d's session: %v", tn.idx, err)
		}
		tn.row, tn.online = s, sk.r.srv.Online(tn.dev)
		if tn.worker, err = sk.r.store.WorkerOf(context.Background(), tn.id); err != nil {
			sk.fatalf("reading tenant %d's worker: %v", tn.idx, err)
		}
	}
}

// recovered reports whether every tenant is connected, every message sent
// is stored and done with, and every contact has as many answers as the
// log says were sent.
func (sk *soak) recovered() bool {
	rows, err := sk.raw.Query(`SELECT tenant_id,
		SUM(CASE WHEN direction = 'in' AND status <> 'duplicate' THEN 1 ELSE 0 END),
		SUM(CASE WHEN direction = 'in' AND status = 'replied' THEN 1 ELSE 0 END),
		SUM(CASE WHEN status IN ('received', 'pending') THEN 1 ELSE 0 END)
		FROM messages GROUP BY tenant_id`)
	if err != nil {
		sk.fatalf("counting messages: %v", err)
	}
	type counts struct{ stored, replied, open int }
	byTenant := map[string]counts{}
	for rows.Next() {
		var id string
		var c counts
		if err := rows.Scan(&id, &c.stored, &c.replied, &c.open); err != nil {
			sk.fatalf("counting messages: %v", err)
		}
		byTenant[id] = c
	}
	if err := rows.Close(); err != nil {
		sk.fatalf("counting messages: %v", err)
	}
	for _, tn := range sk.tenants {
		if !sk.r.srv.Online(tn.dev) {
			return false
		}
		s, err := sk.r.store.LinkOf(context.Background(), tn.id)
		if err != nil || s.State != tenant.StateConnected {
			return false
		}
		sent, answered := 0, 0
		for _, m := range tn.sent {
			if m.err == nil {
				sent++
			}
		}
		for _, byN := range tn.got {
			answered += len(byN)
		}
		if c := byTenant[tn.id]; c.open > 0 || c.stored < sent || answered < c.replied {
			return false
		}
	}
	return true
}

func (sk *soak) drainInboxes() {
	for _, tn := range sk.tenants {
		for c, ct := range tn.contacts {
			for ct.Pending() > 0 {
				got, err := ct.Next(0)
				if err != nil {
					break
				}
				seq, ok := strings.CutPrefix(got.Text, "pong for ping ")
				n, err := strconv.Atoi(seq)
				if !ok || err != nil {
					tn.odd = append(tn.odd, fmt.Sprintf("contact %d got %q", c, got.Text))
					continue
				}
				tn.got[c][n]++
			}
		}
	}
}

// logRow is one row of the message log.
type logRow struct {
	id      int64
	dir     string
	waID    string
	body    string
	status  tenant.MessageStatus
	errText string
	replyTo int64
}

// check compares what the contacts sent and received with the message log
// and the session rows.
func (sk *soak) check() {
	rows, err := sk.raw.Query(`SELECT tenant_id, id, direction, wa_id, body, status, error, COALESCE(reply_to, 0) FROM messages ORDER BY id`)
	if err != nil {
		sk.fatalf("reading the message log: %v", err)
	}
	byTenant := map[string][]logRow{}
	for rows.Next() {
		var tid string
		var lr logRow
		if err := rows.Scan(&tid, &lr.id, &lr.dir, &lr.waID, &lr.body, &lr.status, &lr.errText, &lr.replyTo); err != nil {
			sk.fatalf("reading the message log: %v", err)
		}
		byTenant[tid] = append(byTenant[tid], lr)
	}
	if err := rows.Close(); err != nil {
		sk.fatalf("reading the message log: %v", err)
	}
	conflicts := sk.r.srv.AllConflicts()
	for _, tn := range sk.tenants {
		switch {
		case tn.row.State == tenant.StateConnected && !tn.online:
			sk.issue(tn.idx, "session row says CONNECTED but the fake has no logged-in connection of %s", tn.dev)
		case tn.row.State != tenant.StateConnected:
			sk.issue(tn.idx, "session %s (%s: %s), fake online %v, after %s of settling", tn.row.State, tn.row.ErrorCode, tn.row.LastError, tn.online, sk.p.settle)
		}
		if tn.worker.Status != tenant.WorkerRunning {
			sk.issue(tn.idx, "supervisor %s after %d restarts", tn.worker.Status, tn.worker.Restarts)
		}
		sk.checkTenant(tn, byTenant[tn.id])
		if n := conflicts[tn.dev]; n > 0 {
			sk.issue(tn.idx, "the fake saw two clients of device %s at once %d times (a newer login replaced an open connection)", tn.dev, n)
		}
		delete(conflicts, tn.dev)
	}
	for dev, n := range conflicts {
		sk.issue(-1, "device %s of no soak tenant had %d conflicts", dev, n)
	}
}

func (sk *soak) checkTenant(tn *soakTenant, log []logRow) {
	in := map[string][]logRow{} // by WhatsApp id, duplicates left out
	dups := map[string]int{}
	out := map[int64][]logRow{} // by the inbound row they answer
	for _, lr := range log {
		switch {
		case lr.dir == "in" && lr.status == tenant.MsgDuplicate:
			dups[lr.waID]++
		case lr.dir == "in":
			in[lr.waID] = append(in[lr.waID], lr)
		default:
			out[lr.replyTo] = append(out[lr.replyTo], lr)
		}
	}
	for _, m := range tn.sent {
		if m.err != nil {
			sk.issue(tn.idx, "contact %d could not send ping %d at +%.1fs: %v", m.contact, m.seq, m.at.Seconds(), m.err)
			continue
		}
		got := tn.got[m.contact][m.seq]
		where := sk.around(tn.idx, m.at)
		rows := in[m.waID]
		switch {
		case len(rows) == 0:
			sk.issue(tn.idx, "ping %d (%s) never stored; the contact got %d answers%s", m.seq, m.waID, got, where)
			continue
		case len(rows) > 1:
			sk.issue(tn.idx, "ping %d (%s) stored %d times%s", m.seq, m.waID, len(rows), where)
		}
		row := rows[0]
		var sent, pending int
		for _, o := range out[row.id] {
			switch o.status {
			case tenant.MsgReplied:
				sent++
			case tenant.MsgPending:
				pending++
			}
		}
		switch {
		case row.status == tenant.MsgReceived:
			sk.issue(tn.idx, "ping %d never answered: still %q, %d replies pending, the contact got %d%s", m.seq, row.status, pending, got, where)
		case row.status == tenant.MsgReplied && (sent != 1 || got != 1):
			sk.issue(tn.idx, "ping %d logged replied with %d replies sent (%d pending), the contact got the answer %d times%s", m.seq, sent, pending, got, where)
		case row.status != tenant.MsgReplied && got > 1:
			sk.issue(tn.idx, "ping %d logged %q (%s), the contact got the answer %d times%s", m.seq, row.status, row.errText, got, where)
		case row.status != tenant.MsgReplied:
			// Logged with a reason: allowed, and listed.
			sk.issue(-2, "tenant %d ping %d logged %q: %s (the contact got %d answers)%s", tn.idx, m.seq, row.status, row.errText, got, where)
		}
		delete(in, m.waID)
	}
	for waID, rows := range in {
		sk.issue(tn.idx, "an inbound row no contact sent: %s %q", waID, rows[0].body)
	}
	for c, byN := range tn.got {
		for n := range byN {
			if n >= len(tn.sent) || tn.sent[n].contact != c {
				sk.issue(tn.idx, "contact %d got an answer to ping %d, which it did not send", c, n)
			}
		}
	}
	for _, o := range tn.odd {
		sk.issue(tn.idx, "unexpected reply: %s", o)
	}
	for _, n := range dups {
		sk.duplicates += n
	}
}

// around names the chaos on the tenant just before and after a moment
// since the start of the load.
func (sk *soak) around(tenantIdx int, at time.Duration) string {
	var before, after *chaosStep
	for i := range sk.plan {
		s := &sk.plan[i]
		if s.tenant != tenantIdx || s.ran == 0 {
			continue
		}
		if s.ran <= at {
			before = s
		} else if after == nil {
			after = s
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; sent at +%.1fs", at.Seconds())
	if before != nil {
		fmt.Fprintf(&b, ", after chaos %s", before)
	}
	if after != nil {
		fmt.Fprintf(&b, ", before chaos %s", after)
	}
	return b.String()
}

// checkResources waits for goroutines and open files to come back near
// what they were under load before the chaos, then, after the manager
// stops, for every whatsmeow goroutine to end.
func (sk *soak) checkResources() {
	gSlack, fdSlack := 20+sk.baseG/50, 20+sk.baseFD/20
	deadline := time.Now().Add(30 * time.Second)
	var g, fd int
	for {
		g, fd = runtime.NumGoroutine(), openFDs()
		if (g <= sk.baseG+gSlack && fd <= sk.baseFD+fdSlack) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	sk.t.Logf("soak: goroutines %d before the chaos, %d after; open files %d before, %d after", sk.baseG, g, sk.baseFD, fd)
	if g > sk.baseG+gSlack {
		sk.issue(-1, "%d goroutines after the chaos, %d before (slack %d):\n%s", g, sk.baseG, gSlack, goroutineSummary(20))
	}
	if fd > sk.baseFD+fdSlack {
		sk.issue(-1, "%d open files after the chaos, %d before (slack %d)", fd, sk.baseFD, fdSlack)
	}

	sk.r.stop()
	sk.r.srv.Close()
	deadline = time.Now().Add(15 * time.Second)
	for {
		left := whatsmeowGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sk.issue(-1, "%d whatsmeow goroutines left after the manager and the fake stopped, by where they wait:\n%s", len(left), countStacks(left, 10))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (sk *soak) report() {
	counts := map[chaosAction]int{}
	for _, s := range sk.plan {
		counts[s.action]++
	}
	var acts []string
	for a := range numChaosActions {
		acts = append(acts, fmt.Sprintf("%s %d", a, counts[a]))
	}
	sk.t.Logf("soak: chaos played: %s; recovery took %s; %d redeliveries logged as duplicates",
		strings.Join(acts, ", "), sk.settled.Round(100*time.Millisecond), sk.duplicates)
	if notes := sk.issues[-2]; len(notes) > 0 {
		sk.t.Logf("soak: %d messages logged with a reason instead of an answer:\n  %s", len(notes), strings.Join(capLines(notes, 20), "\n  "))
		sk.issueCount -= len(notes)
		delete(sk.issues, -2)
	}
	for _, msg := range sk.issues[-1] {
		sk.t.Errorf("[seed %d] %s", sk.p.seed, msg)
	}
	for _, tn := range sk.tenants {
		msgs := sk.issues[tn.idx]
		if len(msgs) == 0 {
			continue
		}
		var chaos, global []string
		for _, s := range sk.plan {
			if s.tenant == tn.idx {
				chaos = append(chaos, s.String())
			}
		}
		for _, g := range sk.plan {
			if !g.action.global() {
				continue
			}
			for _, s := range sk.plan {
				if s.tenant == tn.idx && g.ran <= s.ran+10*time.Second && s.ran <= g.ran+g.d+time.Second {
					global = append(global, fmt.Sprintf("%s (tenant %d)", g, g.tenant))
					break
				}
			}
		}
		sk.t.Errorf("[seed %d] tenant %d (%s, device %s): %d problems:\n  %s\n  chaos on this tenant: %s\n  refusals and stalls (all tenants) near it: %s",
			sk.p.seed, tn.idx, tn.id, tn.dev, len(msgs), strings.Join(capLines(msgs, 15), "\n  "), strings.Join(chaos, "; "), strings.Join(global, "; "))
	}
	if sk.issueCount > 0 {
		sk.t.Logf("soak: %d problems; replay with WABOT_SOAK_SEED=%d WABOT_SOAK=%s (BOT_LOG=1 for the log)", sk.issueCount, sk.p.seed, sk.p.duration)
	}
}

// durN is a random duration in [0, d) from rng.
func durN(rng *rand.Rand, d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(d))) }

func capLines(lines []string, n int) []string {
	if len(lines) <= n {
		return lines
	}
	return append(slices.Clone(lines[:n]), fmt.Sprintf("... and %d more", len(lines)-n))
}

// openFDs counts this process's open file descriptors (0 where /proc is
// missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

func allStacks() []string {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Split(string(buf), "\n\n")
}

func whatsmeowGoroutines() []string {
	var out []string
	for _, g := range allStacks() {
		if strings.Contains(g, "go.mau.fi/whatsmeow.(*Client)") || strings.Contains(g, "whatsmeow/socket.") {
			out = append(out, g)
		}
	}
	return out
}

func goroutineSummary(n int) string { return countStacks(allStacks(), n) }

// countStacks groups goroutines by their first frames in wabot or
// whatsmeow and lists the n most common.
func countStacks(stacks []string, n int) string {
	counts := map[string]int{}
	for _, g := range stacks {
		lines := strings.Split(g, "\n")
		key := ""
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") {
				continue
			}
			if key == "" {
				key = l
			}
			if strings.Contains(l, "wabot/") || strings.Contains(l, "whatsmeow") {
				key = l
				break
			}
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	var b strings.Builder
	for i, k := range keys {
		if i == n {
			break
		}
		fmt.Fprintf(&b, "  %5d %s\n", counts[k], k)
	}
	return b.String()
}
