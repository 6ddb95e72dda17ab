package tenant_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

func subscribe(t *testing.T, st *tenant.Store, tenantID, url string, events ...tenant.EventType) tenant.Subscription {
	t.Helper()
	sub, err := st.CreateSubscription(context.Background(), tenantID, tenant.Subscription{URL: url, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func eventDeliveries(t *testing.T, st *tenant.Store, tenantID string) []tenant.WebhookDelivery {
	t.Helper()
	ds, err := st.EventDeliveries(context.Background(), tenantID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// A subscription is created with a generated secret, validated, listed
// to its tenant only, and deleted with its deliveries.
func TestEventSubscriptionsAreKeptPerTenant(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")

	sub := subscribe(t, st, a.ID, "https://a.example.com/events", tenant.EventSessionState, tenant.EventMessageReceived)
	if !strings.HasPrefix(sub.Secret, "whsec_") || len(sub.Secret) < 40 {
		t.Fatalf("generated secret %q", sub.Secret)
	}
	got, err := st.SubscriptionByID(ctx, a.ID, sub.ID)
	if err != nil || got.Secret != sub.Secret || got.URL != sub.URL || len(got.Events) != 2 || got.Events[0] != tenant.EventMessageReceived {
		t.Fatalf("SubscriptionByID = %+v, %v", got, err)
	}
	_, err = st.SubscriptionByID(ctx, b.ID, sub.ID)
	wantNotFound(t, err)
	if subs, err := st.Subscriptions(ctx, b.ID); err != nil || len(subs) != 0 {
		t.Fatalf("B lists %+v, %v", subs, err)
	}
	wantNotFound(t, st.DeleteSubscription(ctx, b.ID, sub.ID))
	_, err = st.RotateSubscriptionSecret(ctx, b.ID, sub.ID)
	wantNotFound(t, err)
	wantNotFound(t, st.QueueTestEvent(ctx, b.ID, sub.ID))

	for _, bad := range []tenant.Subscription{
		{URL: "ftp://x.example.com", Events: []tenant.EventType{tenant.EventSessionState}},
		{URL: "https://u:p@x.example.com", Events: []tenant.EventType{tenant.EventSessionState}},
		{URL: "https://x.example.com"},
		{URL: "https://x.example.com", Events: []tenant.EventType{"message.deleted"}},
		{URL: "https://x.example.com", Events: []tenant.EventType{tenant.EventSessionState}, Secret: "short"},
	} {
		_, err := st.CreateSubscription(ctx, a.ID, bad)
		wantCode(t, err, tenant.CodeInvalid)
	}

	rotated, err := st.RotateSubscriptionSecret(ctx, a.ID, sub.ID)
	if err != nil || rotated == sub.Secret {
		t.Fatalf("rotate = %q, %v", rotated, err)
	}
	if err := st.QueueTestEvent(ctx, a.ID, sub.ID); err != nil {
		t.Fatal(err)
	}
	if ds := eventDeliveries(t, st, a.ID); len(ds) != 1 || ds[0].EventType != tenant.EventWebhookTest {
		t.Fatalf("deliveries after a test: %+v", ds)
	}
	if err := st.DeleteSubscription(ctx, a.ID, sub.ID); err != nil {
		t.Fatal(err)
	}
	if ds := eventDeliveries(t, st, a.ID); len(ds) != 0 {
		t.Fatalf("deliveries left after deleting the subscription: %+v", ds)
	}
}

// Events reach only the subscriptions that asked for their type, of their
// own tenant; nobody subscribed means no rows. The bot webhook's list
// does not show them.
func TestEventsFanOutToMatchingSubscriptionsOnly(t *testing.T) {
	ctx := context.Background()
	st, c := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")

	storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "NOBODY", Body: "before any subscription"})
	if ds := eventDeliveries(t, st, a.ID); len(ds) != 0 {
		t.Fatalf("deliveries without subscriptions: %+v", ds)
	}

	states := subscribe(t, st, a.ID, "https://a.example.com/states", tenant.EventSessionState)
	msgs := subscribe(t, st, a.ID, "https://a.example.com/messages", tenant.EventMessageReceived, tenant.EventMessageStatus)
	subscribe(t, st, b.ID, "https://b.example.com/all", tenant.EventTypes...)

	id := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: "15550001111:3@s.whatsapp.net", SenderName: "Ann", WAID: "W1", Body: "hello"})
	ds := eventDeliveries(t, st, a.ID)
	if len(ds) != 1 || ds[0].SubscriptionID != msgs.ID || ds[0].EventType != tenant.EventMessageReceived || ds[0].URL != msgs.URL {
		t.Fatalf("deliveries of a message: %+v", ds)
	}
	var ev struct{ Data tenant.MessageEvent }
	if err := json.Unmarshal(ds[0].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(ds[0].Payload, &raw)
	if raw["type"] != "message.received" || raw["tenant_id"] != a.ID || raw["id"] != ds[0].EventID || raw["created_at"] == nil {
		t.Fatalf("payload %s", ds[0].Payload)
	}
	if d := ev.Data; d.MessageID != id || d.Text != "hello" || d.From != "+15550001111" || d.Name != "Ann" || d.WAID != "W1" || d.Kind != "text" {
		t.Fatalf("data %+v", d)
	}
	// The same message delivered again by WhatsApp is no new event.
	if _, dup, err := st.StoreInbound(ctx, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "W1", Body: "hello", Kind: "text", Status: tenant.MsgReceived}); err != nil || !dup {
		t.Fatalf("redelivery: dup %v, %v", dup, err)
	}
	// Types nobody asked for make nothing.
	if n, err := st.QueueEvent(ctx, a.ID, tenant.EventMessageSent, map[string]int{"message_id": 1}); err != nil || n != 0 {
		t.Fatalf("message.sent queued %d, %v", n, err)
	}

	// Every change of state or error code, once; a QR refresh is not one.
	for _, l := range []tenant.Link{
		{State: tenant.StateQRReady, QRCode: "2@one"},
		{State: tenant.StateQRReady, QRCode: "2@two"},
		{State: tenant.StateConnected, JID: "15559990000:1@s.whatsapp.net"},
		{State: tenant.StateConnected, JID: "15559990000:1@s.whatsapp.net"},
		{State: tenant.StateError, ErrorCode: tenant.ProblemReconnectFailed, LastError: "WhatsApp cannot be reached."},
		{State: tenant.StateError, ErrorCode: tenant.ProblemOutdated, LastError: "Update wabot."},
	} {
		l.TenantID = a.ID
		c.Advance(time.Millisecond) // deliveries list newest first
		if err := st.SaveLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	var got []tenant.SessionStateEvent
	for _, d := range eventDeliveries(t, st, a.ID) {
		if d.SubscriptionID != states.ID {
			continue
		}
		var ev struct{ Data tenant.SessionStateEvent }
		json.Unmarshal(d.Payload, &ev)
		got = append([]tenant.SessionStateEvent{ev.Data}, got...) // oldest first
	}
	want := []tenant.SessionStateEvent{
		{State: tenant.StateQRReady, PreviousState: tenant.StateQRPending},
		{State: tenant.StateConnected, PreviousState: tenant.StateQRReady, Phone: "+15559990000"},
		{State: tenant.StateError, PreviousState: tenant.StateConnected, ErrorCode: tenant.ProblemReconnectFailed, Error: "WhatsApp cannot be reached."},
		{State: tenant.StateError, PreviousState: tenant.StateError, ErrorCode: tenant.ProblemOutdated, Error: "Update wabot."},
	}
	if len(got) != len(want) {
		t.Fatalf("session.state events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	if ds := eventDeliveries(t, st, b.ID); len(ds) != 0 {
		t.Fatalf("B got A's events: %+v", ds)
	}
	if ds, err := st.WebhookDeliveries(ctx, a.ID, 100); err != nil || len(ds) != 0 {
		t.Fatalf("the bot webhook's list shows events: %+v, %v", ds, err)
	}
}

// Only a failed event delivery is sent again: due now, attempts afresh.
func TestAFailedEventDeliveryIsSentAgain(t *testing.T) {
	ctx := context.Background()
	st, c := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	subscribe(t, st, a.ID, "https://a.example.com/e", tenant.EventMessageSent)
	if n, err := st.QueueEvent(ctx, a.ID, tenant.EventMessageSent, map[string]int{"message_id": 7}); err != nil || n != 1 {
		t.Fatalf("queued %d, %v", n, err)
	}
	d := eventDeliveries(t, st, a.ID)[0]
	_, err := st.ResendDelivery(ctx, a.ID, d.ID)
	wantCode(t, err, tenant.CodeConflict)

	d.Status, d.Attempts, d.LastError = tenant.DeliveryFailed, 8, "webhook answered 500"
	if err := st.RecordWebhookAttempt(ctx, d); err != nil {
		t.Fatal(err)
	}
	_, err = st.ResendDelivery(ctx, b.ID, d.ID)
	wantNotFound(t, err)
	c.Advance(time.Hour)
	if _, err := st.ResendDelivery(ctx, a.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	due, err := st.DueWebhookDeliveries(ctx, c.now, 10, 10)
	if err != nil || len(due) != 1 || due[0].ID != d.ID || due[0].Attempts != 0 || due[0].LastError != "" || due[0].SubscriptionID == "" {
		t.Fatalf("due after send again: %+v, %v", due, err)
	}
}

// A workspace awaiting approval gets no message events: its messages'
// contents are withheld, and so is the fact that they arrived.
func TestAPendingWorkspaceGetsNoMessageEvents(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	u, err := st.EnsureUser(ctx, "pending@example.com")
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreateTenant(ctx, u.ID, "Pending", false)
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, st, p.ID, "https://p.example.com/e", tenant.EventMessageReceived, tenant.EventSessionState)
	storeIn(t, st, p.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "P1", Status: tenant.MsgIgnored})
	if err := st.SaveLink(ctx, tenant.Link{TenantID: p.ID, State: tenant.StateConnected}); err != nil {
		t.Fatal(err)
	}
	ds := eventDeliveries(t, st, p.ID)
	if len(ds) != 1 || ds[0].EventType != tenant.EventSessionState {
		t.Fatalf("a pending workspace's deliveries: %+v", ds)
	}
}

// message.received of a media message carries its media: a file pending
// download with the store's download link, a location with its map.
func TestMessageReceivedCarriesMedia(t *testing.T) {
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	st.SetMediaLink(func(tenantID string, id int64) string {
		return "https://w.example/media/" + tenantID + "/" + strconv.FormatInt(id, 10)
	})
	subscribe(t, st, a.ID, "https://a.example.com/messages", tenant.EventMessageReceived)
	photo := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "P1", Kind: "image", Body: "look",
		Media: &tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/jpeg", Size: 1234, Caption: "look", Download: []byte{1, 2}}})
	storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "L1", Kind: "location",
		Media: &tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 52.5, Longitude: 13.4, PlaceName: "Office"}})
	ds := eventDeliveries(t, st, a.ID)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	var img, loc struct{ Data tenant.MessageEvent }
	json.Unmarshal(ds[0].Payload, &img)
	json.Unmarshal(ds[1].Payload, &loc)
	if img.Data.MessageID != photo {
		img, loc = loc, img
	}
	m := img.Data.Media
	if m == nil || m.Kind != tenant.MediaImage || m.Status != tenant.MediaPending || m.Size != 1234 || m.Caption != "look" ||
		m.DownloadURL != "https://w.example/media/"+a.ID+"/"+strconv.FormatInt(photo, 10) {
		t.Fatalf("image event media %+v", m)
	}
	if strings.Contains(string(ds[0].Payload)+string(ds[1].Payload), "download\":") {
		t.Errorf("WhatsApp's file reference leaked into an event")
	}
	l := loc.Data.Media
	if l == nil || l.Location == nil || l.Location.Latitude == nil || *l.Location.Latitude != 52.5 || l.Location.Name != "Office" ||
		!strings.Contains(l.Location.MapURL, "openstreetmap.org") || l.DownloadURL != "" || l.Status != tenant.MediaNoFile {
		t.Fatalf("location event media %+v", l)
	}
}
