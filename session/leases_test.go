package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wabot/session/fakewa"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// Several Managers over one database stand for several wabot instances:
// each has its own instance id and its own connections to the database.
// On SQLite they share the sessions folder as instances share the device
// stores in PostgreSQL; on PostgreSQL (WABOT_TEST_BACKEND=postgres) each
// has its own device-store pool on the shared database.

// leaseRig shortens the lease timings so moves happen within seconds.
func leaseRig(t *testing.T) *rig {
	waker := tenant.NewPollWaker(100 * time.Millisecond)
	return newRig(t, fakewa.Options{}, func(c *Config) {
		// Short enough to move within seconds, long enough that a busy
		// machine's slow write does not stop every session.
		c.LeaseRenew = 250 * time.Millisecond
		c.LeaseValid = 4 * time.Second
		c.LeaseMargin = 1500 * time.Millisecond
		c.ControlPoll = 100 * time.Millisecond
		c.Waker = waker // one process: notifications reach the other manager at once
	})
}

// instance starts another Manager over the rig's database file.
func (r *rig) instance(name string) *Manager {
	r.t.Helper()
	cfg := r.cfg
	var st *tenant.Store
	if r.store.Dialect() == tenant.Postgres {
		// Another instance: its own pools on the same database.
		st = tenanttest.Reopen(r.t, r.store)
		pg, err := NewPostgresDevices(context.Background(), tenanttest.URL(r.t, st), st, r.log)
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { pg.Close() }) // after the manager's shutdown below
		cfg.Devices = pg
	} else {
		st = tenanttest.Reopen(r.t, r.store)
	}
	cfg.InstanceID = name
	m := NewManager(cfg, r.log, st, r.srv, logPipeline{r.log})
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		m.Shutdown(ctx)
	})
	if err := m.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return m
}

// devices links n tenants on the rig's manager and returns their ids and
// device JIDs.
func (r *rig) linkedTenants(n int) ([]string, map[string]types.JID) {
	r.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.newTenant("Leased " + string(rune('A'+i)))
	}
	r.start()
	jids := map[string]types.JID{}
	for _, id := range ids {
		r.link(id)
		jids[id] = deviceJID(r.t, r, id)
	}
	return ids, jids
}

// runsOn reports which of ms runs the tenant's session with its device
// online, "" when none or more than one does.
func runsOn(r *rig, id string, jid types.JID, ms ...*Manager) *Manager {
	var on *Manager
	for _, m := range ms {
		if m.Running(id) {
			if on != nil {
				return nil
			}
			on = m
		}
	}
	if on == nil || !r.srv.Online(jid) || r.session(id).State != tenant.StateConnected {
		return nil
	}
	return on
}

func noConflicts(t *testing.T, srv *fakewa.Server) {
	t.Helper()
	if c := srv.AllConflicts(); len(c) > 0 {
		t.Fatalf("WhatsApp saw devices replaced by a second connection: %v", c)
	}
}

func TestTwoInstancesShareTenantsAndShutdownHandsThemOver(t *testing.T) {
	t.Parallel()
	r := leaseRig(t)
	ids, jids := r.linkedTenants(6)
	a := r.m
	b := r.instance("b")
	// a gives up a few leases a round until each holds its share.
	waitUntil(t, 60*time.Second, "the tenants shared 3 and 3, all connected", func() bool {
		on := map[*Manager]int{}
		for _, id := range ids {
			on[runsOn(r, id, jids[id], a, b)]++
		}
		return on[a] == 3 && on[b] == 3
	})
	insts, err := r.store.LiveInstances(context.Background(), r.cfg.LeaseValid)
	if err != nil || len(insts) != 2 || insts[0].Tenants != 3 || insts[1].Tenants != 3 {
		t.Fatalf("instances %+v, %v", insts, err)
	}
	noConflicts(t, r.srv)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "every tenant connected on b", func() bool {
		for _, id := range ids {
			if runsOn(r, id, jids[id], b) != b {
				return false
			}
		}
		return true
	})
	if b.LeasesHeld() != 6 {
		t.Fatalf("b holds %d leases, want 6", b.LeasesHeld())
	}
	noConflicts(t, r.srv)
}

func TestAnInstanceThatCannotRenewDisconnectsBeforeAnotherTakesOver(t *testing.T) {
	t.Parallel()
	r := leaseRig(t)
	ids, jids := r.linkedTenants(2)
	a := r.m
	epochs := a.lease.epochs()
	b := r.instance("b")
	// a stops renewing, as if its database were out of reach: it must
	// disconnect its clients before b may claim them.
	a.lease.frozen.Store(true)
	waitUntil(t, 30*time.Second, "both tenants connected on b", func() bool {
		return runsOn(r, ids[0], jids[ids[0]], a, b) == b && runsOn(r, ids[1], jids[ids[1]], a, b) == b
	})
	noConflicts(t, r.srv)
	// What a's supervisor might still write arrives too late.
	stale := tenant.WithFence(context.Background(), ids[0], a.InstanceID(), epochs[ids[0]])
	link := r.session(ids[0])
	link.State = tenant.StateDisconnected
	if err := r.store.SaveLink(stale, link); !errors.Is(err, tenant.ErrLeaseLost) {
		t.Fatalf("a stale owner's write: %v, want ErrLeaseLost", err)
	}
	if s := r.session(ids[0]); s.State != tenant.StateConnected {
		t.Fatalf("the refused write changed the row: %s", s.State)
	}
	// Back, a finds its leases gone and runs nothing twice.
	a.lease.frozen.Store(false)
	waitUntil(t, 30*time.Second, "a to share the tenants again", func() bool {
		return runsOn(r, ids[0], jids[ids[0]], a, b) != nil && runsOn(r, ids[1], jids[ids[1]], a, b) != nil && a.LeasesHeld() == 1
	})
	noConflicts(t, r.srv)
}

func TestActionsOnATenantHeldElsewhereReachItsOwner(t *testing.T) {
	t.Parallel()
	r := leaseRig(t)
	ids, jids := r.linkedTenants(1)
	linked := ids[0]
	fresh := r.newTenant("Unlinked")
	a := r.m
	if err := a.Add(fresh); err != nil {
		t.Fatal(err)
	}
	b := r.instance("b")
	// Two tenants, two instances: a gives one up.
	waitUntil(t, 30*time.Second, "one lease each", func() bool { return a.LeasesHeld() == 1 && b.LeasesHeld() == 1 })
	owner := func(id string) (here, there *Manager) {
		if a.Running(id) {
			return a, b
		}
		return b, a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A link attempt asked of the other instance shows a QR code.
	_, other := owner(fresh)
	changed, unsubscribe := other.Subscribe(fresh)
	defer unsubscribe()
	if err := other.Link(ctx, fresh); err != nil {
		t.Fatalf("link through the other instance: %v", err)
	}
	r.waitSession(fresh, 20*time.Second, "a QR code", inState(tenant.StateQRReady))
	select {
	case <-changed: // a live page on the other instance re-reads the row
	case <-ctx.Done():
		t.Fatal("the other instance's live page was never told to re-read")
	}
	// A pairing code comes back from the owner.
	code, err := other.LinkPhone(ctx, fresh, "+"+r.srv.NewPhone("").Number())
	if err != nil || len(code) != 9 {
		t.Fatalf("pairing code through the other instance: %q, %v", code, err)
	}

	// A restart asked of the other instance reconnects on the owner.
	here, other := owner(linked)
	before := r.worker(linked).Restarts
	connected := r.session(linked).ConnectedAt
	if err := other.Restart(ctx, linked); err != nil {
		t.Fatalf("restart through the other instance: %v", err)
	}
	if w := r.worker(linked); w.Restarts != before+1 {
		t.Fatalf("restarts %d -> %d", before, w.Restarts)
	}
	r.waitSession(linked, 20*time.Second, "CONNECTED again", func(s tenant.Link) bool {
		return s.State == tenant.StateConnected && s.ConnectedAt.After(connected)
	})
	if !here.Running(linked) || other.Running(linked) {
		t.Fatal("the restart moved the session")
	}
	// Suspended through the other instance: stopped on its owner, and a
	// command then says so as it would there.
	tn, err := r.store.TenantByID(ctx, linked)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Apply(ctx, tenant.User{ID: "admin", Email: "admin@example.com"}, tn, tenant.ActionSuspend); err != nil {
		t.Fatalf("suspend through the other instance: %v", err)
	}
	waitUntil(t, 10*time.Second, "the device offline", func() bool { return !r.srv.Online(jids[linked]) })
	if here.Running(linked) {
		t.Fatal("the owner still runs a suspended tenant")
	}
	if err := other.Restart(ctx, linked); err != ErrNotRunning {
		t.Fatalf("restart of a suspended tenant through the other instance: %v, want ErrNotRunning", err)
	}
	noConflicts(t, r.srv)
}
