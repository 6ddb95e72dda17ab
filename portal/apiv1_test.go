package portal_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"wabot/tenant"
)

// apiClient is a program using /api/v1 as curl would: a bearer key, no
// cookies. Every answer is checked against the OpenAPI document.
type apiClient struct {
	t   *testing.T
	e   *env
	key string
	c   *http.Client
}

func (e *env) api(key string) *apiClient {
	return &apiClient{t: e.t, e: e, key: key, c: &http.Client{Transport: e.google.transport(), Timeout: 60 * time.Second}}
}

// call sends body (nil, a raw string, or a value to encode as JSON).
func (a *apiClient) call(method, path string, body any) resp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, a.e.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	r, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	out := resp{status: r.StatusCode, body: string(raw), header: r.Header, url: r.Request.URL.String()}
	checkResponse(a.t, method, path, out.status, out.body)
	return out
}

// apiErr is the error code and fields of an /api/v1 error answer.
func apiErr(t *testing.T, r resp) (string, map[string]any) {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error answer (%d): %s", r.status, r.body)
	}
	fields, _ := e["fields"].(map[string]any)
	return e["code"].(string), fields
}

func wantErr(t *testing.T, what string, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d %s, want %d %s", what, r.status, r.body, status, code)
	}
	if got, _ := apiErr(t, r); got != code {
		t.Fatalf("%s: code %q, want %q (%s)", what, got, code, r.body)
	}
}

// TestAPIV1KeyFromPortal: a key made on the portal works with curl-like
// HTTP within its scopes; without a scope it is 403, after revocation
// 401; the portal's cookie alone never gets in.
func TestAPIV1KeyFromPortal(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("curl@example.com", "Curl Shop")
	secret := b.createKey("/app/settings/keys", "script", "session:manage", "bot:manage")
	api := e.api(secret)

	r := api.call(http.MethodGet, "/api/v1/session", nil)
	if r.status != http.StatusOK || r.json(t)["state"] != "QR_PENDING" {
		t.Fatalf("session: %d %s", r.status, r.body)
	}
	r = api.call(http.MethodPut, "/api/v1/bot", map[string]any{"enabled": true, "rules": []map[string]string{{"match": "contains", "pattern": "price", "reply": "5 EUR"}}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"5 EUR"`) {
		t.Fatalf("put bot: %d %s", r.status, r.body)
	}
	if r := api.call(http.MethodGet, "/api/v1/bot", nil); r.status != http.StatusOK || !strings.Contains(r.body, `"5 EUR"`) {
		t.Fatalf("get bot: %d %s", r.status, r.body)
	}
	// The owner sees that the key was used.
	if doc := page(t, b.get("/app/settings/keys")); testText(doc, "key-last-used") == "never" {
		t.Fatal("last use not shown")
	}

	// Strict JSON: unknown fields and wrong types are 422 naming the field;
	// what is not JSON is 400; the bot's own validation is 422 too.
	r = api.call(http.MethodPut, "/api/v1/bot", `{"enabled": true, "colour": "red"}`)
	wantErr(t, "unknown field", r, http.StatusUnprocessableEntity, "validation_failed")
	if _, f := apiErr(t, r); f["colour"] == nil {
		t.Fatalf("unknown field not named: %s", r.body)
	}
	r = api.call(http.MethodPut, "/api/v1/bot", `{"enabled": "yes"}`)
	wantErr(t, "wrong type", r, http.StatusUnprocessableEntity, "validation_failed")
	if _, f := apiErr(t, r); f["enabled"] == nil {
		t.Fatalf("wrong type not named: %s", r.body)
	}
	r = api.call(http.MethodPut, "/api/v1/bot", `{"rules": [{"match": "regex", "pattern": "(", "reply": "x"}]}`)
	wantErr(t, "bad rule", r, http.StatusUnprocessableEntity, "validation_failed")
	if _, f := apiErr(t, r); len(f) == 0 {
		t.Fatalf("bad rule without fields: %s", r.body)
	}
	wantErr(t, "not JSON", api.call(http.MethodPut, "/api/v1/bot", `{"enabled": tru`), http.StatusBadRequest, "bad_request")
	wantErr(t, "two objects", api.call(http.MethodPut, "/api/v1/bot", `{} {}`), http.StatusBadRequest, "bad_request")
	r = api.call(http.MethodPost, "/api/v1/session/link/phone", `{"phone": 15550001111}`)
	wantErr(t, "phone as a number", r, http.StatusUnprocessableEntity, "validation_failed")

	// A browser's cross-site request is refused before the key is read,
	// in the API's error shape; programs send no Origin and pass.
	r = b.do(http.MethodPut, "/api/v1/bot", strings.NewReader(`{}`), map[string]string{"Authorization": "Bearer " + secret,
		"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"})
	checkResponse(t, http.MethodPut, "/api/v1/bot", r.status, r.body)
	wantErr(t, "cross-site PUT", r, http.StatusForbidden, "forbidden")
	wantErr(t, "no such route", api.call(http.MethodGet, "/api/v1/nothing-here", nil), http.StatusNotFound, "not_found")

	// A key without the scope is refused with 403.
	sendOnly := e.api(b.createKey("/app/settings/keys", "sender", "messages:send"))
	wantErr(t, "no bot scope", sendOnly.call(http.MethodGet, "/api/v1/bot", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "no session scope", sendOnly.call(http.MethodPost, "/api/v1/session/restart", nil), http.StatusForbidden, "forbidden")

	// No key, a malformed header, an unknown key: 401 with a challenge.
	for name, key := range map[string]string{"no key": "", "unknown": "wabot_" + strings.Repeat("x", 43), "short": "wabot_abc"} {
		r := e.api(key).call(http.MethodGet, "/api/v1/session", nil)
		wantErr(t, name, r, http.StatusUnauthorized, "unauthorized")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%s: no Bearer challenge", name)
		}
	}

	// The browser is signed in, yet its cookie opens nothing under /api/v1,
	// reading or writing.
	for _, c := range []struct{ method, path string }{{http.MethodGet, "/api/v1/session"}, {http.MethodGet, "/api/v1/bot"},
		{http.MethodPut, "/api/v1/bot"}, {http.MethodPost, "/api/v1/session/logout"}} {
		r := b.do(c.method, c.path, strings.NewReader(`{}`), map[string]string{"Content-Type": "application/json"})
		checkResponse(t, c.method, c.path, r.status, r.body)
		wantErr(t, "cookie "+c.method+" "+c.path, r, http.StatusUnauthorized, "unauthorized")
	}
	if r := b.get("/api/portal/tenant/current/status"); r.status != http.StatusOK {
		t.Fatalf("the cookie API stopped working: %d", r.status)
	}

	// Revoked on the portal: 401 at once.
	doc := page(t, b.get("/app/settings/keys"))
	var revoke string
	doc.Find(`[data-testid="key-row"]`).Each(func(_ int, s *goquery.Selection) {
		if strings.TrimSpace(s.Find(`[data-testid="key-name"]`).Text()) == "script" {
			revoke, _ = s.Find(`[data-testid="key-revoke"]`).Attr("href")
		}
	})
	if r := b.postForm(revoke, nil); r.status != http.StatusOK {
		t.Fatalf("revoke: %d", r.status)
	}
	wantErr(t, "revoked", api.call(http.MethodGet, "/api/v1/session", nil), http.StatusUnauthorized, "unauthorized")
}

// TestAPIV1RateLimit: past its budget a key gets 429 with Retry-After;
// another key keeps its own budget.
func TestAPIV1RateLimit(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_API_RATE_PER_MINUTE": "3"})
	b, _ := e.tenantUser("rate@example.com", "Rate Shop")
	first, second := e.api(b.createKey("/app/settings/keys", "one", "bot:manage")), e.api(b.createKey("/app/settings/keys", "two", "bot:manage"))
	for i := range 3 {
		if r := first.call(http.MethodGet, "/api/v1/bot", nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := first.call(http.MethodGet, "/api/v1/bot", nil)
	wantErr(t, "fourth request", r, http.StatusTooManyRequests, "rate_limited")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	if r := second.call(http.MethodGet, "/api/v1/bot", nil); r.status != http.StatusOK {
		t.Fatalf("another key: %d %s", r.status, r.body)
	}
}

// TestAPIV1TenantIsolation: a key of workspace A, holding every scope,
// goes through every route; workspace B's link, bot and standing are
// untouched, and nothing of B's shows in A's answers.
func TestAPIV1TenantIsolation(t *testing.T) {
	_, hook := newEventSink(t, http.StatusOK)
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_WEBHOOK_ALLOW_PRIVATE": "true"})
	ownerA, _ := e.tenantUser("a@example.com", "Shop A")
	ownerB, idB := e.tenantUser("b@example.com", "Shop B")
	all := []string{"messages:send", "messages:read", "session:manage", "bot:manage"}
	a, bk := e.api(ownerA.createKey("/app/settings/keys", "a", all...)), e.api(ownerB.createKey("/app/settings/keys", "b", all...))

	// B links its WhatsApp through the API and sets a bot of its own.
	r := bk.call(http.MethodPost, "/api/v1/session/link", nil)
	if r.status != http.StatusOK {
		t.Fatalf("B link: %d %s", r.status, r.body)
	}
	qr := waitAPI(t, bk, "/api/v1/session", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	if !strings.HasPrefix(qr["qr_png"].(string), "data:image/png;base64,") {
		t.Fatalf("qr %v", qr)
	}
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), qr["qr_code"].(string)); err != nil {
		t.Fatal(err)
	}
	linkedB := waitAPI(t, bk, "/api/v1/session", func(m map[string]any) bool { return m["state"] == "CONNECTED" })
	if linkedB["number"] != "+"+phone.Number() {
		t.Fatalf("B's number %v", linkedB["number"])
	}
	if r := bk.call(http.MethodPut, "/api/v1/bot", map[string]any{"welcome_reply": "B-secret-welcome"}); r.status != http.StatusOK {
		t.Fatalf("B bot: %d %s", r.status, r.body)
	}
	// B sends a message of its own, with an Idempotency-Key A will reuse.
	dora := phone.NewContact("", "Dora")
	r = bk.withHeader("Idempotency-Key", "shared-key").call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+" + dora.JID().User, "text": "B-secret-text"})
	if r.status != http.StatusAccepted {
		t.Fatalf("B send: %d %s", r.status, r.body)
	}
	msgB := waitAPI(t, bk, msgPath(r.json(t)), func(m map[string]any) bool { return m["status"] == "delivered" })

	// B subscribes a webhook and has a delivery of it.
	r = bk.call(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": hook + "?b", "events": []string{"session.state"}})
	if r.status != http.StatusCreated {
		t.Fatalf("B subscribe: %d %s", r.status, r.body)
	}
	subB, secretB := r.json(t)["id"].(string), r.json(t)["secret"].(string)
	bk.call(http.MethodPost, "/api/v1/webhooks/"+subB+"/test", nil)
	dB := bk.call(http.MethodGet, "/api/v1/webhooks/"+subB+"/deliveries", nil).json(t)["deliveries"].([]any)[0].(map[string]any)["id"].(string)

	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/v1/session", nil},
		{http.MethodPost, "/api/v1/session/link", nil},
		{http.MethodPost, "/api/v1/session/link/phone", map[string]string{"phone": "+" + phone.Number()}},
		{http.MethodPost, "/api/v1/session/logout", nil},
		{http.MethodPost, "/api/v1/session/reset", nil},
		{http.MethodPost, "/api/v1/session/restart", nil},
		{http.MethodGet, "/api/v1/bot", nil},
		{http.MethodPut, "/api/v1/bot", map[string]any{"welcome_reply": "A's welcome"}},
		{http.MethodGet, msgPath(msgB), nil},
		{http.MethodGet, "/api/v1/messages", nil},
		{http.MethodGet, "/api/v1/messages?chat=" + dora.JID().String(), nil},
		{http.MethodGet, "/api/v1/chats", nil},
		{http.MethodPost, "/api/v1/messages", map[string]any{"to": "+15551230002", "text": "A's reply", "reply_to": msgB["id"]}},
		{http.MethodPost, "/api/v1/contacts/check", map[string]any{"phones": []string{"+" + dora.JID().User}}},
		{http.MethodGet, "/api/v1/admin/tenants", nil},
		{http.MethodPost, "/api/v1/admin/tenants", map[string]string{"name": "Mine", "owner_email": "b@example.com"}},
		{http.MethodPost, "/api/v1/admin/tenants/" + idB + "/approve", nil},
		{http.MethodPost, "/api/v1/admin/tenants/" + idB + "/suspend", nil},
		{http.MethodPost, "/api/v1/admin/tenants/" + idB + "/resume", nil},
		{http.MethodPost, "/api/v1/admin/tenants/" + idB + "/link", nil},
		{http.MethodGet, "/api/v1/admin/tenants/" + idB + "/session", nil},
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": hook + "?a", "events": []string{"session.state"}}},
		{http.MethodGet, "/api/v1/webhooks", nil},
		{http.MethodGet, "/api/v1/webhooks/" + subB, nil},
		{http.MethodPost, "/api/v1/webhooks/" + subB + "/test", nil},
		{http.MethodPost, "/api/v1/webhooks/" + subB + "/secret", nil},
		{http.MethodGet, "/api/v1/webhooks/" + subB + "/deliveries", nil},
		{http.MethodPost, "/api/v1/webhooks/deliveries/" + dB + "/retry", nil},
		{http.MethodDelete, "/api/v1/webhooks/" + subB, nil},
	}
	for _, rt := range routes {
		r := a.call(rt.method, rt.path, rt.body)
		if strings.Contains(r.body, idB) || strings.Contains(r.body, "B-secret-welcome") || strings.Contains(r.body, "Shop B") ||
			strings.Contains(r.body, "B-secret-text") || strings.Contains(r.body, msgB["wa_id"].(string)) {
			t.Errorf("%s %s shows B's data: %s", rt.method, rt.path, r.body)
		}
		if strings.Contains(r.body, subB) || strings.Contains(r.body, dB) || strings.Contains(r.body, secretB) || strings.Contains(r.body, "?b") {
			t.Errorf("%s %s shows B's webhook: %s", rt.method, rt.path, r.body)
		}
		switch {
		case strings.HasPrefix(rt.path, "/api/v1/admin/"):
			wantErr(t, "A on "+rt.path, r, http.StatusForbidden, "forbidden")
		case strings.Contains(rt.path, subB) || strings.Contains(rt.path, dB):
			wantErr(t, "A on "+rt.method+" "+rt.path, r, http.StatusNotFound, "not_found")
		case r.status >= 500:
			t.Errorf("%s %s: %d %s", rt.method, rt.path, r.status, r.body)
		}
	}

	// B's message is not_found for A, and B's key is no key for A: A's
	// send with it is a new message of A's.
	wantErr(t, "A reads B's message", a.call(http.MethodGet, msgPath(msgB), nil), http.StatusNotFound, "not_found")
	r = a.withHeader("Idempotency-Key", "shared-key").call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+15551230003", "text": "A's own"})
	if r.status != http.StatusAccepted || r.json(t)["id"] == msgB["id"] {
		t.Fatalf("A with B's Idempotency-Key: %d %s", r.status, r.body)
	}
	if list := bk.call(http.MethodGet, "/api/v1/messages", nil).json(t)["messages"].([]any); len(list) != 1 || list[0].(map[string]any)["text"] != "B-secret-text" {
		t.Fatalf("B's messages changed: %v", list)
	}

	after := bk.call(http.MethodGet, "/api/v1/session", nil).json(t)
	if after["state"] != "CONNECTED" || after["number"] != linkedB["number"] || after["connected_at"] != linkedB["connected_at"] {
		t.Fatalf("B's link changed: %v, was %v", after, linkedB)
	}
	if bot := bk.call(http.MethodGet, "/api/v1/bot", nil).json(t); bot["welcome_reply"] != "B-secret-welcome" {
		t.Fatalf("B's bot changed: %v", bot)
	}
	if sub, err := e.app.Store().SubscriptionByID(context.Background(), idB, subB); err != nil || sub.Secret != secretB {
		t.Fatalf("B's webhook changed: %+v %v", sub, err)
	}
	if r := bk.call(http.MethodGet, "/api/v1/webhooks/"+subB+"/deliveries", nil); !strings.Contains(r.body, dB) {
		t.Fatalf("B's delivery is gone: %s", r.body)
	}
	if tb, err := e.app.Store().TenantByID(context.Background(), idB); err != nil || tb.Status != tenant.StatusActive {
		t.Fatalf("B's standing changed: %+v %v", tb, err)
	}
}

func waitAPI(t *testing.T, a *apiClient, path string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := a.call(http.MethodGet, path, nil)
		m := r.json(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never got there: %s", path, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAPIV1AdminProvisioning: an instance key made on /admin/keys creates
// a workspace for an owner's email, approves, suspends and resumes it,
// each audited with the key as actor; the workspace's own keys cannot
// use admin routes, and the instance key cannot use a workspace's.
func TestAPIV1AdminProvisioning(t *testing.T) {
	e := newEnv(t, nil) // manual approval
	admin := newAdmin(e)
	inst := e.api(admin.createKey("/admin/keys", "Reseller"))

	r := inst.call(http.MethodPost, "/api/v1/admin/tenants", map[string]string{"name": "Acme Bakery", "owner_email": "Owner@Acme.example"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := r.json(t)
	id := created["id"].(string)
	if created["status"] != "PENDING" || created["owner_email"] != "owner@acme.example" {
		t.Fatalf("created %v", created)
	}
	// An owner may have several workspaces (an agency's businesses).
	r = inst.call(http.MethodPost, "/api/v1/admin/tenants", map[string]string{"name": "Second", "owner_email": "owner@acme.example"})
	if r.status != http.StatusCreated || r.json(t)["owner_email"] != "owner@acme.example" {
		t.Fatalf("second workspace for one owner: %d %s", r.status, r.body)
	}
	r = inst.call(http.MethodPost, "/api/v1/admin/tenants", map[string]any{"name": "\u202e", "owner_email": "nope", "plan": "gold"})
	wantErr(t, "unknown field", r, http.StatusUnprocessableEntity, "validation_failed")
	r = inst.call(http.MethodPost, "/api/v1/admin/tenants", map[string]any{"name": "\u202e", "owner_email": "nope"})
	wantErr(t, "bad input", r, http.StatusUnprocessableEntity, "validation_failed")
	if _, f := apiErr(t, r); f["name"] == nil || f["owner_email"] == nil {
		t.Fatalf("fields %v", f)
	}

	for _, step := range []struct{ action, status string }{{"approve", "ACTIVE"}, {"suspend", "SUSPENDED"}, {"resume", "ACTIVE"}} {
		r := inst.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/"+step.action, nil)
		if r.status != http.StatusOK || r.json(t)["status"] != step.status {
			t.Fatalf("%s: %d %s", step.action, r.status, r.body)
		}
	}
	wantErr(t, "approve twice", inst.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/approve", nil), http.StatusConflict, "conflict")
	wantErr(t, "unknown tenant", inst.call(http.MethodPost, "/api/v1/admin/tenants/tzzzzzzzzzzzzzzzz/approve", nil), http.StatusNotFound, "not_found")
	list := inst.call(http.MethodGet, "/api/v1/admin/tenants?status=ACTIVE", nil).json(t)
	if ts := list["tenants"].([]any); len(ts) != 1 || ts[0].(map[string]any)["id"] != id || list["total"] != 1.0 {
		t.Fatalf("list %v", list)
	}
	wantErr(t, "bad per_page", inst.call(http.MethodGet, "/api/v1/admin/tenants?per_page=0", nil), http.StatusUnprocessableEntity, "validation_failed")

	log, err := e.app.Store().AuditLog(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, l := range log {
		if l.TenantID == id {
			if !strings.Contains(l.ActorEmail, "Reseller") {
				t.Errorf("audit actor %q", l.ActorEmail)
			}
			actions = append(actions, l.Action)
		}
	}
	if strings.Join(actions, ",") != "resume,suspend,approve,create" {
		t.Fatalf("audit %v", actions)
	}

	// The owner signs in and finds the workspace; its key is no admin.
	owner := e.browser()
	if u := owner.loginLink("owner@acme.example", false); u.TenantID != id {
		t.Fatalf("owner's tenant %q, want %q", u.TenantID, id)
	}
	tk := e.api(owner.createKey("/app/settings/keys", "all", "messages:send", "messages:read", "session:manage", "bot:manage"))
	wantErr(t, "tenant key on admin list", tk.call(http.MethodGet, "/api/v1/admin/tenants", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "tenant key on suspend", tk.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/suspend", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "instance key on a workspace route", inst.call(http.MethodGet, "/api/v1/session", nil), http.StatusForbidden, "forbidden")

	// A suspended workspace's keys are refused.
	inst.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/suspend", nil)
	wantErr(t, "suspended workspace", tk.call(http.MethodGet, "/api/v1/bot", nil), http.StatusForbidden, "forbidden")
}

// TestAPIV1DocumentAndReference: the document is public JSON, and the
// reference page lists each operation with its scope.
func TestAPIV1DocumentAndReference(t *testing.T) {
	e := newEnv(t, nil)
	r := e.api("").call(http.MethodGet, "/api/v1/openapi.json", nil)
	if r.status != http.StatusOK || r.json(t)["openapi"] != "3.1.0" {
		t.Fatalf("document: %d %.200s", r.status, r.body)
	}
	doc := page(t, e.browser().get("/docs/api"))
	ops := doc.Find(`[data-testid="api-operation"]`)
	if ops.Length() < 14 {
		t.Fatalf("%d operations on the reference page", ops.Length())
	}
	bot := doc.Find(`[data-testid="api-operation"][data-method="PUT"][data-path="/api/v1/bot"]`)
	if strings.TrimSpace(bot.Find(`[data-testid="api-scopes"]`).Text()) != "bot:manage" || !strings.Contains(bot.Find(`[data-testid="api-request"]`).Text(), `"rules"`) {
		t.Fatalf("PUT /api/v1/bot on the page: %s", bot.Text())
	}
	if doc.Find(`script[src^="http"], link[href^="http"]`).Length() != 0 {
		t.Fatal("the reference page loads something from elsewhere")
	}
}
