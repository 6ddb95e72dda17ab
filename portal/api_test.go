package portal_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

func TestAPIStatusQRLinkAndLogs(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("api@example.com", "API Shop")

	st := b.get("/api/portal/tenant/current/status").json(t)
	if st["tenant"].(map[string]any)["id"] != id || st["tenant"].(map[string]any)["status"] != "ACTIVE" ||
		st["session"].(map[string]any)["state"] != "QR_PENDING" || st["worker"].(map[string]any)["status"] == nil {
		t.Fatalf("status %v", st)
	}
	qr := b.get("/api/portal/tenant/current/qr").json(t)
	if qr["state"] != "QR_PENDING" || qr["qr"] != nil || qr["qr_code"] != nil {
		t.Fatalf("qr before linking %v", qr)
	}
	r := b.postJSON(http.MethodPost, "/api/portal/tenant/current/link", nil)
	if r.status != http.StatusOK {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	qr = waitJSON(t, b, "/api/portal/tenant/current/qr", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	if !strings.HasPrefix(qr["qr"].(string), "data:image/png;base64,") || qr["qr_code"] == nil || qr["updated_at"] == nil {
		t.Fatalf("qr %v", qr)
	}
	if _, err := time.Parse(time.RFC3339, qr["updated_at"].(string)); err != nil {
		t.Fatalf("updated_at %v", qr["updated_at"])
	}
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), qr["qr_code"].(string)); err != nil {
		t.Fatal(err)
	}
	st = waitJSON(t, b, "/api/portal/tenant/current/status", func(m map[string]any) bool {
		return m["session"].(map[string]any)["state"] == "CONNECTED"
	})
	if st["session"].(map[string]any)["jid"] != phone.Number()+"@s.whatsapp.net" || st["session"].(map[string]any)["connected_at"] == nil {
		t.Fatalf("connected status %v", st)
	}
	// A configured bot answers and both messages are in the log.
	if r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{
		"enabled": true, "rules": []map[string]string{{"match": "contains", "pattern": "price", "reply": "5 EUR"}},
	}); r.status != http.StatusOK {
		t.Fatalf("bot put: %d %s", r.status, r.body)
	}
	ann := phone.NewContact("", "Ann")
	ann.Send("what is the price?")
	if got, err := ann.Next(20 * time.Second); err != nil || got.Text != "5 EUR" {
		t.Fatalf("reply %q %v", got.Text, err)
	}
	logs := waitJSON(t, b, "/api/portal/tenant/current/logs?limit=1", func(m map[string]any) bool {
		ls := m["logs"].([]any)
		return len(ls) == 1 && ls[0].(map[string]any)["status"] == "replied" && ls[0].(map[string]any)["direction"] == "out"
	})
	if logs["next"] == nil {
		t.Fatal("a full page should have a next cursor")
	}
	older := b.get("/api/portal/tenant/current/logs?limit=1&before=" + logs["next"].(string)).json(t)
	if l := older["logs"].([]any); len(l) != 1 || l[0].(map[string]any)["direction"] != "in" || l[0].(map[string]any)["body"] != "what is the price?" {
		t.Fatalf("older page %v", older)
	}
	filtered := b.get("/api/portal/tenant/current/logs?q=EUR").json(t)
	if l := filtered["logs"].([]any); len(l) != 1 || filtered["next"] != nil {
		t.Fatalf("filtered %v", filtered)
	}
}

func waitJSON(t *testing.T, b *browser, path string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := b.get(path).json(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never satisfied: %v", path, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPIErrors(t *testing.T) {
	e := newEnv(t, nil)
	anon := e.browser()
	for _, path := range []string{"/api/portal/tenant/current/qr", "/api/portal/tenant/current/status", "/api/portal/tenant/current/logs", "/api/portal/tenant/current/bot"} {
		if r := anon.get(path); r.status != http.StatusUnauthorized || r.json(t)["error"] != "unauthorized" {
			t.Errorf("anonymous %s: %d %s", path, r.status, r.body)
		}
	}
	if r := anon.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "x"}); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous create: %d", r.status)
	}
	b := e.browser()
	b.loginLink("err@example.com", false)
	for _, path := range []string{"/api/portal/tenant/current/qr", "/api/portal/tenant/current/status", "/api/portal/tenant/current/logs"} {
		if r := b.get(path); r.status != http.StatusNotFound || r.json(t)["error"] != "no tenant" {
			t.Errorf("no tenant %s: %d %s", path, r.status, r.body)
		}
	}
	if r := b.do(http.MethodPost, "/api/portal/tenant", strings.NewReader("{not json"), map[string]string{"Content-Type": "application/json"}); r.status != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", r.status)
	}
	if r := b.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "  "}); r.status != http.StatusUnprocessableEntity || r.json(t)["fields"] == nil {
		t.Errorf("empty name: %d %s", r.status, r.body)
	}
	r := b.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "Err Shop"})
	if r.status != http.StatusCreated || r.json(t)["status"] != "PENDING" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// A second workspace is allowed; it becomes the browser's current one.
	if r := b.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "Second"}); r.status != http.StatusCreated {
		t.Errorf("second tenant: %d %s", r.status, r.body)
	}
	r = b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{
		"enabled": true, "rules": []map[string]string{{"match": "contains", "pattern": "ok", "reply": "fine"}, {"match": "regex", "pattern": "([", "reply": "x"}},
	})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad regex: %d %s", r.status, r.body)
	}
	fields := r.json(t)["fields"].(map[string]any)
	if fields["rules[1].pattern"] == nil || len(fields) != 1 {
		t.Fatalf("fields %v", fields)
	}
	if r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{"enabled": true, "tenant_id": "tother"}); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", r.status)
	}
	if r := b.get("/api/portal/tenant/current/logs?limit=0"); r.status != http.StatusBadRequest {
		t.Errorf("limit 0: %d", r.status)
	}
	if r := b.get("/api/portal/tenant/current/logs?before=abc"); r.status != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", r.status)
	}
	if r := b.get("/api/portal/tenant/current/logs?direction=sideways"); r.status != http.StatusUnprocessableEntity {
		t.Errorf("bad direction: %d", r.status)
	}
	if r := b.postJSON(http.MethodPost, "/api/portal/tenant/current/link/phone", map[string]string{"phone": "12"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("short phone: %d %s", r.status, r.body)
	}
	if r := b.get("/api/portal/nothing"); r.status != http.StatusNotFound || r.json(t)["error"] == nil {
		t.Errorf("unknown API route: %d %s", r.status, r.body)
	}
}

func TestAPIPhonePairing(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("phone@example.com", "Phone Shop")
	phone := e.wa.NewPhone("")
	r := b.postJSON(http.MethodPost, "/api/portal/tenant/current/link/phone", map[string]string{"phone": "+" + phone.Number()})
	if r.status != http.StatusOK {
		t.Fatalf("link/phone: %d %s", r.status, r.body)
	}
	code := r.json(t)["code"].(string)
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("code %q", code)
	}
	if _, err := phone.EnterCode(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	waitJSON(t, b, "/api/portal/tenant/current/status", func(m map[string]any) bool {
		return m["session"].(map[string]any)["state"] == "CONNECTED"
	})
}

// TestTenantIsolation: user A reaches nothing of tenant B, on any route,
// whatever it puts in the request.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	a, aID := e.tenantUser("a@example.com", "Alpha Shop")
	_, bID := e.tenantUser("b@example.com", "Bravo Shop")
	ctx := context.Background()
	st := e.app.Store()
	st.SaveBotConfig(ctx, bID, tenant.BotConfig{Enabled: true, FallbackReply: "bravo secret reply"})

	pages := []string{"/app", "/app/link", "/app/logs", "/app/bot", "/app/session/reset",
		"/api/portal/tenant/current/qr", "/api/portal/tenant/current/status", "/api/portal/tenant/current/logs",
		"/api/portal/tenant/current/bot", "/app?tenant=" + bID, "/api/portal/tenant/current/status?tenant_id=" + bID}
	for _, p := range pages {
		r := a.get(p)
		if strings.Contains(r.body, bID) || strings.Contains(r.body, "Bravo") || strings.Contains(r.body, "bravo secret") {
			t.Errorf("%s shows tenant B's data", p)
		}
	}
	if r := a.get("/api/portal/tenant/current/status"); r.json(t)["tenant"].(map[string]any)["id"] != aID {
		t.Error("status is not A's own")
	}
	// The live link panel streams A's panel only.
	ev := a.streamFirstEvent("/app/link/events")
	if !strings.Contains(ev, "link-panel") || strings.Contains(ev, bID) {
		t.Errorf("event stream %q", ev)
	}
	// Admin routes and B's id in paths: 404, never 403, so ids leak nothing.
	for _, action := range []string{"approve", "suspend", "resume", "reset", "restart"} {
		if r := a.get("/admin/tenants/" + bID + "/" + action); r.status != http.StatusNotFound {
			t.Errorf("GET admin %s: %d", action, r.status)
		}
		if r := a.postForm("/admin/tenants/"+bID+"/"+action, nil); r.status != http.StatusNotFound {
			t.Errorf("POST admin %s: %d", action, r.status)
		}
	}
	if r := a.get("/admin"); r.status != http.StatusNotFound {
		t.Errorf("GET /admin as tenant: %d", r.status)
	}
	// Tenant B's session is untouched by A's attempts.
	if tb, _ := st.TenantByID(ctx, bID); tb.Status != tenant.StatusActive {
		t.Errorf("tenant B is %s", tb.Status)
	}
}

// streamFirstEvent reads the first server-sent event of path.
func (b *browser) streamFirstEvent(path string) string {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.url+path, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.c.Do(req.WithContext(ctx))
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		b.t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	var ev strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" && ev.Len() > 0 {
			break
		}
		ev.WriteString(line + "\n")
	}
	return ev.String()
}

func TestAdminApprovesSuspendsAndAudits(t *testing.T) {
	e := newEnv(t, nil)
	owner, id := e.tenantUser("owner@example.com", "Pending Shop")
	admin := e.browser()
	admin.loginLink("root@example.com", true)
	page := admin.get("/admin")
	if page.status != http.StatusOK || !strings.Contains(page.body, id) || !strings.Contains(page.body, "PENDING") {
		t.Fatalf("admin page: %d", page.status)
	}
	if r := admin.get("/admin/tenants/" + id + "/approve"); !strings.Contains(r.body, `data-testid="confirm"`) {
		t.Fatal("approve should ask for confirmation first")
	}
	if r := admin.postForm("/admin/tenants/"+id+"/approve", nil); r.status != http.StatusOK {
		t.Fatalf("approve: %d", r.status)
	}
	if st := owner.get("/api/portal/tenant/current/status").json(t); st["tenant"].(map[string]any)["status"] != "ACTIVE" {
		t.Fatalf("after approval %v", st)
	}
	admin.postForm("/admin/tenants/"+id+"/suspend", nil)
	w := waitJSON(t, owner, "/api/portal/tenant/current/status", func(m map[string]any) bool {
		return m["worker"].(map[string]any)["status"] == "STOPPED"
	})
	if w["tenant"].(map[string]any)["status"] != "SUSPENDED" {
		t.Fatalf("after suspend %v", w)
	}
	admin.postForm("/admin/tenants/"+id+"/resume", nil)
	waitJSON(t, owner, "/api/portal/tenant/current/status", func(m map[string]any) bool {
		return m["tenant"].(map[string]any)["status"] == "ACTIVE" && m["worker"].(map[string]any)["status"] == "RUNNING"
	})
	audit, _ := e.app.Store().AuditLog(context.Background(), 10)
	if len(audit) != 3 || audit[0].Action != "resume" || audit[2].Action != "approve" || audit[0].ActorEmail != "root@example.com" || audit[0].TenantID != id {
		t.Fatalf("audit %+v", audit)
	}
	if r := admin.get("/admin/tenants/tnotarealtenant00/approve"); r.status != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", r.status)
	}
	if r := admin.get("/admin/tenants/../../etc/approve"); r.status != http.StatusNotFound {
		t.Errorf("path-like id: %d", r.status)
	}
}
