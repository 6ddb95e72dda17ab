package tenant_test

import (
	"context"
	"reflect"
	"testing"

	"wabot/tenant"
)

// Everything tenant A has, seen through tenant B's id: B gets its own rows
// or nothing, never A's.
func TestNothingOfOneTenantIsReadableThroughAnother(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	ua, a := newTenant(t, st, "a@example.com", "A")
	ub, b := newTenant(t, st, "b@example.com", "B")

	// Fill A with one of everything.
	if err := st.SaveLink(ctx, tenant.Link{TenantID: a.ID, State: tenant.StateConnected, JID: "15551111111@s.whatsapp.net", PushName: "A shop",
		QRCode: "2@a", ConnectedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveWorker(ctx, tenant.Worker{TenantID: a.ID, Status: tenant.WorkerRunning, Restarts: 3, LastSeenAt: t0}); err != nil {
		t.Fatal(err)
	}
	cfg := tenant.DefaultBotConfig()
	cfg.Rules = []tenant.Rule{{Match: tenant.MatchContains, Pattern: "secret", Reply: "A's answer"}}
	cfg.Webhook.URL = "https://a.example.com/hook"
	if _, err := st.SaveBotConfig(ctx, a.ID, cfg); err != nil {
		t.Fatal(err)
	}
	inA := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, SenderName: "Ann", WAID: "A-IN", Body: "A's secret"})
	if _, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: inA, Chat: chatA, WAID: "A-OUT", Body: "A's answer", Status: tenant.MsgPending}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkWelcomed(ctx, a.ID, chatA); err != nil {
		t.Fatal(err)
	}
	queue(t, st, tenant.WebhookDelivery{ID: "a-d1", TenantID: a.ID, MessageID: inA, URL: cfg.Webhook.URL, Payload: []byte("A"), NextAt: t0})
	if err := st.SetTenantStatus(ctx, a.ID, tenant.StatusSuspended); err != nil {
		t.Fatal(err)
	}

	if got, err := st.TenantByID(ctx, b.ID); err != nil || got.Name != "B" || got.Status != tenant.StatusActive {
		t.Errorf("TenantByID(b) = %+v, %v", got, err)
	}
	if got, err := st.TenantOfUser(ctx, ub.ID); err != nil || got.ID != b.ID {
		t.Errorf("TenantOfUser(b's owner) = %+v, %v", got, err)
	}
	if got, err := st.TenantOfUser(ctx, ua.ID); err != nil || got.ID != a.ID {
		t.Errorf("TenantOfUser(a's owner) = %+v, %v", got, err)
	}
	if s, err := st.LinkOf(ctx, b.ID); err != nil || s.TenantID != b.ID || s.State != tenant.StateQRPending || s.JID != "" || s.QRCode != "" {
		t.Errorf("SessionOf(b) = %+v, %v", s, err)
	}
	if w, err := st.WorkerOf(ctx, b.ID); err != nil || w.TenantID != b.ID || w.Status != tenant.WorkerStopped || w.Restarts != 0 {
		t.Errorf("WorkerOf(b) = %+v, %v", w, err)
	}
	if c, err := st.BotConfigOf(ctx, b.ID); err != nil || !reflect.DeepEqual(c, tenant.DefaultBotConfig()) {
		t.Errorf("BotConfigOf(b) = %+v, %v", c, err)
	}
	if un, err := st.Unanswered(ctx, b.ID); err != nil || len(un) != 0 {
		t.Errorf("Unanswered(b) = %+v, %v", un, err)
	}
	if in, err := st.InboundByID(ctx, b.ID, inA); tenant.ErrorCode(err) != tenant.CodeNotFound || in.Body != "" {
		t.Errorf("InboundByID(b, a's message) = %+v, %v", in, err)
	}
	for _, q := range []tenant.MessageQuery{{}, {Text: "secret"}, {Direction: "out"}, {Status: tenant.MsgPending}} {
		if ms, _, err := st.Messages(ctx, b.ID, q); err != nil || len(ms) != 0 {
			t.Errorf("Messages(b, %+v) = %+v, %v", q, ms, err)
		}
	}
	if ds, err := st.WebhookDeliveries(ctx, b.ID, 100); err != nil || len(ds) != 0 {
		t.Errorf("WebhookDeliveries(b) = %+v, %v", ds, err)
	}
	if first, err := st.MarkWelcomed(ctx, b.ID, chatA); err != nil || !first {
		t.Errorf("MarkWelcomed(b, a's chat) = %v, %v; want a first welcome", first, err)
	}
	// A's suspension is A's alone.
	if connected, total, err := st.ConnectedCount(ctx); err != nil || connected != 0 || total != 1 {
		t.Errorf("ConnectedCount = %d of %d, %v; want 0 of 1 (b, not connected)", connected, total, err)
	}
	overviews, err := st.Overviews(ctx, "")
	if err != nil || len(overviews) != 2 {
		t.Fatalf("Overviews = %+v, %v", overviews, err)
	}
	for _, o := range overviews {
		want := map[string]string{a.ID: "a@example.com", b.ID: "b@example.com"}[o.Tenant.ID]
		if o.Owner != want || o.Link.TenantID != o.Tenant.ID || o.Worker.TenantID != o.Tenant.ID {
			t.Errorf("overview %+v, want owner %s", o, want)
		}
		if o.Tenant.ID == b.ID && (o.Link.JID != "" || o.Worker.Restarts != 0) {
			t.Errorf("b's overview shows a's rows: %+v", o)
		}
	}
}
