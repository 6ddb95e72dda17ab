package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"wabot/tenant"
)

// evilRule is the rule: 496 characters that compiled to some
// 55,000 instructions.
var evilRule = strings.Repeat(".{0,1000}", 55) + "Z"

// A configuration of the costly rules is refused, naming each
// rule, through the API and the form alike.
func TestBotSaveRefusesCostlyRegex(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("rx@example.com", "Regex Shop")
	var rules []map[string]string
	for range tenant.MaxRules {
		rules = append(rules, map[string]string{"match": "regex", "pattern": evilRule, "reply": "x"})
	}
	r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{"enabled": true, "rules": rules})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("evil rules: %d %.300s", r.status, r.body)
	}
	fields := r.json(t)["fields"].(map[string]any)
	for _, key := range []string{"rules[0].pattern", "rules[99].pattern"} {
		if msg, _ := fields[key].(string); !strings.Contains(msg, "Repeat counts") {
			t.Errorf("%s: %q, want it to explain the repeat limit", key, msg)
		}
	}
	if cfg := b.get("/api/portal/tenant/current/bot").json(t); len(cfg["rules"].([]any)) != 0 {
		t.Errorf("refused rules were stored: %v", cfg["rules"])
	}

	form := url.Values{"op": {"save"}, "enabled": {"1"}, "rule_count": {"1"}, "queue_per_chat": {"20"},
		"rules[0].match": {"regex"}, "rules[0].pattern": {evilRule}, "rules[0].reply": {"x"}}
	r = b.postForm("/app/bot", form)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-rules[0].pattern"`) {
		t.Fatalf("form with the evil rule: %d, error beside the pattern: %v", r.status, strings.Contains(r.body, "error-rules[0].pattern"))
	}
}

// Saves past the per-tenant budget get 429 with Retry-After, through the
// API and the form; another tenant's saves are not affected.
func TestBotSavesAreRateLimited(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("busy@example.com", "Busy Shop")
	cfg := map[string]any{"enabled": true, "rules": []map[string]string{{"match": "contains", "pattern": "hi", "reply": "hello"}}}
	limited := -1
	for i := range 50 {
		r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", cfg)
		if r.status == http.StatusOK {
			continue
		}
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("save %d: %d %s", i+1, r.status, r.body)
		}
		limited = i
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After %q, want 1 to 60 seconds", r.header.Get("Retry-After"))
		}
		if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, "too many saves") {
			t.Errorf("error %q", msg)
		}
		break
	}
	if limited < 1 {
		t.Fatalf("50 saves in a row were never refused (first refusal at %d)", limited)
	}
	form := url.Values{"op": {"save"}, "enabled": {"1"}, "rule_count": {"1"}, "queue_per_chat": {"20"},
		"rules[0].match": {"contains"}, "rules[0].pattern": {"typed by hand"}, "rules[0].reply": {"kept"}}
	r := b.postForm("/app/bot", form)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("form save over the budget: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, "too many saves") || !strings.Contains(r.body, `value="typed by hand"`) {
		t.Errorf("the refused form should say why and keep what was typed")
	}
	// Rearranging the form is not a save.
	if r := b.postForm("/app/bot", url.Values{"op": {"add"}, "rule_count": {"0"}}); r.status != http.StatusOK {
		t.Errorf("adding a rule row while over the budget: %d", r.status)
	}
	other, _ := e.tenantUser("calm@example.com", "Calm Shop")
	if r := other.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", cfg); r.status != http.StatusOK {
		t.Errorf("another tenant's save: %d %s", r.status, r.body)
	}
}

// {{text}} 512 times on an 8 KB message sends and stores a reply of at
// most 4,096 characters; a longer message than the log keeps is stored
// cut.
func TestLongRepliesAndBodiesAreCapped(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("echo@example.com", "Echo Shop")
	if r := b.postJSON(http.MethodPost, "/api/portal/tenant/current/link", nil); r.status != http.StatusOK {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	qr := waitJSON(t, b, "/api/portal/tenant/current/qr", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), qr["qr_code"].(string)); err != nil {
		t.Fatal(err)
	}
	waitJSON(t, b, "/api/portal/tenant/current/status", func(m map[string]any) bool {
		return m["session"].(map[string]any)["state"] == "CONNECTED"
	})
	if r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{
		"enabled": true, "rules": []map[string]string{{"match": "prefix", "pattern": "echo", "reply": strings.Repeat("{{text}}", 512)}},
	}); r.status != http.StatusOK {
		t.Fatalf("bot put: %d %s", r.status, r.body)
	}
	ann := phone.NewContact("", "Ann")
	text := "echo " + strings.Repeat("abcdefgh", 1024)
	if _, err := ann.Send(text); err != nil {
		t.Fatal(err)
	}
	got, err := ann.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got.Text); n > tenant.MaxReplyLength || !strings.HasPrefix(text, strings.TrimSuffix(got.Text, "…")) {
		t.Fatalf("the reply has %d characters (at most %d) and starts %.40q", n, tenant.MaxReplyLength, got.Text)
	}
	logs := waitJSON(t, b, "/api/portal/tenant/current/logs?direction=out", func(m map[string]any) bool {
		ls := m["logs"].([]any)
		return len(ls) == 1 && ls[0].(map[string]any)["status"] == "replied"
	})
	if body := logs["logs"].([]any)[0].(map[string]any)["body"].(string); body != got.Text {
		t.Errorf("the stored reply (%d characters) is not the one sent (%d)", utf8.RuneCountInString(body), utf8.RuneCountInString(got.Text))
	}

	long := "hello " + strings.Repeat("0123456789", 4*tenant.MaxBodyBytes/10)
	if _, err := ann.Send(long); err != nil {
		t.Fatal(err)
	}
	logs = waitJSON(t, b, "/api/portal/tenant/current/logs?direction=in&q=hello", func(m map[string]any) bool { return len(m["logs"].([]any)) == 1 })
	body := logs["logs"].([]any)[0].(map[string]any)["body"].(string)
	if len(body) > tenant.MaxBodyBytes || !strings.HasPrefix(long, body) {
		t.Errorf("an inbound body of %d bytes was stored as %d bytes, want at most %d", len(long), len(body), tenant.MaxBodyBytes)
	}
}

// The logs page of large messages stays small: bodies are cut in the
// table, each with a link to the whole message, whose page is bounded by
// what is stored.
func TestLogsPageOfLargeMessagesStaysSmall(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("big@example.com", "Big Shop")
	ctx := context.Background()
	// "<" costs four bytes in HTML: the worst a body can grow when escaped.
	body := strings.Repeat("<", 200_000)
	for i := range 60 {
		_, _, err := e.app.Store().StoreInbound(ctx, id, tenant.Inbound{Chat: "1555@s.whatsapp.net", Sender: "1555@s.whatsapp.net",
			WAID: "big" + strconv.Itoa(i), Kind: "text", Body: body, Status: tenant.MsgIgnored})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := b.get("/app/logs")
	if r.status != http.StatusOK {
		t.Fatalf("logs page: %d", r.status)
	}
	const budget = 200 << 10
	if len(r.body) > budget {
		t.Errorf("the logs page is %d bytes, more than %d", len(r.body), budget)
	}
	if rows := strings.Count(r.body, `data-testid="message-row"`); rows != 50 {
		t.Errorf("%d rows, want a page of 50", rows)
	}
	if !strings.Contains(r.body, `data-testid="older"`) {
		t.Error("no link to older messages")
	}
	more := strings.Count(r.body, `data-testid="message-more"`)
	if more != 50 {
		t.Fatalf("%d of 50 cut bodies link to the whole message", more)
	}
	_, rest, _ := strings.Cut(r.body, `data-testid="message-more"`)
	_, rest, _ = strings.Cut(rest, `href="`)
	href, _, _ := strings.Cut(rest, `"`)
	page := b.get(href)
	if page.status != http.StatusOK || !strings.Contains(page.body, strings.Repeat("&lt;", tenant.MaxBodyBytes)) {
		t.Fatalf("the message's page (%s): %d, has the stored body: %v", href, page.status, strings.Contains(page.body, strings.Repeat("&lt;", 100)))
	}
	if len(page.body) > 5*tenant.MaxBodyBytes+20<<10 {
		t.Errorf("the message's page is %d bytes", len(page.body))
	}
	// Another tenant cannot open it.
	other, _ := e.tenantUser("other@example.com", "Other Shop")
	if r := other.get(href); r.status != http.StatusNotFound {
		t.Errorf("another tenant's message: %d", r.status)
	}
}

// A rule narrowed to photos, with no pattern, saves through the form and
// shows again with its kind chosen; an unknown kind is refused beside the
// rule.
func TestBotRuleForAKindOfMessage(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("photos@example.com", "Photo Shop")
	form := url.Values{"op": {"save"}, "enabled": {"1"}, "rule_count": {"1"}, "queue_per_chat": {"20"},
		"rules[0].kind": {"image"}, "rules[0].match": {"contains"}, "rules[0].pattern": {""}, "rules[0].reply": {"Thanks for the photo!"}}
	if r := b.postForm("/app/bot", form); r.status != http.StatusOK && r.status != http.StatusSeeOther {
		t.Fatalf("saving a photo rule: %d %.300s", r.status, r.body)
	}
	cfg := b.get("/api/portal/tenant/current/bot").json(t)
	rules, _ := cfg["rules"].([]any)
	if len(rules) != 1 || rules[0].(map[string]any)["kind"] != "image" {
		t.Fatalf("stored rules %v, want one photo rule", cfg["rules"])
	}
	if page := b.get("/app/bot").body; !strings.Contains(page, `<option value="image" selected>`) {
		t.Errorf("the Bot page does not show the rule's kind chosen")
	}
	r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{"enabled": true,
		"rules": []map[string]string{{"kind": "gif", "match": "contains", "pattern": "", "reply": "x"}}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "rules[0].kind") {
		t.Fatalf("an unknown kind: %d %.300s", r.status, r.body)
	}
}

// The Bot page's read-receipts box is saved and shown again.
func TestBotPageReadReceipts(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("ticks@example.com", "Tick Shop")
	form := url.Values{"op": {"save"}, "enabled": {"1"}, "read_receipts": {"1"}, "rule_count": {"0"}, "queue_per_chat": {"20"}}
	if r := b.postForm("/app/bot", form); r.status != http.StatusOK && r.status != http.StatusSeeOther {
		t.Fatalf("save: %d %.300s", r.status, r.body)
	}
	if cfg := b.get("/api/portal/tenant/current/bot").json(t); cfg["read_receipts"] != true {
		t.Fatalf("read_receipts stored as %v", cfg["read_receipts"])
	}
	if page := b.get("/app/bot").body; !strings.Contains(page, `name="read_receipts" value="1" checked`) {
		t.Error("the Bot page does not show read receipts on")
	}
}

// The log says which rule wrote a bot reply.
func TestLogShowsWhatWroteAReply(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("origin@example.com", "Origin Shop")
	ctx := context.Background()
	in, _, err := e.app.Store().StoreInbound(ctx, id, tenant.Inbound{Chat: "1555@s.whatsapp.net", Sender: "1555@s.whatsapp.net",
		WAID: "o1", Kind: "text", Body: "price?", Status: tenant.MsgReceived})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store().LogReplies(ctx, id, nil, []tenant.Reply{{InID: in, Chat: "1555@s.whatsapp.net", Body: "See the list", Origin: tenant.OriginRule(2)}},
		func(r tenant.Reply) tenant.Reply { r.Status, r.WAID = tenant.MsgPending, "3EB0ORIGIN"; return r }); err != nil {
		t.Fatal(err)
	}
	if page := b.get("/app/logs").body; !strings.Contains(page, `data-testid="message-origin">bot · rule 2<`) {
		t.Fatal("the log does not say which rule wrote the reply")
	}
}
