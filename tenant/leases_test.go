package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

const validity = 15 * time.Second

func beat(t *testing.T, st *tenant.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := st.HeartbeatInstance(context.Background(), tenant.Instance{ID: id, Hostname: "host", StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
}

func claim(t *testing.T, st *tenant.Store, owner string) tenant.Claim {
	t.Helper()
	c, err := st.ClaimLeases(context.Background(), owner, validity)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func heldBy(ls []tenant.Lease) map[string]int64 {
	out := map[string]int64{}
	for _, l := range ls {
		out[l.TenantID] = l.Epoch
	}
	return out
}

func TestLeasesAreSharedFairlyAndExpiredOnesMove(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	for i := range 5 {
		newTenant(t, st, fmt.Sprintf("o%d@example.com", i), fmt.Sprintf("Shop %d", i))
	}
	beat(t, st, "a", "b")
	a := claim(t, st, "a")
	if a.FairShare != 3 || len(a.Claimed) != 3 {
		t.Fatalf("first of two instances over 5 tenants: %+v, want 3 of a fair share of 3", a)
	}
	b := claim(t, st, "b")
	if len(b.Claimed) != 2 {
		t.Fatalf("second instance claimed %d, want the 2 left", len(b.Claimed))
	}
	if again := claim(t, st, "b"); len(again.Claimed) != 0 {
		t.Fatalf("a held lease was claimed again: %+v", again)
	}
	insts, err := st.LiveInstances(ctx, validity)
	if err != nil || len(insts) != 2 || insts[0].Tenants+insts[1].Tenants != 5 {
		t.Fatalf("instances %+v, %v", insts, err)
	}

	// a renews; b stops renewing. Past validity, b's leases are free, and
	// a (the only live instance now) takes them with a new epoch.
	clk.Advance(10 * time.Second)
	beat(t, st, "a")
	mine, err := st.RenewLeases(ctx, "a", validity, heldBy(a.Claimed))
	if err != nil || len(mine) != 3 {
		t.Fatalf("renewed %+v, %v", mine, err)
	}
	clk.Advance(6 * time.Second)
	beat(t, st, "a")
	moved := claim(t, st, "a")
	if len(moved.Claimed) != 2 || moved.Held != 5 {
		t.Fatalf("after b's leases expired a claimed %+v", moved)
	}
	for _, l := range moved.Claimed {
		if l.Epoch != heldBy(b.Claimed)[l.TenantID]+1 {
			t.Errorf("lease %s moved with epoch %d; b held it under %d", l.TenantID, l.Epoch, heldBy(b.Claimed)[l.TenantID])
		}
	}
	// b comes back: none of its leases is its own any more.
	if still, err := st.RenewLeases(ctx, "b", validity, heldBy(b.Claimed)); err != nil || len(still) != 0 {
		t.Fatalf("a stale owner kept %+v, %v", still, err)
	}

	// Released leases are free at once.
	if err := st.ReleaseLeases(ctx, "a", moved.Claimed); err != nil {
		t.Fatal(err)
	}
	beat(t, st, "b")
	got := claim(t, st, "b")
	if len(got.Claimed) != 2 {
		t.Fatalf("b claimed %d released leases, want 2", len(got.Claimed))
	}
	// A lease in b's name that b does not know it holds runs nowhere: the
	// renewal frees it instead of keeping it.
	keep := heldBy(got.Claimed[:1])
	if still, err := st.RenewLeases(ctx, "b", validity, keep); err != nil || len(still) != 1 {
		t.Fatalf("renewed %+v, %v", still, err)
	}
	if owner, _, err := st.LeaseOf(ctx, got.Claimed[1].TenantID); err != nil || owner != "" {
		t.Fatalf("the unknown lease is still %q's (%v)", owner, err)
	}
}

func TestConcurrentClaimsGiveEachLeaseToOneInstance(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wabot.db")
	st := tenanttest.OpenAt(t, path)
	for i := range 12 {
		newTenant(t, st, fmt.Sprintf("c%d@example.com", i), fmt.Sprintf("Shop %d", i))
	}
	// Three instances, each with its own connections to the one file.
	owners := []string{"x", "y", "z"}
	stores := []*tenant.Store{st, tenanttest.OpenAt(t, path), tenanttest.OpenAt(t, path)}
	beat(t, st, owners...)
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for i, o := range owners {
		wg.Go(func() {
			for range 3 {
				c, err := stores[i].ClaimLeases(context.Background(), o, validity)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, l := range c.Claimed {
					if prev, ok := got[l.TenantID]; ok {
						t.Errorf("%s claimed by %s and %s", l.TenantID, prev, o)
					}
					got[l.TenantID] = o
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != 12 {
		t.Fatalf("%d of 12 leases claimed", len(got))
	}
}

func TestAStaleEpochsWriteIsRefused(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, tn := newTenant(t, st, "fence@example.com", "Fenced")
	beat(t, st, "old")
	old, ok, err := st.ClaimLease(ctx, tn.ID, "old", validity)
	if err != nil || !ok {
		t.Fatalf("claim %v %v", ok, err)
	}
	oldCtx := tenant.WithFence(ctx, tn.ID, "old", old.Epoch)
	if _, _, err := st.StoreInbound(oldCtx, tn.ID, tenant.Inbound{Chat: "1@s.whatsapp.net", WAID: "A", Kind: "text", Body: "hi", Status: tenant.MsgReceived}); err != nil {
		t.Fatalf("the owner's write: %v", err)
	}
	clk.Advance(validity + time.Second)
	beat(t, st, "new")
	nw, ok, err := st.ClaimLease(ctx, tn.ID, "new", validity)
	if err != nil || !ok || nw.Epoch != old.Epoch+1 {
		t.Fatalf("takeover %+v %v %v", nw, ok, err)
	}
	link, err := st.LinkOf(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	link.State = tenant.StateDisconnected
	if err := st.SaveLink(oldCtx, link); !errors.Is(err, tenant.ErrLeaseLost) {
		t.Fatalf("the stale owner's session write: %v, want ErrLeaseLost", err)
	}
	if _, _, err := st.StoreInbound(oldCtx, tn.ID, tenant.Inbound{Chat: "1@s.whatsapp.net", WAID: "B", Kind: "text", Body: "late", Status: tenant.MsgReceived}); !errors.Is(err, tenant.ErrLeaseLost) {
		t.Fatalf("the stale owner's message write: %v, want ErrLeaseLost", err)
	}
	if got, _ := st.LinkOf(ctx, tn.ID); got.State == tenant.StateDisconnected {
		t.Fatal("the refused write changed the row")
	}
	newCtx := tenant.WithFence(ctx, tn.ID, "new", nw.Epoch)
	if err := st.SaveLink(newCtx, link); err != nil {
		t.Fatalf("the new owner's write: %v", err)
	}
}

func TestControlRequestsGoToTheTenantsOwner(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "ca@example.com", "A")
	_, b := newTenant(t, st, "cb@example.com", "B")
	beat(t, st, "one", "two")
	if _, ok, err := st.ClaimLease(ctx, a.ID, "one", validity); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, err := st.ClaimLease(ctx, b.ID, "two", validity); !ok || err != nil {
		t.Fatal(ok, err)
	}
	ra, _ := st.AskControl(ctx, tenant.ControlRequest{TenantID: a.ID, Action: tenant.ControlLinkPhone, Arg: "+15550001111", ExpiresAt: t0.Add(time.Minute)})
	rb, _ := st.AskControl(ctx, tenant.ControlRequest{TenantID: b.ID, Action: tenant.ControlRestart})
	ghost, _ := st.RequestControl(ctx, "tzzzzzzzzzzzzzzzz", tenant.ActionReset)
	one, err := st.ControlRequestsFor(ctx, "one", 10)
	if err != nil || len(one) != 2 || one[0].ID != ra || one[0].Arg != "+15550001111" || one[1].ID != ghost {
		t.Fatalf("one's requests %+v, %v", one, err)
	}
	two, _ := st.ControlRequestsFor(ctx, "two", 10)
	if len(two) != 2 || two[0].ID != rb {
		t.Fatalf("two's requests %+v", two)
	}
	if err := st.FinishControl(ctx, ra, "no number", string(tenant.CodeInvalid)); err != nil {
		t.Fatal(err)
	}
	if o, _ := st.ControlOutcomeOf(ctx, ra); !o.Done || o.Code != string(tenant.CodeInvalid) || o.Result != "no number" {
		t.Fatalf("outcome %+v", o)
	}
	// Past its expiry nobody acts on a request any more.
	ra2, _ := st.AskControl(ctx, tenant.ControlRequest{TenantID: a.ID, Action: tenant.ControlLink, ExpiresAt: t0.Add(time.Second)})
	clk.Advance(2 * time.Second)
	beat(t, st, "one")
	st.RenewLeases(ctx, "one", validity, map[string]int64{a.ID: 1})
	open, err := st.ControlRequestsFor(ctx, "one", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range open {
		if r.ID == ra2 {
			t.Fatal("an expired request is still open")
		}
	}
}
