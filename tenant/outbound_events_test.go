package tenant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

// statusEvents returns the tenant's message.sent and message.status
// deliveries oldest first, as "<subscription>:<type>:<message>:<status>[:<reason>]".
func statusEvents(t *testing.T, st *tenant.Store, tenantID string, names map[string]string) []string {
	t.Helper()
	var out []string
	for _, d := range eventDeliveries(t, st, tenantID) {
		var ev struct {
			Type tenant.EventType
			Data tenant.MessageStatusEvent
		}
		if err := json.Unmarshal(d.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != d.EventType {
			t.Fatalf("delivery %s says %s, payload %s", d.ID, d.EventType, d.Payload)
		}
		s := fmt.Sprintf("%s:%s:%d:%s", names[d.SubscriptionID], ev.Type, ev.Data.MessageID, ev.Data.Status)
		if ev.Data.Reason != "" {
			s += ":" + ev.Data.Reason
		}
		out = append(out, s)
	}
	slices.Reverse(out)
	return out
}

// Sending, failing and receipts each queue their event in the write that
// records them: one per change, to the subscriptions that asked for its
// type; a repeated send, a duplicate or late receipt and a second failure
// change nothing and queue nothing. A receipt that overtook the send is
// announced with the send.
func TestOutboundStatusChangesQueueEvents(t *testing.T) {
	ctx := context.Background()
	st, c := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	both := subscribe(t, st, a.ID, "https://a.example.com/all", tenant.EventMessageSent, tenant.EventMessageStatus)
	status := subscribe(t, st, a.ID, "https://a.example.com/status", tenant.EventMessageStatus)
	subscribe(t, st, b.ID, "https://b.example.com/all", tenant.EventTypes...)
	names := map[string]string{both.ID: "both", status.ID: "status"}
	step := func() { c.Advance(time.Millisecond) } // deliveries list by time

	m1, _ := queueOut(t, st, a.ID, "", "WA1")
	if got := statusEvents(t, st, a.ID, names); len(got) != 0 {
		t.Fatalf("queueing made events %v", got)
	}
	step()
	if _, err := st.MarkOutboundSent(ctx, a.ID, m1.ID); err != nil {
		t.Fatal(err)
	}
	step()
	if _, err := st.MarkOutboundSent(ctx, a.ID, m1.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range []tenant.APIStatus{tenant.APIDelivered, tenant.APIDelivered, tenant.APIRead, tenant.APIDelivered, tenant.APIRead} {
		step()
		if _, err := st.ApplyReceipt(ctx, a.ID, []string{"WA1"}, r, c.Now()); err != nil {
			t.Fatal(err)
		}
	}

	m2, _ := queueOut(t, st, a.ID, "", "WA2")
	for range 2 {
		step()
		if _, err := st.FailOutbound(ctx, a.ID, m2.ID, tenant.ReasonNotOnWhatsApp, "The number is not on WhatsApp."); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if _, err := st.MarkOutboundSent(ctx, a.ID, m2.ID); err != nil { // a failed message stays failed
		t.Fatal(err)
	}

	m3, _ := queueOut(t, st, a.ID, "", "WA3")
	step()
	if got, err := st.ApplyReceipt(ctx, a.ID, []string{"WA3"}, tenant.APIDelivered, c.Now()); err != nil || len(got) != 1 {
		t.Fatalf("receipt before the send: %+v, %v", got, err)
	}
	step()
	if _, err := st.MarkOutboundSent(ctx, a.ID, m3.ID); err != nil {
		t.Fatal(err)
	}

	id := func(m tenant.APIMessage, s string) string { return strings.Replace(s, "#", fmt.Sprint(m.ID), 1) }
	want := []string{
		id(m1, "both:message.sent:#:sent"),
		id(m1, "both:message.status:#:delivered"), id(m1, "status:message.status:#:delivered"),
		id(m1, "both:message.status:#:read"), id(m1, "status:message.status:#:read"),
		id(m2, "both:message.status:#:failed:not_on_whatsapp"), id(m2, "status:message.status:#:failed:not_on_whatsapp"),
		id(m3, "both:message.sent:#:sent"),
		id(m3, "both:message.status:#:delivered"), id(m3, "status:message.status:#:delivered"),
	}
	got := statusEvents(t, st, a.ID, names)
	// Deliveries of one event share a time; compare each time's set.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	if ds := eventDeliveries(t, st, b.ID); len(ds) != 0 {
		t.Fatalf("tenant B got A's events: %+v", ds)
	}

	// The data says where the message stands, and where it went.
	for _, d := range eventDeliveries(t, st, a.ID) {
		var ev struct{ Data tenant.MessageStatusEvent }
		json.Unmarshal(d.Payload, &ev)
		if ev.Data.MessageID == m2.ID {
			if ev.Data.Error != "The number is not on WhatsApp." || ev.Data.To != "+15550001111" || ev.Data.Source != "api" || ev.Data.WAID != "WA2" {
				t.Fatalf("failed event data %+v", ev.Data)
			}
		}
		if d.EventType == tenant.EventMessageSent && (ev.Data.At.IsZero() || ev.Data.Chat != "15550001111@s.whatsapp.net") {
			t.Fatalf("sent event data %+v", ev.Data)
		}
	}
}

// The bot's replies are told like API sends: message.sent once, when the
// reply first goes out, and a failure once; setting the same status again
// tells nothing.
func TestBotReplyStatusesQueueEvents(t *testing.T) {
	ctx := context.Background()
	st, c := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	both := subscribe(t, st, a.ID, "https://a.example.com/all", tenant.EventMessageSent, tenant.EventMessageStatus)
	names := map[string]string{both.ID: "both"}

	in, _, err := st.StoreInbound(ctx, a.ID, tenant.Inbound{WAID: "IN1", Chat: "15550001111@s.whatsapp.net", Sender: "15550001111@s.whatsapp.net", Body: "hi", Kind: "text", Status: tenant.MsgReceived})
	if err != nil {
		t.Fatal(err)
	}
	pending := func(r tenant.Reply) tenant.Reply { r.Status = tenant.MsgPending; return r }
	replies, err := st.LogReplies(ctx, a.ID, nil, []tenant.Reply{
		{InID: in, Chat: "15550001111@s.whatsapp.net", Body: "hello", WAID: "R1"},
		{InID: in, Chat: "15550001111@s.whatsapp.net", Body: "more", WAID: "R2"},
	}, pending)
	if err != nil || len(replies) != 2 {
		t.Fatalf("LogReplies: %+v, %v", replies, err)
	}
	for range 2 {
		c.Advance(time.Millisecond)
		if err := st.SetReplyStatus(ctx, replies[0].ID, tenant.MsgReplied, ""); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Millisecond)
		if err := st.SetReplyStatus(ctx, replies[1].ID, tenant.MsgFailed, "timed out"); err != nil {
			t.Fatal(err)
		}
	}
	got := statusEvents(t, st, a.ID, names)
	want := []string{fmt.Sprintf("both:message.sent:%d:sent", replies[0].ID), fmt.Sprintf("both:message.status:%d:failed:rejected", replies[1].ID)}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}
