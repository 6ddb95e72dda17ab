package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"wabot/session/fakewa"
)

// sendEnv is a wabot whose API sends go out unpaced, as the tests need.
func sendEnv(t *testing.T, vars map[string]string) *env {
	t.Helper()
	all := map[string]string{"WABOT_APPROVAL": "auto", "WABOT_SEND_PACING": "false"}
	for k, v := range vars {
		all[k] = v
	}
	return newEnv(t, all)
}

// linkedAPI creates a workspace, a key with every workspace scope, and
// links the workspace to a new phone of the fake through the API.
func linkedAPI(t *testing.T, e *env, email, name string) (*apiClient, *fakewa.Phone) {
	t.Helper()
	owner, _ := e.tenantUser(email, name)
	api := e.api(owner.createKey("/app/settings/keys", "all", "messages:send", "messages:read", "session:manage", "bot:manage"))
	if r := api.call(http.MethodPost, "/api/v1/session/link", nil); r.status != http.StatusOK {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	qr := waitAPI(t, api, "/api/v1/session", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), qr["qr_code"].(string)); err != nil {
		t.Fatal(err)
	}
	waitAPI(t, api, "/api/v1/session", func(m map[string]any) bool { return m["state"] == "CONNECTED" })
	return api, phone
}

// withHeader is the client sending one more header on every request.
func (a *apiClient) withHeader(name, value string) *apiClient {
	c, hc := *a, *a.c
	base := hc.Transport
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set(name, value)
		return base.RoundTrip(r)
	})
	c.c = &hc
	return &c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func msgPath(m map[string]any) string { return fmt.Sprintf("/api/v1/messages/%.0f", m["id"].(float64)) }

// TestAPIV1SendDeliveredRead: a text sent with a key reaches the contact,
// who decrypts it; GET follows it from queued to delivered, and to read
// once the contact opens it. The same Idempotency-Key again answers 200
// with the first message and the contact gets nothing more; reply_to
// quotes; a number without WhatsApp ends failed with not_on_whatsapp.
func TestAPIV1SendDeliveredRead(t *testing.T) {
	e := sendEnv(t, nil)
	api, phone := linkedAPI(t, e, "send@example.com", "Send Shop")
	carl := phone.NewContact("", "Carl")
	to := "+" + carl.JID().User
	keyed := api.withHeader("Idempotency-Key", "order-1001 shipped")

	r := keyed.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": to, "text": "Your order #1001 has shipped."})
	if r.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	first := r.json(t)
	if first["status"] != "queued" || first["to"] != to || first["chat"] != carl.JID().String() || first["wa_id"] == nil {
		t.Fatalf("queued message %v", first)
	}
	if r.header.Get("Location") != msgPath(first) {
		t.Fatalf("Location %q, want %q", r.header.Get("Location"), msgPath(first))
	}
	got, err := carl.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "Your order #1001 has shipped." || got.ID != first["wa_id"] {
		t.Fatalf("Carl decrypted %q (id %s), want the message %v", got.Text, got.ID, first["wa_id"])
	}
	delivered := waitAPI(t, api, msgPath(first), func(m map[string]any) bool { return m["status"] == "delivered" })
	if delivered["sent_at"] == nil || delivered["delivered_at"] == nil || delivered["read_at"] != nil {
		t.Fatalf("delivered message %v", delivered)
	}

	// The same key: the first message, 200, nothing sent again.
	r = keyed.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": to, "text": "Your order #1001 has shipped."})
	if r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("same key: %d %s", r.status, r.body)
	}
	if again := r.json(t); again["id"] != first["id"] || again["status"] != "delivered" {
		t.Fatalf("same key gave %v, want message %v as it stands", again, first["id"])
	}

	if _, err := carl.Read(); err != nil {
		t.Fatal(err)
	}
	read := waitAPI(t, api, msgPath(first), func(m map[string]any) bool { return m["status"] == "read" })
	if read["read_at"] == nil {
		t.Fatalf("read message %v", read)
	}

	// A quoted reply goes out after the first in the same chat: had the
	// repeated key sent anything, Carl would get that first.
	r = api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": carl.JID().String(), "text": "Tracking: 1001", "reply_to": first["id"]})
	if r.status != http.StatusAccepted || r.json(t)["reply_to"] != first["id"] {
		t.Fatalf("reply: %d %s", r.status, r.body)
	}
	got, err = carl.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ext := got.Message.GetExtendedTextMessage()
	if ext.GetText() != "Tracking: 1001" || ext.GetContextInfo().GetStanzaID() != first["wa_id"] {
		t.Fatalf("Carl's next message is %q (%v), want the quoted reply", got.Text, got.Message)
	}
	out := api.call(http.MethodGet, "/api/v1/messages?direction=out&chat="+to, nil).json(t)
	if n := len(out["messages"].([]any)); n != 2 {
		t.Fatalf("%d messages out to Carl, want 2: %v", n, out)
	}

	// A number WhatsApp does not know: accepted, then failed.
	r = api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+19995550123", "text": "Hello?"})
	if r.status != http.StatusAccepted {
		t.Fatalf("send to unknown: %d %s", r.status, r.body)
	}
	failed := waitAPI(t, api, msgPath(r.json(t)), func(m map[string]any) bool { return m["status"] != "queued" })
	if failed["status"] != "failed" || failed["reason"] != "not_on_whatsapp" || failed["sent_at"] != nil {
		t.Fatalf("unknown number: %v", failed)
	}
}

// TestAPIV1MessagesRefused: scopes, strict bodies, the Idempotency-Key
// header, the queue bound (429, nothing stored) and a contact check
// while offline (409 session_not_connected). No link needed: sends wait.
func TestAPIV1MessagesRefused(t *testing.T) {
	e := sendEnv(t, map[string]string{"WABOT_SEND_MAX_QUEUED": "2"})
	owner, _ := e.tenantUser("refuse@example.com", "Refuse Shop")
	api := e.api(owner.createKey("/app/settings/keys", "all", "messages:send", "messages:read"))
	readOnly := e.api(owner.createKey("/app/settings/keys", "reader", "messages:read"))
	sendOnly := e.api(owner.createKey("/app/settings/keys", "sender", "messages:send"))
	ok := map[string]any{"to": "+15551230001", "text": "hello"}

	wantErr(t, "send without messages:send", readOnly.call(http.MethodPost, "/api/v1/messages", ok), http.StatusForbidden, "forbidden")
	wantErr(t, "list without messages:read", sendOnly.call(http.MethodGet, "/api/v1/messages", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "chats without messages:read", sendOnly.call(http.MethodGet, "/api/v1/chats", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "check without messages:read", sendOnly.call(http.MethodPost, "/api/v1/contacts/check", map[string]any{"phones": []string{"+15551230001"}}), http.StatusForbidden, "forbidden")

	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"unknown field", map[string]any{"to": "+15551230001", "text": "hi", "priority": "high"}, "priority"},
		{"text too long", map[string]any{"to": "+15551230001", "text": strings.Repeat("é", 65537)}, "text"},
		{"no text", map[string]any{"to": "+15551230001"}, "text"},
		{"bad to", map[string]any{"to": "0044 20 7946 0000", "text": "hi"}, "to"},
		{"to as a number", `{"to": 15551230001, "text": "hi"}`, "to"},
		{"reply_to as a string", `{"to": "+15551230001", "text": "hi", "reply_to": "7"}`, "reply_to"},
		{"reply_to unknown", map[string]any{"to": "+15551230001", "text": "hi", "reply_to": 999999}, "reply_to"},
	} {
		r := api.call(http.MethodPost, "/api/v1/messages", c.body)
		wantErr(t, c.name, r, http.StatusUnprocessableEntity, "validation_failed")
		if _, f := apiErr(t, r); f[c.field] == nil {
			t.Errorf("%s: field %s not named: %s", c.name, c.field, r.body)
		}
	}
	for name, key := range map[string]string{"too long": strings.Repeat("k", 256), "not ASCII": "clé-1", "control": "a\tb"} {
		r := api.withHeader("Idempotency-Key", key).call(http.MethodPost, "/api/v1/messages", ok)
		wantErr(t, "Idempotency-Key "+name, r, http.StatusUnprocessableEntity, "validation_failed")
		if _, f := apiErr(t, r); f["Idempotency-Key"] == nil {
			t.Errorf("Idempotency-Key %s: header not named: %s", name, r.body)
		}
	}
	wantErr(t, "not JSON", api.call(http.MethodPost, "/api/v1/messages", `{"to":`), http.StatusBadRequest, "bad_request")
	wantErr(t, "bad limit", api.call(http.MethodGet, "/api/v1/messages?limit=500", nil), http.StatusUnprocessableEntity, "validation_failed")
	wantErr(t, "bad status", api.call(http.MethodGet, "/api/v1/messages?status=lost", nil), http.StatusUnprocessableEntity, "validation_failed")
	wantErr(t, "bad chat", api.call(http.MethodGet, "/api/v1/messages?chat=nobody", nil), http.StatusUnprocessableEntity, "validation_failed")
	wantErr(t, "bad cursor", api.call(http.MethodGet, "/api/v1/chats?cursor=x", nil), http.StatusUnprocessableEntity, "validation_failed")
	wantErr(t, "no such message", api.call(http.MethodGet, "/api/v1/messages/999999", nil), http.StatusNotFound, "not_found")
	wantErr(t, "not an id", api.call(http.MethodGet, "/api/v1/messages/abc", nil), http.StatusNotFound, "not_found")
	if r := api.call(http.MethodGet, "/api/v1/messages", nil); r.status != http.StatusOK || len(r.json(t)["messages"].([]any)) != 0 {
		t.Fatalf("refused sends were stored: %d %s", r.status, r.body)
	}

	// The session is not linked: sends wait in the queue, up to its bound.
	for i := range 2 {
		if r := api.call(http.MethodPost, "/api/v1/messages", ok); r.status != http.StatusAccepted || r.json(t)["status"] != "queued" {
			t.Fatalf("send %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := api.withHeader("Idempotency-Key", "third").call(http.MethodPost, "/api/v1/messages", ok)
	wantErr(t, "over the queue bound", r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if list := api.call(http.MethodGet, "/api/v1/messages?status=queued", nil).json(t); len(list["messages"].([]any)) != 2 {
		t.Fatalf("after the refused send: %v", list)
	}

	// Checking numbers needs WhatsApp: 409 while not connected.
	wantErr(t, "check offline", api.call(http.MethodPost, "/api/v1/contacts/check", map[string]any{"phones": []string{"+15551230001"}}),
		http.StatusConflict, "session_not_connected")
	r = api.call(http.MethodPost, "/api/v1/contacts/check", map[string]any{"phones": []string{"+15551230001", "12345"}})
	wantErr(t, "bad phone", r, http.StatusUnprocessableEntity, "validation_failed")
	if _, f := apiErr(t, r); f["phones[1]"] == nil {
		t.Fatalf("bad phone not named: %s", r.body)
	}
	wantErr(t, "no phones", api.call(http.MethodPost, "/api/v1/contacts/check", map[string]any{"phones": []string{}}), http.StatusUnprocessableEntity, "validation_failed")
}

// TestAPIV1ListsChatsContacts: messages page by cursor and filter by
// direction, status and chat; chats show their last message and counts
// and page too; a contact check tells known numbers from unknown ones.
func TestAPIV1ListsChatsContacts(t *testing.T) {
	e := sendEnv(t, nil)
	api, phone := linkedAPI(t, e, "lists@example.com", "List Shop")
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")

	if _, err := ann.Send("Is my order ready?"); err != nil {
		t.Fatal(err)
	}
	waitAPI(t, api, "/api/v1/messages?direction=in", func(m map[string]any) bool { return len(m["messages"].([]any)) == 1 })
	var sent []map[string]any
	for _, s := range []struct{ to *fakewa.Contact }{{ann}, {bob}, {ann}} {
		r := api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+" + s.to.JID().User, "text": fmt.Sprintf("note %d", len(sent)+1)})
		if r.status != http.StatusAccepted {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		sent = append(sent, r.json(t))
	}
	for _, m := range sent {
		waitAPI(t, api, msgPath(m), func(m map[string]any) bool { return m["status"] == "delivered" })
	}

	// Four messages, newest first, two a page.
	var ids []float64
	cursor := ""
	for page := 1; ; page++ {
		r := api.call(http.MethodGet, "/api/v1/messages?limit=2"+cursor, nil)
		if r.status != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, r.status, r.body)
		}
		list := r.json(t)
		for _, m := range list["messages"].([]any) {
			ids = append(ids, m.(map[string]any)["id"].(float64))
		}
		if list["next"] == nil {
			break
		}
		if page > 3 {
			t.Fatalf("more pages than messages: %v", ids)
		}
		cursor = "&cursor=" + list["next"].(string)
	}
	if len(ids) != 4 || ids[0] != sent[2]["id"] || ids[1] != sent[1]["id"] || ids[2] != sent[0]["id"] {
		t.Fatalf("paged ids %v, want the three sends newest first, then Ann's message", ids)
	}
	in := api.call(http.MethodGet, "/api/v1/messages?direction=in", nil).json(t)["messages"].([]any)
	if len(in) != 1 || in[0].(map[string]any)["text"] != "Is my order ready?" || in[0].(map[string]any)["status"] != "received" {
		t.Fatalf("incoming %v", in)
	}
	if n := len(api.call(http.MethodGet, "/api/v1/messages?status=delivered", nil).json(t)["messages"].([]any)); n != 3 {
		t.Fatalf("%d delivered, want 3", n)
	}
	if n := len(api.call(http.MethodGet, "/api/v1/messages?chat="+bob.JID().String(), nil).json(t)["messages"].([]any)); n != 1 {
		t.Fatalf("%d in Bob's chat, want 1", n)
	}

	// Ann's chat was active last; one chat a page.
	r := api.call(http.MethodGet, "/api/v1/chats?limit=1", nil)
	chats := r.json(t)
	first := chats["chats"].([]any)[0].(map[string]any)
	if first["chat"] != ann.JID().String() || first["phone"] != "+"+ann.JID().User || first["messages"] != 3.0 || first["in"] != 1.0 || first["out"] != 2.0 ||
		first["last_message"].(map[string]any)["id"] != sent[2]["id"] || chats["next"] == nil {
		t.Fatalf("first chat page %s", r.body)
	}
	r = api.call(http.MethodGet, "/api/v1/chats?limit=1&cursor="+chats["next"].(string), nil)
	chats = r.json(t)
	second := chats["chats"].([]any)
	if len(second) != 1 || second[0].(map[string]any)["chat"] != bob.JID().String() || second[0].(map[string]any)["out"] != 1.0 || chats["next"] != nil {
		t.Fatalf("second chat page %s", r.body)
	}

	r = api.call(http.MethodPost, "/api/v1/contacts/check", map[string]any{"phones": []string{"+" + bob.JID().User, "+19995550123"}})
	if r.status != http.StatusOK {
		t.Fatalf("check: %d %s", r.status, r.body)
	}
	got := r.json(t)["contacts"].([]any)
	known, unknown := got[0].(map[string]any), got[1].(map[string]any)
	if known["on_whatsapp"] != true || known["chat"] != bob.JID().String() || unknown["on_whatsapp"] != false || unknown["chat"] != nil ||
		unknown["phone"] != "+19995550123" {
		t.Fatalf("contacts %s", r.body)
	}
}
