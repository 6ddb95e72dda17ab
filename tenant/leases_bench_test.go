package tenant_test

import (
	"context"
	"fmt"
	"testing"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// BenchmarkLeaseRound is one instance's regular turn (heartbeat, renewal,
// claim) while it holds 1000 tenants.
func BenchmarkLeaseRound(b *testing.B) {
	ctx := context.Background()
	st := tenanttest.Open(b)
	for i := range 1000 {
		u, _ := st.EnsureUser(ctx, fmt.Sprintf("bench%d@example.com", i))
		if _, err := st.CreateTenant(ctx, u.ID, fmt.Sprintf("Shop %d", i), true); err != nil {
			b.Fatal(err)
		}
	}
	inst := tenant.Instance{ID: "bench", Hostname: "host"}
	_, c, err := st.LeaseRound(ctx, inst, validity, nil)
	if err != nil || len(c.Claimed) != 1000 {
		b.Fatalf("claimed %d, %v", len(c.Claimed), err)
	}
	held := heldBy(c.Claimed)
	for b.Loop() {
		still, _, err := st.LeaseRound(ctx, inst, validity, held)
		if err != nil || len(still) != 1000 {
			b.Fatalf("renewed %d, %v", len(still), err)
		}
	}
}

// BenchmarkStoreInboundFenced is an inbound message stored under a
// supervisor's fence, against BenchmarkStoreInboundUnfenced without.
func BenchmarkStoreInboundFenced(b *testing.B)   { benchStoreInbound(b, true) }
func BenchmarkStoreInboundUnfenced(b *testing.B) { benchStoreInbound(b, false) }

func benchStoreInbound(b *testing.B, fenced bool) {
	ctx := context.Background()
	st := tenanttest.Open(b)
	u, _ := st.EnsureUser(ctx, "bench@example.com")
	tn, _ := st.CreateTenant(ctx, u.ID, "Shop", true)
	l, ok, err := st.ClaimLease(ctx, tn.ID, "bench", validity)
	if err != nil || !ok {
		b.Fatal(ok, err)
	}
	if fenced {
		ctx = tenant.WithFence(ctx, tn.ID, "bench", l.Epoch)
	}
	i := 0
	for b.Loop() {
		i++
		if _, _, err := st.StoreInbound(ctx, tn.ID, tenant.Inbound{Chat: "1@s.whatsapp.net", WAID: fmt.Sprint("m", i), Kind: "text", Body: "hi", Status: tenant.MsgReceived}); err != nil {
			b.Fatal(err)
		}
	}
}
