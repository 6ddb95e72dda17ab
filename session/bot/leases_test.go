package bot

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"wabot/session"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// An API send that reached an instance not running the tenant is stored
// there and goes out from the instance that runs it, whose sender is woken
// for it: its own idle check comes too late here.
func TestASendQueuedOnAnotherInstanceGoesOutFromTheOwner(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true, IdleCheck: time.Hour}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	carl := phone.NewContact("", "Carl")

	// A second instance over the same database, with its own bot.
	st := tenanttest.Reopen(t, r.store)
	var devices session.DeviceStores
	if st.Dialect() == tenant.Postgres {
		pg, err := session.NewPostgresDevices(context.Background(), tenanttest.URL(t, st), st, r.log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() }) // after the shutdown below
		devices = pg
	}
	other := New(r.opts, r.log, st)
	other.Start()
	m := session.NewManager(session.Config{SessionsDir: filepath.Join(r.dir, "sessions"), InstanceID: "other", Devices: devices}, r.log, st, r.srv, other)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		m.Shutdown(ctx)
		other.Close()
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Running(id) || !r.m.Running(id) {
		t.Fatal("the tenant should run on the first instance only")
	}
	sent, _, err := other.Send(context.Background(), id, tenant.SendRequest{To: "+" + carl.JID().User, Text: "From the other instance"})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := r.store.LinkOf(context.Background(), id); sent.From == "" || sent.From != l.JID {
		t.Fatalf("the send stored on the other instance is from %q, want the linked number %q", sent.From, l.JID)
	}
	expect(t, carl, "From the other instance")
	r.waitStatus(id, sent.ID, tenant.APIDelivered)
}
