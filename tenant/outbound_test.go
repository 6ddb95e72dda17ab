package tenant_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

var sendLim = tenant.QueueLimits{MaxQueued: 3, IdempotencyTTL: 24 * time.Hour}

func queueOut(t *testing.T, st *tenant.Store, tenantID, key, waID string) (tenant.APIMessage, bool) {
	t.Helper()
	m, created, err := st.QueueOutbound(context.Background(), tenantID, tenant.NewOutbound{
		Chat: "15550001111@s.whatsapp.net", Text: "hello", WAID: waID, IdempotencyKey: key, CheckNumber: true,
	}, sendLim)
	if err != nil {
		t.Fatal(err)
	}
	return m, created
}

// The same Idempotency-Key within 24 hours returns the first message and
// stores nothing; after 24 hours the key is free again; another tenant's
// key of the same name is its own.
func TestQueueOutboundIdempotency(t *testing.T) {
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	first, created := queueOut(t, st, a.ID, "order-1", "WA1")
	if !created || first.Status != tenant.APIQueued || !first.FirstContact || first.WAID != "WA1" {
		t.Fatalf("first = %+v, created %v", first, created)
	}
	clk.Advance(23 * time.Hour)
	again, created := queueOut(t, st, a.ID, "order-1", "WA2")
	if created || again.ID != first.ID || again.WAID != "WA1" {
		t.Fatalf("same key gave %+v, created %v; want message %d again", again, created, first.ID)
	}
	if other, created := queueOut(t, st, b.ID, "order-1", "WA3"); !created || other.ID == first.ID {
		t.Fatalf("tenant B's key returned %+v, created %v", other, created)
	}
	clk.Advance(2 * time.Hour)
	later, created := queueOut(t, st, a.ID, "order-1", "WA4")
	if !created || later.ID == first.ID || later.FirstContact {
		t.Fatalf("an expired key gave %+v, created %v; want a new message that is not the chat's first", later, created)
	}
	if _, _, err := st.QueueOutbound(context.Background(), a.ID, tenant.NewOutbound{Chat: "x@s.whatsapp.net", Text: "q", WAID: "W", ReplyTo: 999999}, sendLim); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Fatalf("quoting a missing message: %v", err)
	}
}

// At the queue bound a send is refused with CodeTooMany and nothing is
// stored; a tenant's own bound overrides the default.
func TestQueueOutboundBound(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	_, a := newTenant(t, st, "a@example.com", "A")
	for i := range 3 {
		queueOut(t, st, a.ID, "", "WA"+string(rune('0'+i)))
	}
	_, _, err := st.QueueOutbound(ctx, a.ID, tenant.NewOutbound{Chat: "1@s.whatsapp.net", Text: "x", WAID: "WAX", IdempotencyKey: "k"}, sendLim)
	wantCode(t, err, tenant.CodeTooMany)
	if q, _ := st.QueuedOutbound(ctx, a.ID, 100); len(q) != 3 {
		t.Fatalf("%d queued after a refused send, want 3", len(q))
	}
}

func TestQueueOutboundTenantBound(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	_, a := newTenant(t, st, "a@example.com", "A")
	if err := st.SetSendQueueMax(ctx, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	queueOut(t, st, a.ID, "", "WA1")
	_, _, err := st.QueueOutbound(ctx, a.ID, tenant.NewOutbound{Chat: "1@s.whatsapp.net", Text: "x", WAID: "WA2"}, sendLim)
	wantCode(t, err, tenant.CodeTooMany)
}

// Receipts move a message forward only: a read message stays read when a
// late delivery receipt arrives, and a receipt that overtook the send is
// kept when the send is recorded.
func TestReceiptsNeverGoBackwards(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	m, _ := queueOut(t, st, a.ID, "", "WA1")
	if got, err := st.ApplyReceipt(ctx, b.ID, []string{"WA1"}, tenant.APIRead, t0); err != nil || len(got) != 0 {
		t.Fatalf("another tenant's receipt changed %v (%v)", got, err)
	}
	if got, err := st.ApplyReceipt(ctx, a.ID, []string{"WA1"}, tenant.APIDelivered, t0); err != nil || len(got) != 1 || got[0].Status != tenant.APIQueued {
		t.Fatalf("delivered before sent: %+v (%v); want still queued until sent", got, err)
	}
	sent, err := st.MarkOutboundSent(ctx, a.ID, m.ID)
	if err != nil || sent.Status != tenant.APIDelivered || sent.SentAt.IsZero() {
		t.Fatalf("after send: %+v (%v), want delivered", sent, err)
	}
	if got, _ := st.ApplyReceipt(ctx, a.ID, []string{"WA1"}, tenant.APIRead, t0); len(got) != 1 || got[0].Status != tenant.APIRead {
		t.Fatalf("read: %+v", got)
	}
	if got, _ := st.ApplyReceipt(ctx, a.ID, []string{"WA1"}, tenant.APIDelivered, t0); len(got) != 0 {
		t.Fatalf("a late delivery receipt changed %+v", got)
	}
	if m, _ := st.APIMessageByID(ctx, a.ID, m.ID); m.Status != tenant.APIRead {
		t.Fatalf("status %s, want read", m.Status)
	}
	if _, err := st.APIMessageByID(ctx, b.ID, m.ID); err != tenant.ErrNotFound {
		t.Fatalf("tenant B read tenant A's message: %v", err)
	}
}

func TestValidateSend(t *testing.T) {
	for _, tc := range []struct {
		req    tenant.SendRequest
		chat   string
		phone  bool
		fields string
	}{
		{tenant.SendRequest{To: "+15551234567", Text: "hi"}, "15551234567@s.whatsapp.net", true, ""},
		{tenant.SendRequest{To: "120363000000000001@g.us", Text: "hi"}, "120363000000000001@g.us", false, ""},
		{tenant.SendRequest{To: "15551234567", Text: "hi"}, "", false, "to"},
		{tenant.SendRequest{To: "+1555", Text: " "}, "", false, "text,to"},
		{tenant.SendRequest{To: "+15551234567", Text: strings.Repeat("é", tenant.MaxTextChars+1)}, "", false, "text"},
		{tenant.SendRequest{To: "+15551234567", Text: strings.Repeat("é", tenant.MaxTextChars)}, "15551234567@s.whatsapp.net", true, ""},
	} {
		chat, phone, err := tenant.ValidateSend(tc.req)
		var got []string
		if e, ok := err.(*tenant.Error); ok {
			for f := range e.Fields {
				got = append(got, f)
			}
		}
		slices.Sort(got)
		if chat != tc.chat || phone != tc.phone || strings.Join(got, ",") != tc.fields {
			t.Errorf("ValidateSend(to %q) = %q, %v, fields %v; want %q, %v, %q", tc.req.To, chat, phone, got, tc.chat, tc.phone, tc.fields)
		}
	}
}
