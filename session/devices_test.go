package session

import (
	"context"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// With PostgreSQL every tenant's device lives in one database: each
// tenant must find its own device after a restart, and a reset must take
// only that tenant's keys.
func TestPostgresDeviceStoresKeepTenantsApart(t *testing.T) {
	t.Parallel()
	r := newRigOn(t, tenant.Postgres, fakewa.Options{}, nil)
	a, b := r.newTenant("Alpha"), r.newTenant("Beta")
	r.start()
	r.link(a)
	r.link(b)
	beforeA, beforeB := r.session(a), r.session(b)
	if beforeA.JID == beforeB.JID {
		t.Fatalf("two tenants share the JID %s", beforeA.JID)
	}
	raw := tenanttest.Raw(t, r.store.Path())
	devices := func() int {
		var n int
		if err := raw.QueryRow(`SELECT COUNT(*) FROM whatsmeow_device`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := devices(); n != 2 {
		t.Fatalf("%d devices stored in PostgreSQL, want 2", n)
	}

	r.restart()
	for id, before := range map[string]tenant.Link{a: beforeA, b: beforeB} {
		s := r.waitSession(id, 20*time.Second, "CONNECTED after restart", func(s tenant.Link) bool {
			return s.State == tenant.StateConnected && s.ConnectedAt.After(before.ConnectedAt)
		})
		if s.JID != before.JID || s.QRCode != "" {
			t.Fatalf("tenant %s after restart: %+v, want its own device %s", id, s, before.JID)
		}
	}

	if err := r.m.Reset(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	r.waitSession(a, 20*time.Second, "a new QR after reset", inState(tenant.StateQRReady))
	if n := devices(); n != 1 {
		t.Fatalf("%d devices stored after resetting one of two, want 1", n)
	}
	if jid, _ := r.store.DeviceJID(context.Background(), a); jid != "" {
		t.Fatalf("the reset tenant still maps to device %s", jid)
	}
	afterReset := r.session(b)
	r.restart()
	r.waitSession(b, 20*time.Second, "the other tenant CONNECTED", func(s tenant.Link) bool {
		return s.State == tenant.StateConnected && s.ConnectedAt.After(afterReset.ConnectedAt) && s.JID == beforeB.JID
	})
	if s := r.session(a); s.State == tenant.StateConnected || s.JID != "" {
		t.Fatalf("the reset tenant came back linked: %+v", s)
	}
}
