package tenant_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"wabot/tenant"
)

// queue writes a delivery that must be accepted.
func queue(t *testing.T, st *tenant.Store, d tenant.WebhookDelivery) {
	t.Helper()
	if err := st.QueueWebhookDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

func deliveryIDs(ds []tenant.WebhookDelivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func TestWebhookDeliveryRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	msg := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1", Body: "hi"})
	payload := []byte(`{"event":"message","body":"hi \u00e9","raw":"\x00\xff"}`)
	d := tenant.WebhookDelivery{ID: "d1", TenantID: a.ID, MessageID: msg, URL: "https://hooks.example.com/in?x=1", Payload: payload,
		Status: tenant.DeliveryFailed, Attempts: 9, NextAt: t0.Add(1500 * time.Millisecond), LastError: "ignored on queueing"}
	queue(t, st, d)
	got, err := st.WebhookDeliveryByID(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	// A new delivery is pending with no attempts, whatever the caller set.
	want := d
	want.Status, want.Attempts, want.LastError = tenant.DeliveryPending, 0, ""
	want.CreatedAt = t0 // the store's clock at queueing
	if !sameDelivery(got, want) {
		t.Errorf("queued\n %+v\nwant\n %+v", got, want)
	}

	attempts := []tenant.WebhookDelivery{
		{ID: "d1", Status: tenant.DeliveryPending, Attempts: 1, NextAt: t0.Add(time.Minute), LastError: "503 Service Unavailable"},
		{ID: "d1", Status: tenant.DeliveryPending, Attempts: 2, NextAt: t0.Add(5 * time.Minute), LastError: "dial tcp: timeout"},
		{ID: "d1", Status: tenant.DeliveryDelivered, Attempts: 3, NextAt: t0.Add(5 * time.Minute)},
	}
	for i, a := range attempts {
		if err := st.RecordWebhookAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := st.WebhookDeliveryByID(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		want.Status, want.Attempts, want.NextAt, want.LastError = a.Status, a.Attempts, a.NextAt, a.LastError
		if !sameDelivery(got, want) {
			t.Errorf("attempt %d: got\n %+v\nwant\n %+v", i+1, got, want)
		}
	}

	_, err = st.WebhookDeliveryByID(ctx, "nope")
	wantCode(t, err, tenant.CodeNotFound)
	if err := st.QueueWebhookDelivery(ctx, tenant.WebhookDelivery{ID: "d1", TenantID: a.ID, MessageID: msg, URL: "https://x.example", Payload: []byte("{}")}); err == nil {
		t.Error("a second delivery with the same id was queued")
	}
}

func sameDelivery(a, b tenant.WebhookDelivery) bool {
	if !a.NextAt.Equal(b.NextAt) || !bytes.Equal(a.Payload, b.Payload) {
		return false
	}
	a.NextAt, b.NextAt, a.Payload, b.Payload = time.Time{}, time.Time{}, nil, nil
	return reflect.DeepEqual(a, b)
}

func TestDueWebhookDeliveriesOnlyPendingAndDue(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	msgA := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1"})
	msgB := storeIn(t, st, b.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1"})
	for _, d := range []struct {
		id     string
		tn     string
		msg    int64
		due    time.Duration // from t0
		status tenant.DeliveryStatus
	}{
		{"a-due-1m-ago", a.ID, msgA, -time.Minute, tenant.DeliveryPending},
		{"a-due-in-1m", a.ID, msgA, time.Minute, tenant.DeliveryPending},
		{"a-due-5m-ago", a.ID, msgA, -5 * time.Minute, tenant.DeliveryPending},
		{"b-due-2m-ago", b.ID, msgB, -2 * time.Minute, tenant.DeliveryPending},
		{"a-due-now", a.ID, msgA, 0, tenant.DeliveryPending},
		{"a-delivered", a.ID, msgA, -10 * time.Minute, tenant.DeliveryDelivered},
		{"b-failed", b.ID, msgB, -10 * time.Minute, tenant.DeliveryFailed},
	} {
		queue(t, st, tenant.WebhookDelivery{ID: d.id, TenantID: d.tn, MessageID: d.msg, URL: "https://example.com/h", Payload: []byte("{}"), NextAt: t0.Add(d.due)})
		if d.status != tenant.DeliveryPending {
			if err := st.RecordWebhookAttempt(ctx, tenant.WebhookDelivery{ID: d.id, Status: d.status, Attempts: 1, NextAt: t0.Add(d.due)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	due := func(at time.Time, limit int) []string {
		t.Helper()
		ds, err := st.DueWebhookDeliveries(ctx, at, limit, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Status != tenant.DeliveryPending || d.NextAt.After(at) {
				t.Errorf("due at %v: %+v", at, d)
			}
		}
		return deliveryIDs(ds)
	}
	cases := []struct {
		name  string
		at    time.Time
		limit int
		want  []string
	}{
		{"now", t0, 100, []string{"a-due-5m-ago", "b-due-2m-ago", "a-due-1m-ago", "a-due-now"}},
		{"limited", t0, 2, []string{"a-due-5m-ago", "b-due-2m-ago"}},
		{"earlier", t0.Add(-3 * time.Minute), 100, []string{"a-due-5m-ago"}},
		{"later", t0.Add(time.Hour), 100, []string{"a-due-5m-ago", "b-due-2m-ago", "a-due-1m-ago", "a-due-now", "a-due-in-1m"}},
		{"long ago", t0.Add(-time.Hour), 100, []string{}},
	}
	for _, c := range cases {
		if got := due(c.at, c.limit); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}

	// A retry later moves it back in the queue; a success or a give-up takes
	// it out.
	clk.Advance(time.Second)
	for _, r := range []tenant.WebhookDelivery{
		{ID: "a-due-5m-ago", Status: tenant.DeliveryPending, Attempts: 1, NextAt: t0.Add(10 * time.Minute), LastError: "500"},
		{ID: "b-due-2m-ago", Status: tenant.DeliveryDelivered, Attempts: 1, NextAt: t0},
		{ID: "a-due-1m-ago", Status: tenant.DeliveryFailed, Attempts: 8, NextAt: t0, LastError: "gave up"},
	} {
		if err := st.RecordWebhookAttempt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := due(t0, 100), []string{"a-due-now"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after attempts due %v, want %v", got, want)
	}
	if got, want := due(t0.Add(10*time.Minute), 100), []string{"a-due-now", "a-due-in-1m", "a-due-5m-ago"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ten minutes on due %v, want %v", got, want)
	}
}

func TestWebhookDeliveriesPerTenantNewestFirst(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	msgA := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1"})
	msgB := storeIn(t, st, b.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1"})
	for _, d := range []struct {
		id, tn string
		msg    int64
	}{
		{"z-a1", a.ID, msgA},
		{"b1", b.ID, msgB},
		{"y-a2", a.ID, msgA},
		{"x-a3", a.ID, msgA},
	} {
		clk.Advance(time.Second)
		queue(t, st, tenant.WebhookDelivery{ID: d.id, TenantID: d.tn, MessageID: d.msg, URL: "https://example.com/" + d.tn, Payload: []byte(d.id), NextAt: clk.Now()})
	}
	cases := []struct {
		tenantID string
		limit    int
		want     []string
	}{
		{a.ID, 10, []string{"x-a3", "y-a2", "z-a1"}},
		{a.ID, 2, []string{"x-a3", "y-a2"}},
		{b.ID, 10, []string{"b1"}},
		{"taaaaaaaaaaaaaaaa", 10, []string{}},
	}
	for _, c := range cases {
		ds, err := st.WebhookDeliveries(ctx, c.tenantID, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := deliveryIDs(ds); !reflect.DeepEqual(got, c.want) {
			t.Errorf("WebhookDeliveries(%s, %d) = %v, want %v", c.tenantID, c.limit, got, c.want)
		}
		for _, d := range ds {
			if d.TenantID != c.tenantID || string(d.Payload) != d.ID {
				t.Errorf("delivery %+v listed for %s", d, c.tenantID)
			}
		}
	}
}
