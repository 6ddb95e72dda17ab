package bot

import (
	"slices"
	"testing"

	"wabot/tenant"
)

// eventsOf returns "<type>/<status>[/<reason>]" of the receiver's events
// about message id, after checking each delivery's signature with secret.
func eventsOf(t *testing.T, rc *receiver, secret string, id int64) []string {
	t.Helper()
	var out []string
	for _, r := range rc.all() {
		d := mustData(t, r)
		if n, _ := d["message_id"].(float64); int64(n) != id {
			continue
		}
		if err := verifyEvent(secret, r.header, r.body, r.at); err != nil {
			t.Fatalf("%s delivery does not verify: %v (%s)", r.event.Type, err, r.header.Get("X-Wabot-Signature"))
		}
		if verifyEvent("whsec_another_secret_entirely", r.header, r.body, r.at) == nil {
			t.Fatalf("a %s delivery verifies with another secret", r.event.Type)
		}
		s := r.event.Type + "/" + str(d, "status")
		if reason := str(d, "reason"); reason != "" {
			s += "/" + reason
		}
		out = append(out, s)
	}
	slices.Sort(out) // deliveries may overtake each other
	return out
}

// An API send is told to a subscription of message.sent and
// message.status as sent, then delivered (the contact's phone
// acknowledges it), then read (the contact opens it), once each and
// signed; a send to a number not on WhatsApp is told as failed, with the
// reason, and never as sent.
func TestSendStatusesReachTheEventWebhookSigned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	r := newRig(t, Options{AllowPrivateWebhooks: true, Send: SendOptions{NoPacing: true}})
	id, phone, sub := r.subscribedTenant(rc.srv.URL+"/events", tenant.EventMessageSent, tenant.EventMessageStatus)
	carl := phone.NewContact("", "Carl")

	m, _ := r.send(id, tenant.SendRequest{To: "+" + carl.JID().User, Text: "Your order shipped"})
	expect(t, carl, "Your order shipped")
	isMsg := func(d map[string]any) bool { n, _ := d["message_id"].(float64); return int64(n) == m.ID }
	sent := rc.waitEvent(t, "message.sent", isMsg)
	if d := mustData(t, sent); str(d, "to") != "+"+carl.JID().User || str(d, "wa_id") != m.WAID || str(d, "source") != "api" || str(d, "at") == "" {
		t.Errorf("message.sent data %s", sent.event.Data)
	}
	rc.waitEvent(t, "message.status", func(d map[string]any) bool { return isMsg(d) && str(d, "status") == "delivered" })
	if _, err := carl.Read(); err != nil {
		t.Fatal(err)
	}
	rc.waitEvent(t, "message.status", func(d map[string]any) bool { return isMsg(d) && str(d, "status") == "read" })
	r.waitStatus(id, m.ID, tenant.APIRead)
	want := []string{"message.sent/sent", "message.status/delivered", "message.status/read"}
	if got := eventsOf(t, rc, sub.Secret, m.ID); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	lost, _ := r.send(id, tenant.SendRequest{To: "+19990000001", Text: "hello?"})
	failed := rc.waitEvent(t, "message.status", func(d map[string]any) bool {
		n, _ := d["message_id"].(float64)
		return int64(n) == lost.ID
	})
	if d := mustData(t, failed); str(d, "status") != "failed" || str(d, "reason") != tenant.ReasonNotOnWhatsApp || str(d, "error") == "" || str(d, "to") != "+19990000001" {
		t.Errorf("failed event data %s", failed.event.Data)
	}
	r.waitStatus(id, lost.ID, tenant.APIFailed)
	if got := eventsOf(t, rc, sub.Secret, lost.ID); !slices.Equal(got, []string{"message.status/failed/not_on_whatsapp"}) {
		t.Fatalf("events of the failed send %v", got)
	}
}
