package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
	"wabot/tenant"
)

// receiver is an event webhook receiver on 127.0.0.1 that records what
// it gets and answers with status (200 unless set).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	status int
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
	event  struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		CreatedAt time.Time       `json:"created_at"`
		TenantID  string          `json:"tenant_id"`
		Data      json.RawMessage `json:"data"`
	}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r := received{header: req.Header.Clone(), body: body, at: time.Now()}
		json.Unmarshal(body, &r.event)
		rc.mu.Lock()
		rc.got = append(rc.got, r)
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setStatus(s int) { rc.mu.Lock(); rc.status = s; rc.mu.Unlock() }

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitEvent waits for an event of typ whose data satisfies cond.
func (rc *receiver) waitEvent(t *testing.T, typ string, cond func(data map[string]any) bool) received {
	t.Helper()
	var found received
	waitFor(t, "a "+typ+" event", func() bool {
		for _, r := range rc.all() {
			var data map[string]any
			json.Unmarshal(r.event.Data, &data)
			if r.event.Type == typ && cond(data) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// verifyEvent is the receiver's check the README gives, written apart
// from wabot's signing: parse t= and v1= from X-Wabot-Signature, refuse a
// t more than 5 minutes from now, recompute HMAC-SHA256 of "t.body" and
// compare in constant time.
func verifyEvent(secret string, h http.Header, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(h.Get("X-Wabot-Signature"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("stale timestamp")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return errors.New("bad signature")
	}
	return nil
}

// subscribedTenant creates an ACTIVE tenant, subscribes url to events
// before linking it (so its first connection is an event too), links it
// and returns its id, phone and subscription.
func (r *rig) subscribedTenant(url string, events ...tenant.EventType) (string, *fakewa.Phone, tenant.Subscription) {
	r.t.Helper()
	ctx := context.Background()
	u, err := r.store.EnsureUser(ctx, "events"+tenantSeq()+"@example.com")
	if err != nil {
		r.t.Fatal(err)
	}
	tn, err := r.store.CreateTenant(ctx, u.ID, "Shop", true)
	if err != nil {
		r.t.Fatal(err)
	}
	sub, err := r.bot.Subscribe(ctx, tn.ID, tenant.Subscription{URL: url, Events: events})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.m.Add(tn.ID); err != nil {
		r.t.Fatal(err)
	}
	return tn.ID, fakewatest.Link(r.t, r.srv, r.m, r.store, tn.ID, 30*time.Second), sub
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// A subscription hears its tenant's session connect, drop, come back and
// be logged out, each change once, and a contact's message; every
// delivery is signed so an independent check accepts it, refuses it with
// another secret, and refuses it once its timestamp is stale.
func TestEventWebhookGetsSignedSessionAndMessageEvents(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	r := newRig(t, Options{AllowPrivateWebhooks: true})
	id, phone, sub := r.subscribedTenant(rc.srv.URL+"/events", tenant.EventSessionState, tenant.EventMessageReceived)
	dev := phone.LinkedDevices()[0].JID

	connected := rc.waitEvent(t, "session.state", func(d map[string]any) bool { return str(d, "state") == "CONNECTED" })
	if got := str(mustData(t, connected), "phone"); got != "+"+phone.Number() {
		t.Errorf("connected event's phone = %q, want +%s", got, phone.Number())
	}

	ann := phone.NewContact("", "Ann")
	ann.Send("where is my order?")
	msg := rc.waitEvent(t, "message.received", func(d map[string]any) bool { return str(d, "text") == "where is my order?" })
	if d := mustData(t, msg); str(d, "name") != "Ann" || str(d, "from") != "+"+ann.JID().User || str(d, "kind") != "text" || d["message_id"] == nil {
		t.Errorf("message.received data %s", msg.event.Data)
	}
	if msg.event.TenantID != id || msg.event.ID == "" || msg.event.CreatedAt.IsZero() {
		t.Errorf("event envelope %s", msg.body)
	}
	if msg.header.Get("X-Wabot-Event") != msg.event.ID || msg.header.Get("X-Wabot-Event-Type") != "message.received" || msg.header.Get("X-Wabot-Delivery") == "" {
		t.Errorf("headers %v", msg.header)
	}

	// Each delivery verifies; not with another secret; not ten minutes on.
	for _, r := range rc.all() {
		if err := verifyEvent(sub.Secret, r.header, r.body, r.at); err != nil {
			t.Fatalf("%s delivery does not verify: %v (%s)", r.event.Type, err, r.header.Get("X-Wabot-Signature"))
		}
		if verifyEvent("whsec_other", r.header, r.body, r.at) == nil {
			t.Fatal("a delivery verifies with another secret")
		}
		if verifyEvent(sub.Secret, r.header, r.body, r.at.Add(10*time.Minute)) == nil {
			t.Fatal("a delivery still verifies ten minutes later")
		}
		tampered := append([]byte(nil), r.body...)
		tampered[len(tampered)-2] ^= 1
		if verifyEvent(sub.Secret, r.header, tampered, r.at) == nil {
			t.Fatal("a changed body verifies")
		}
	}

	// The connection drops and comes back, then the phone unlinks us.
	r.srv.RefuseFor(time.Second)
	if !r.srv.Cut(dev) {
		t.Fatal("the device was not connected")
	}
	rc.waitEvent(t, "session.state", func(d map[string]any) bool {
		return str(d, "state") == "DISCONNECTED" && str(d, "previous_state") == "CONNECTED"
	})
	rc.waitEvent(t, "session.state", func(d map[string]any) bool {
		return str(d, "state") == "CONNECTED" && str(d, "previous_state") == "DISCONNECTED"
	})
	if err := phone.Unlink(dev); err != nil {
		t.Fatal(err)
	}
	rc.waitEvent(t, "session.state", func(d map[string]any) bool {
		return str(d, "state") == "LOGGED_OUT" && str(d, "error_code") == string(tenant.ProblemLoggedOut)
	})

	// Every event told a change: no state repeated with the same code.
	var prev string
	for _, r := range rc.all() {
		if r.event.Type != "session.state" {
			continue
		}
		d := mustData(t, r)
		cur := str(d, "state") + "/" + str(d, "error_code")
		if cur == prev || str(d, "previous_state")+"/" == cur {
			t.Errorf("session.state event repeats %s: %s", cur, r.event.Data)
		}
		prev = cur
	}
}

func mustData(t *testing.T, r received) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(r.event.Data, &d); err != nil {
		t.Fatalf("data %s: %v", r.event.Data, err)
	}
	return d
}

// Tenant A's subscription never receives tenant B's events, and types a
// subscription did not ask for create no deliveries at all.
func TestEventWebhooksStayWithTheirTenantAndTheirTypes(t *testing.T) {
	t.Parallel()
	rcA, rcB := newReceiver(t), newReceiver(t)
	r := newRig(t, Options{AllowPrivateWebhooks: true})
	idA, phoneA, _ := r.subscribedTenant(rcA.srv.URL, tenant.EventMessageReceived)
	idB, phoneB, _ := r.subscribedTenant(rcB.srv.URL, tenant.EventMessageStatus)

	phoneA.NewContact("", "Ann").Send("for A")
	phoneB.NewContact("", "Bob").Send("for B")
	rcA.waitEvent(t, "message.received", func(d map[string]any) bool { return str(d, "text") == "for A" })
	r.waitLogs(idB, "B's message stored", func(ms []tenant.Message) bool { return len(ms) > 0 })

	for _, got := range rcA.all() {
		if got.event.TenantID != idA || got.event.Type != "message.received" {
			t.Errorf("A's receiver got %s", got.body)
		}
	}
	if got := rcB.all(); len(got) != 0 {
		t.Errorf("B's receiver, subscribed to message.status only, got %s", got[0].body)
	}
	ds, err := r.store.EventDeliveries(context.Background(), idB, "", 100)
	if err != nil || len(ds) != 0 {
		t.Fatalf("B's deliveries: %+v, %v", ds, err)
	}
}

// A receiver that keeps failing leaves the delivery failed after the last
// retry; sent again once the receiver is mended, it is delivered, with
// the same event id.
func TestAFailedEventDeliveryIsDeliveredWhenSentAgain(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.setStatus(http.StatusInternalServerError)
	r := newRig(t, Options{AllowPrivateWebhooks: true, WebhookMaxAttempts: 3, WebhookBaseDelay: 10 * time.Millisecond, WebhookMaxDelay: 50 * time.Millisecond})
	id, _, sub := r.subscribedTenant(rc.srv.URL, tenant.EventSessionState)
	ctx := context.Background()

	var failed tenant.WebhookDelivery
	waitFor(t, "the delivery to fail for good", func() bool {
		ds, _ := r.bot.EventDeliveries(ctx, id, sub.ID, 10)
		for _, d := range ds {
			if d.Status == tenant.DeliveryFailed {
				failed = d
				return true
			}
		}
		return false
	})
	if failed.Attempts != 3 || !strings.Contains(failed.LastError, "500") {
		t.Fatalf("failed delivery %+v", failed)
	}
	tries := 0
	for _, got := range rc.all() {
		if got.header.Get("X-Wabot-Delivery") == failed.ID {
			tries++
		}
	}
	if tries != 3 {
		t.Fatalf("the receiver saw %d attempts, want 3", tries)
	}

	rc.setStatus(http.StatusNoContent)
	if _, err := r.bot.ResendDelivery(ctx, id, failed.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery sent again to be delivered", func() bool {
		ds, _ := r.bot.EventDeliveries(ctx, id, sub.ID, 10)
		for _, d := range ds {
			if d.ID == failed.ID {
				return d.Status == tenant.DeliveryDelivered
			}
		}
		return false
	})
	// Other session.state deliveries may still be retrying beside this
	// one: look at this delivery's own requests only.
	var mine []received
	for _, got := range rc.all() {
		if got.header.Get("X-Wabot-Delivery") == failed.ID {
			mine = append(mine, got)
		}
	}
	if len(mine) != 4 {
		t.Fatalf("the receiver saw %d requests of the delivery, want 3 failed and 1 sent again", len(mine))
	}
	last := mine[3]
	if last.event.ID != failed.EventID {
		t.Fatalf("the delivery sent again carried event %s, want %s: %s", last.event.ID, failed.EventID, last.body)
	}
	if err := verifyEvent(sub.Secret, last.header, last.body, last.at); err != nil {
		t.Fatal(err)
	}
}

// A URL whose host is not on the public internet is refused when the
// subscription is made, as the bot's webhook is.
func TestEventWebhookToAPrivateAddressIsRefusedAtCreation(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	ctx := context.Background()
	u, _ := r.store.EnsureUser(ctx, "ssrf-events@example.com")
	tn, err := r.store.CreateTenant(ctx, u.ID, "Probe", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://[::1]/x", "http://localhost/x"} {
		_, err := r.bot.Subscribe(ctx, tn.ID, tenant.Subscription{URL: url, Events: []tenant.EventType{tenant.EventSessionState}})
		var e *tenant.Error
		if !errors.As(err, &e) || e.Code != tenant.CodeInvalid || !strings.Contains(e.Fields["url"], "public") {
			t.Errorf("Subscribe(%s) = %v", url, err)
		}
	}
	if subs, _ := r.bot.Subscriptions(ctx, tn.ID); len(subs) != 0 {
		t.Fatalf("stored %+v", subs)
	}
}
