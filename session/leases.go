package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"wabot/tenant"
)

// Several wabot instances may share one database. A tenant's session runs
// only on the instance holding the tenant's lease (tenant/leases.go): the
// lease loop renews what this instance holds, claims free leases up to its
// fair share and gives up a few above it; a watchdog stops every session
// here when the leases were not renewed in time, before they can expire
// and be claimed elsewhere, so two instances never run one WhatsApp
// device. Actions on a tenant held elsewhere travel as control requests
// to its owner. With one instance (SQLite) the same code holds every
// lease.

// Lease defaults: renewed every 5 s, valid 15 s, sessions stopped 5 s
// before an unrenewed lease expires.
const (
	DefaultLeaseRenew = 5 * time.Second
	DefaultLeaseValid = 15 * time.Second
	// An SQLite installation's single instance (see NewManager).
	SQLiteInstanceID = "local"
	SQLiteLeaseValid = 2 * time.Minute
)

// Waker channels: control requests for an instance, and their answers.
const (
	controlChannelPrefix = "wabot_control_"
	controlDoneChannel   = "wabot_control_done"
)

// NewInstanceID returns the host's name with a random suffix: a restarted
// process is a new instance, which never mistakes the leases of the one
// before it for its own.
func NewInstanceID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "wabot"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// LeaseObserver, when the Config's Observer implements it, hears each
// lease that moves: "acquired", "released" (given up on purpose) or
// "lost" (claimed elsewhere, or not renewed in time).
type LeaseObserver interface {
	LeaseMoved(how string)
}

// leases is the Manager's share of the leases.
type leases struct {
	started time.Time
	host    string

	// round serializes what changes which leases are held: a round, a
	// claim for one tenant, the release of shed leases.
	round sync.Mutex

	mu     sync.Mutex
	held   map[string]tenant.Lease
	parked map[string]bool // stopped by Stop (suspension): not started again until Add
	// shedding: held, but being given up; its session is stopping and is
	// not started again.
	shedding map[string]bool
	until    time.Time // local clock: sessions stop then unless a renewal moves it
	// renewed is signalled after each renewal, so the watchdog re-arms.
	renewed chan struct{}

	count  atomic.Int64 // len(held), for metrics
	frozen atomic.Bool  // tests: no more renewals, as if the database were gone

	lastMsgID int64 // queued sends seen up to here (the control loop's)

	inflightMu sync.Mutex
	inflight   map[int64]bool // control requests being carried out

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (l *leases) init() {
	l.started = time.Now()
	l.host, _ = os.Hostname()
	l.held = map[string]tenant.Lease{}
	l.parked = map[string]bool{}
	l.shedding = map[string]bool{}
	l.inflight = map[int64]bool{}
	l.renewed = make(chan struct{}, 1)
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

func (l *leases) lease(id string) (tenant.Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	x, ok := l.held[id]
	return x, ok
}

func (l *leases) isShedding(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shedding[id]
}

func (l *leases) epochs() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.held))
	for id, x := range l.held {
		out[id] = x.Epoch
	}
	return out
}

func (l *leases) hold(x tenant.Lease) {
	l.mu.Lock()
	l.held[x.TenantID] = x
	l.count.Store(int64(len(l.held)))
	l.mu.Unlock()
}

func (l *leases) park(id string, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		l.parked[id] = true
	} else {
		delete(l.parked, id)
	}
}

// LeasesHeld is how many tenants this instance holds.
func (m *Manager) LeasesHeld() int { return int(m.lease.count.Load()) }

// InstanceID is this instance's id in the instances table.
func (m *Manager) InstanceID() string { return m.cfg.InstanceID }

func (m *Manager) moved(how string, n int) {
	if o, ok := m.cfg.Observer.(LeaseObserver); ok {
		for range n {
			o.LeaseMoved(how)
		}
	}
}

func (m *Manager) instance(draining bool) tenant.Instance {
	return tenant.Instance{ID: m.cfg.InstanceID, Hostname: m.lease.host, StartedAt: m.lease.started, Draining: draining}
}

// beat records this instance as alive, draining or not.
func (m *Manager) beat(ctx context.Context, draining bool) error {
	return m.store.HeartbeatInstance(ctx, m.instance(draining))
}

// leaseRound renews, claims, starts and stops sessions to match, and sheds
// what is above the fair share. It returns an error when the leases could
// not be renewed (the watchdog then stops the sessions in time).
func (m *Manager) leaseRound(ctx context.Context) error {
	m.lease.round.Lock()
	defer m.lease.round.Unlock()
	start := time.Now() // before the statements: the leases last at least validity from here
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseValid-m.cfg.LeaseMargin)
	defer cancel()
	before := m.lease.epochs()
	still, claim, err := m.store.LeaseRound(ctx, m.instance(false), m.cfg.LeaseValid, before)
	if err != nil {
		return err
	}
	held := make(map[string]tenant.Lease, len(still)+len(claim.Claimed))
	for _, x := range still {
		held[x.TenantID] = x
	}
	for _, x := range claim.Claimed {
		held[x.TenantID] = x
	}
	lost := 0
	m.lease.mu.Lock()
	for id := range before {
		if _, ok := held[id]; !ok {
			lost++
			delete(m.lease.parked, id)
			delete(m.lease.shedding, id)
		}
	}
	n := len(held)
	m.lease.held = held
	m.lease.count.Store(int64(n))
	m.lease.until = start.Add(m.cfg.LeaseValid - m.cfg.LeaseMargin)
	m.lease.mu.Unlock()
	select {
	case m.lease.renewed <- struct{}{}:
	default:
	}
	if lost > 0 {
		m.log.Warn("tenant leases moved to other instances", "count", lost)
	}
	m.moved("lost", lost)
	m.moved("acquired", len(claim.Claimed))
	m.log.Debug("lease round", "held", n, "claimed", len(claim.Claimed), "lost", lost, "fair_share", claim.FairShare, "took", time.Since(start))
	m.reconcile()
	m.lease.mu.Lock()
	over := n - len(m.lease.shedding) - claim.FairShare
	m.lease.mu.Unlock()
	if claim.FairShare > 0 && over > 0 {
		m.shed(min(over, m.cfg.LeaseShed))
	}
	return nil
}

// reconcile stops the sessions of leases no longer held (or held under a
// new epoch) and starts those of held tenants not suspended or stopped.
func (m *Manager) reconcile() {
	m.lease.mu.Lock()
	want := map[string]int64{}
	all := map[string]int64{}
	for id, x := range m.lease.held {
		if m.lease.shedding[id] {
			continue // stopping: it counts as not held here
		}
		all[id] = x.Epoch
		if !x.Suspended && !m.lease.parked[id] {
			want[id] = x.Epoch
		}
	}
	m.lease.mu.Unlock()
	m.mu.Lock()
	var gone []*supervisor
	for id, s := range m.sups {
		// A suspended tenant's running session is not stopped here: its
		// status may be older than a resume; Stop ends it.
		if e, ok := all[id]; !ok || e != s.epoch {
			gone = append(gone, s)
			delete(m.sups, id)
		}
	}
	m.mu.Unlock()
	m.stopSupervisors(gone)
	for id, e := range want {
		if err := m.startSupervisor(id, e); err != nil && !errors.Is(err, errShuttingDown) {
			m.log.Error("cannot start tenant session", "tenant", id, "err", err)
		}
	}
}

// stopSupervisors stops sessions whose lease is gone or going: each
// disconnects its client and writes nothing more, since its successor may
// already be writing. It waits at most LeaseMargin for them.
func (m *Manager) stopSupervisors(ss []*supervisor) {
	if len(ss) == 0 {
		return
	}
	for _, s := range ss {
		s.quiet.Store(true)
		s.cancel()
	}
	deadline := time.After(m.cfg.LeaseMargin)
	for _, s := range ss {
		select {
		case <-s.done:
		case <-deadline:
			m.log.Error("a session did not stop before its lease could expire", "tenant", s.id)
			return
		}
	}
}

// shed gives up n of the longest-held leases, in the background so the
// renewals go on: their sessions disconnect (writing their last rows),
// then the leases are released for an instance below its share.
func (m *Manager) shed(n int) {
	m.lease.mu.Lock()
	all := make([]tenant.Lease, 0, len(m.lease.held))
	for id, x := range m.lease.held {
		if !m.lease.shedding[id] {
			all = append(all, x)
		}
	}
	slices.SortFunc(all, func(a, b tenant.Lease) int { return a.AcquiredAt.Compare(b.AcquiredAt) })
	out := all[:min(n, len(all))]
	for _, x := range out {
		m.lease.shedding[x.TenantID] = true
	}
	m.lease.mu.Unlock()
	m.mu.Lock()
	var gone []*supervisor
	for _, x := range out {
		if s := m.sups[x.TenantID]; s != nil {
			gone = append(gone, s)
			delete(m.sups, x.TenantID)
		}
	}
	m.mu.Unlock()
	m.lease.wg.Go(func() {
		for _, s := range gone {
			s.cancel()
		}
		for _, s := range gone {
			<-s.done
		}
		m.lease.round.Lock()
		defer m.lease.round.Unlock()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.lease.ctx), 10*time.Second)
		defer cancel()
		if err := m.store.ReleaseLeases(ctx, m.cfg.InstanceID, out); err != nil {
			// Still held (and renewed): the next round sheds again.
			m.log.Warn("cannot release tenant leases", "err", err)
			m.lease.mu.Lock()
			for _, x := range out {
				delete(m.lease.shedding, x.TenantID)
			}
			m.lease.mu.Unlock()
			return
		}
		m.lease.mu.Lock()
		for _, x := range out {
			delete(m.lease.held, x.TenantID)
			delete(m.lease.shedding, x.TenantID)
			delete(m.lease.parked, x.TenantID)
		}
		m.lease.count.Store(int64(len(m.lease.held)))
		m.lease.mu.Unlock()
		m.moved("released", len(out))
		m.log.Info("gave tenants up to other instances", "count", len(out))
	})
}

// leaseLoop runs a lease round every LeaseRenew until the Manager stops.
func (m *Manager) leaseLoop() {
	t := time.NewTicker(m.cfg.LeaseRenew)
	defer t.Stop()
	for {
		select {
		case <-m.lease.ctx.Done():
			return
		case <-t.C:
		}
		if m.lease.frozen.Load() {
			continue
		}
		if err := m.leaseRound(m.lease.ctx); err != nil && m.lease.ctx.Err() == nil {
			m.log.Warn("cannot renew tenant leases; sessions stop if this lasts", "err", err)
		}
	}
}

// leaseWatchdog stops every session here once the leases were not renewed
// for LeaseValid − LeaseMargin: whatever holds up the renewals (a database
// out of reach, a long pause), the clients are gone before another
// instance may claim the leases. A later renewal starts them again.
func (m *Manager) leaseWatchdog() {
	for {
		m.lease.mu.Lock()
		until := m.lease.until
		m.lease.mu.Unlock()
		timer := time.NewTimer(time.Until(until))
		select {
		case <-m.lease.ctx.Done():
			timer.Stop()
			return
		case <-m.lease.renewed:
			timer.Stop()
			continue
		case <-timer.C:
		}
		m.lease.mu.Lock()
		late := time.Now().After(m.lease.until)
		m.lease.mu.Unlock()
		if !late {
			continue
		}
		m.mu.Lock()
		var all []*supervisor
		for id, s := range m.sups {
			all = append(all, s)
			delete(m.sups, id)
		}
		m.mu.Unlock()
		if len(all) > 0 {
			m.log.Error("tenant leases were not renewed in time: disconnecting every session here before another instance takes them", "sessions", len(all))
			m.moved("lost", len(all))
		}
		m.stopSupervisors(all)
		select {
		case <-m.lease.ctx.Done():
			return
		case <-m.lease.renewed:
		}
	}
}

var errShuttingDown = errors.New("session manager is shutting down")

// startSupervisor runs the tenant's supervisor under epoch unless one runs.
func (m *Manager) startSupervisor(tenantID string, epoch int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shutdown {
		return errShuttingDown
	}
	if _, ok := m.sups[tenantID]; ok {
		return nil
	}
	s := newSupervisor(m, tenantID, epoch)
	m.sups[tenantID] = s
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.loop()
	}()
	return nil
}

// target finds where the tenant's session runs: here (its supervisor), or
// on the instance owner. A tenant whose lease is free or expired is
// claimed and started here. ErrNotRunning: held here but stopped
// (suspended), or no such tenant.
func (m *Manager) target(ctx context.Context, tenantID string) (s *supervisor, owner string, err error) {
	m.mu.Lock()
	s = m.sups[tenantID]
	m.mu.Unlock()
	if s != nil {
		return s, "", nil
	}
	if _, ok := m.lease.lease(tenantID); ok {
		return nil, "", ErrNotRunning
	}
	owner, l, err := m.store.LeaseOf(ctx, tenantID)
	if err != nil {
		return nil, "", err
	}
	if owner != "" && owner != m.cfg.InstanceID && l.ExpiresAt.After(time.Now()) {
		return nil, owner, nil
	}
	m.lease.round.Lock()
	l, ok, err := m.store.ClaimLease(ctx, tenantID, m.cfg.InstanceID, m.cfg.LeaseValid)
	if ok {
		m.lease.hold(l)
	}
	m.lease.round.Unlock()
	if err != nil {
		return nil, "", err
	}
	if !ok {
		if owner, _, err = m.store.LeaseOf(ctx, tenantID); err != nil {
			return nil, "", err
		}
		if owner == "" || owner == m.cfg.InstanceID {
			return nil, "", ErrNotRunning
		}
		return nil, owner, nil
	}
	m.moved("acquired", 1)
	m.lease.mu.Lock()
	parked := m.lease.parked[tenantID]
	m.lease.mu.Unlock()
	if l.Suspended || parked {
		return nil, "", ErrNotRunning
	}
	if err := m.startSupervisor(tenantID, l.Epoch); err != nil {
		return nil, "", err
	}
	s, err = m.get(tenantID)
	return s, "", err
}

// command runs cmd on the tenant's supervisor, here or on its owner.
func (m *Manager) command(ctx context.Context, tenantID string, cmd command) (string, error) {
	s, owner, err := m.target(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if owner != "" {
		return m.ask(ctx, owner, tenantID, controlActions[cmd.kind], cmd.phone)
	}
	return s.do(ctx, cmd)
}

var controlActions = map[cmdKind]tenant.Action{
	cmdLink: tenant.ControlLink, cmdLinkPhone: tenant.ControlLinkPhone, cmdRestart: tenant.ControlRestart,
	cmdReset: tenant.ControlReset, cmdLogout: tenant.ControlLogout,
}

// errNoAnswer: the owner did not carry the request out in time.
var errNoAnswer = &tenant.Error{Code: tenant.CodeUnavailable, Msg: "the wabot instance running this workspace did not answer in time; try again"}

// codeTimeout marks a request that ran out of time on its owner.
const codeTimeout = "timeout"

// ask writes a control request for the tenant's owner and waits for its
// answer until ctx ends (a minute at most).
func (m *Manager) ask(parent context.Context, owner, tenantID string, action tenant.Action, arg string) (string, error) {
	ctx, cancel := context.WithTimeout(parent, time.Minute)
	defer cancel()
	exp, _ := ctx.Deadline()
	// Listening before the request is written: no answer is missed.
	wake, stop := m.cfg.Waker.Listen(controlDoneChannel)
	defer stop()
	id, err := m.store.AskControl(ctx, tenant.ControlRequest{TenantID: tenantID, Action: action, Arg: arg, ExpiresAt: exp})
	if err != nil {
		return "", err
	}
	if err := m.cfg.Waker.Notify(ctx, controlChannelPrefix+owner); err != nil {
		m.log.Warn("cannot wake the owner of a tenant; it finds the request when it next looks", "tenant", tenantID, "err", err)
	}
	for {
		o, err := m.store.ControlOutcomeOf(ctx, id)
		if err != nil && ctx.Err() == nil {
			return "", err
		}
		if o.Done {
			return o.Result, outcomeErr(o)
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return "", parent.Err() // the caller's own deadline, as if it ran here
			}
			return "", errNoAnswer
		case <-wake:
		}
	}
}

// outcomeErr turns a request's recorded failure back into the error the
// owner's action returned, code and message.
func outcomeErr(o tenant.ControlOutcome) error {
	switch o.Code {
	case "":
		return nil
	case codeTimeout:
		return context.DeadlineExceeded
	case tenant.CodeFailed:
		return errors.New(o.Result)
	}
	if o.Code == string(ErrNotRunning.Code) && o.Result == ErrNotRunning.Msg {
		return ErrNotRunning
	}
	return &tenant.Error{Code: tenant.Code(o.Code), Msg: o.Result}
}

// controlLoop carries out the control requests for tenants held here,
// wakes the senders of tenants whose sends another instance queued, and
// refreshes live pages of tenants held elsewhere, on every wake-up and
// every ControlPoll.
func (m *Manager) controlLoop() {
	ctx := m.lease.ctx
	wake, stop := m.cfg.Waker.Listen(controlChannelPrefix + m.cfg.InstanceID)
	defer stop()
	t := time.NewTicker(m.cfg.ControlPoll)
	defer t.Stop()
	if id, err := m.store.LastMessageID(ctx); err == nil {
		m.lease.lastMsgID = id
	}
	for {
		m.serveControl(ctx)
		m.wakeSenders(ctx)
		m.refreshRemote()
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}

func (m *Manager) serveControl(ctx context.Context) {
	if m.lease.frozen.Load() {
		return
	}
	reqs, err := m.store.ControlRequestsFor(ctx, m.cfg.InstanceID, 20)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot read control requests", "err", err)
		}
		return
	}
	for _, r := range reqs {
		m.lease.inflightMu.Lock()
		busy := m.lease.inflight[r.ID]
		m.lease.inflight[r.ID] = true
		m.lease.inflightMu.Unlock()
		if busy {
			continue
		}
		m.lease.wg.Go(func() {
			defer func() {
				m.lease.inflightMu.Lock()
				delete(m.lease.inflight, r.ID)
				m.lease.inflightMu.Unlock()
			}()
			m.carryOut(ctx, r)
		})
	}
}

// carryOut runs one request and records its answer.
func (m *Manager) carryOut(ctx context.Context, r tenant.ControlRequest) {
	limit := time.Minute
	if !r.ExpiresAt.IsZero() {
		limit = min(limit, time.Until(r.ExpiresAt))
	}
	actx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var result string
	var err error
	cli := false
	switch r.Action {
	case tenant.ControlStart:
		err = m.Add(r.TenantID)
	case tenant.ControlStop:
		err = m.Stop(actx, r.TenantID)
	case tenant.ControlLink:
		err = m.Link(actx, r.TenantID)
	case tenant.ControlLinkPhone:
		result, err = m.LinkPhone(actx, r.TenantID, r.Arg)
	case tenant.ControlRestart:
		err = m.Restart(actx, r.TenantID)
	case tenant.ControlReset:
		err = m.Reset(actx, r.TenantID)
	case tenant.ControlLogout:
		err = m.Logout(actx, r.TenantID)
	default: // the command line's admin actions, audited as its
		cli = true
		var t tenant.Tenant
		if t, err = m.store.TenantByID(actx, r.TenantID); err == nil {
			err = m.Apply(actx, m.cfg.ControlActor, t, r.Action)
		}
	}
	code := ""
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		code = codeTimeout
	case tenant.ErrorCode(err) != "":
		code = string(tenant.ErrorCode(err))
	default:
		code = tenant.CodeFailed
	}
	if cli {
		result = "done"
		if err != nil {
			result = "failed: " + err.Error()
		}
		m.log.Info("command-line request", "tenant", r.TenantID, "action", r.Action, "result", result)
	} else if err != nil {
		result = err.Error()
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if err := m.store.FinishControl(fctx, r.ID, result, code); err != nil {
		m.log.Error("cannot record a control request's result", "tenant", r.TenantID, "action", r.Action, "err", err)
		return
	}
	m.cfg.Waker.Notify(fctx, controlDoneChannel)
}

// SendsQueuedWaker is a TenantPipeline that can be told that sends were
// queued for it by another instance.
type SendsQueuedWaker interface {
	SendsQueued()
}

// wakeSenders tells the pipelines of tenants held here about sends queued
// since the last look: the API request that queued them may have reached
// another instance, which cannot wake this one's sender itself.
func (m *Manager) wakeSenders(ctx context.Context) {
	ids, last, err := m.store.QueuedSendsAfter(ctx, m.lease.lastMsgID)
	if err != nil {
		return
	}
	m.lease.lastMsgID = last
	for _, id := range ids {
		m.mu.Lock()
		s := m.sups[id]
		m.mu.Unlock()
		if s == nil {
			continue
		}
		s.currentMu.RLock()
		p := s.currentPipe
		s.currentMu.RUnlock()
		if w, ok := p.(SendsQueuedWaker); ok {
			w.SendsQueued()
		}
	}
}

// refreshRemote signals the subscribers of tenants whose session runs
// elsewhere: their rows change without this process knowing, so live
// pages re-read them every ControlPoll.
func (m *Manager) refreshRemote() {
	for _, id := range m.subscribers.tenants() {
		if !m.Running(id) {
			m.subscribers.notify(id)
		}
	}
}

// startLeases claims this instance's share and starts its sessions, then
// runs the lease loop, its watchdog and the control loop.
func (m *Manager) startLeases(ctx context.Context) error {
	if err := m.leaseRound(ctx); err != nil {
		return err
	}
	m.lease.wg.Go(m.leaseLoop)
	m.lease.wg.Go(m.leaseWatchdog)
	m.lease.wg.Go(m.controlLoop)
	return nil
}

// stopLeaseLoops ends the loops and tells the other instances that this
// one is going: they count it out of the fair share at once.
func (m *Manager) stopLeaseLoops(ctx context.Context) {
	m.lease.cancel()
	m.lease.wg.Wait()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.beat(ctx, true); err != nil {
		m.log.Warn("cannot mark this instance as draining", "err", err)
	}
}

// releaseLeases, once every session here stopped, gives the leases up so
// another instance takes them at its next round, and removes this
// instance.
func (m *Manager) releaseLeases(ctx context.Context) error {
	m.lease.round.Lock()
	defer m.lease.round.Unlock()
	m.lease.mu.Lock()
	held := make([]tenant.Lease, 0, len(m.lease.held))
	for _, x := range m.lease.held {
		held = append(held, x)
	}
	m.lease.held = map[string]tenant.Lease{}
	m.lease.count.Store(0)
	m.lease.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := m.store.ReleaseLeases(ctx, m.cfg.InstanceID, held)
	if err == nil {
		m.moved("released", len(held))
	}
	return errors.Join(err, m.store.RemoveInstance(ctx, m.cfg.InstanceID))
}

// Fence returns ctx carrying the lease that the supervisor behind out runs
// under: a pipeline's writes made with it are refused (tenant.ErrLeaseLost)
// once the lease moved to another instance.
func Fence(ctx context.Context, out Sender) context.Context {
	if s, ok := out.(*supervisor); ok {
		return tenant.WithFence(ctx, s.id, s.m.cfg.InstanceID, s.epoch)
	}
	return ctx
}
