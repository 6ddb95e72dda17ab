package views_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"wabot/views"
)

func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

// Each session state has its own placeholder on the link page.
func TestLinkPanelPlaceholderPerState(t *testing.T) {
	cases := []struct {
		state   string
		present []string
		absent  []string
	}{
		{"QR_PENDING", []string{"qr-pending"}, []string{"qr-image", "connected", "new-code"}},
		{"QR_READY", []string{"qr-image", "countdown", "simulate-scan"}, []string{"qr-pending", "connected"}},
		{"QR_EXPIRED", []string{"qr-expired", "new-code"}, []string{"qr-image"}},
		{"CONNECTED", []string{"connected", "linked-number", "unlink"}, []string{"qr-image", "new-code"}},
		{"DISCONNECTED", []string{"disconnected"}, []string{"qr-image"}},
		{"LOGGED_OUT", []string{"logged-out", "new-code"}, []string{"qr-image"}},
		{"ERROR", []string{"session-error", "error-text", "new-code"}, []string{"qr-image"}},
	}
	for _, c := range cases {
		t.Run(c.state, func(t *testing.T) {
			v := views.LinkPanelView{TenantID: "tabcdefghijklmnop", Demo: true, Session: views.SessionView{
				State: c.state, StateLabel: "label", StateLine: "line", QRDataURI: "data:image/png;base64,AAAA",
				QRExpiresAt: "2026-01-01T00:00:00Z", QRSecondsLeft: 20, Number: "+15550001111",
				LastError: "Something failed; press Restart.", ErrorCode: "reconnect_failed",
			}}
			doc := render(t, views.LinkPanel(v))
			if st, _ := testid(doc, "link-panel").Attr("data-state"); st != c.state {
				t.Fatalf("data-state %q", st)
			}
			for _, id := range c.present {
				if testid(doc, id).Length() == 0 {
					t.Errorf("%s: %s missing", c.state, id)
				}
			}
			for _, id := range c.absent {
				if testid(doc, id).Length() != 0 {
					t.Errorf("%s: %s should not show", c.state, id)
				}
			}
		})
	}
}

func TestQRImageHasAltTextAndDataURI(t *testing.T) {
	doc := render(t, views.LinkPanel(views.LinkPanelView{Session: views.SessionView{State: "QR_READY", QRDataURI: "data:image/png;base64,AAAA"}}))
	img := testid(doc, "qr-image")
	if src, _ := img.Attr("src"); src != "data:image/png;base64,AAAA" {
		t.Fatalf("src %q", src)
	}
	if alt, _ := img.Attr("alt"); !strings.Contains(alt, "QR code") {
		t.Fatalf("alt %q", alt)
	}
	if testid(doc, "simulate-scan").Length() != 0 {
		t.Fatal("Simulate scan outside the demo build")
	}
}

func TestPairCodeShownBigAndCopyable(t *testing.T) {
	doc := render(t, views.LinkPanel(views.LinkPanelView{Session: views.SessionView{State: "QR_READY", PairCode: "ABCD-EFGH"}}))
	if got := testid(doc, "pair-code").Text(); got != "ABCD-EFGH" {
		t.Fatalf("pair code %q", got)
	}
	if doc.Find(`[data-copy="ABCD-EFGH"]`).Length() != 1 {
		t.Fatal("no copy button")
	}
}

func TestDashboardExplainsPendingApproval(t *testing.T) {
	doc := render(t, views.Dashboard(views.DashboardView{
		Chrome:   views.Chrome{Title: "Shop", Email: "a@example.com", HasTenant: true},
		Tenant:   views.TenantView{Name: "Shop", Status: "PENDING", StatusLabel: "Waiting for approval", StatusLine: "An administrator must approve this workspace."},
		Session:  views.SessionView{State: "CONNECTED", StateLabel: "Connected", Number: "+1555", LastSeen: "12 s ago", ConnectedSince: "1 Jan"},
		Messages: []views.MessageView{{Direction: "in", Body: "<script>alert(1)</script>", Status: "replied", StatusLabel: "Replied"}},
	}))
	if !strings.Contains(testid(doc, "tenant-line").Text(), "approve") {
		t.Error("a pending tenant is not told an admin must approve")
	}
	if testid(doc, "last-seen").Text() != "12 s ago" {
		t.Error("last seen missing")
	}
	if body := testid(doc, "message-body").Text(); !strings.Contains(body, "<script>") || doc.Find("td script").Length() != 0 {
		t.Error("a message body must be shown as text, never as markup")
	}
	if st, _ := testid(doc, "message-row").Attr("data-status"); st != "replied" {
		t.Errorf("status %q", st)
	}
}

func TestBotFormShowsFieldErrorsBesideFields(t *testing.T) {
	doc := render(t, views.BotPage(views.BotView{
		Rules:  []views.RuleForm{{Match: "regex", Pattern: "(", Reply: "x"}},
		Errors: map[string]string{"rules[0].pattern": "Not a valid regular expression"},
	}))
	errEl := testid(doc, "error-rules[0].pattern")
	if errEl.Length() != 1 || errEl.Parent().Find(`input[name="rules[0].pattern"]`).Length() != 1 {
		t.Fatal("the error is not beside its field")
	}
	if sel := doc.Find(`select[name="rules[0].match"] option[selected]`); sel.AttrOr("value", "") != "regex" {
		t.Fatalf("match kind not kept: %q", sel.AttrOr("value", ""))
	}
	for _, id := range []string{"rule-pattern-0", "rule-reply-0", "webhook_url", "welcome_reply"} {
		if doc.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("no label for %s", id)
		}
	}
}

func TestErrorPageAndLayout(t *testing.T) {
	doc := render(t, views.ErrorPage(views.ErrorView{Status: 404, Title: "Not Found", Message: "Nothing here."}))
	if testid(doc, "error-page").Length() != 1 || !strings.Contains(doc.Find("h1").Text(), "Not Found") {
		t.Fatal("error page")
	}
	if doc.Find(`a.skip[href="#main"]`).Length() != 1 || doc.Find("html[lang]").Length() != 1 {
		t.Fatal("layout lacks the skip link or the language")
	}
}

// A tenant's name is isolated from the text around it, so a name stored
// with direction overrides (before names were checked) cannot reorder the
// owner, the id or the row's other cells on the admin page.
func TestAdminIsolatesTenantNameDirection(t *testing.T) {
	name := "shop\u202egnp.exe"
	doc := render(t, views.AdminPage(views.AdminView{Tenants: []views.AdminTenantRow{{ID: "t1", Name: name, Owner: "o@example.com"}}}))
	if got := doc.Find("bdi").First().Text(); got != name {
		t.Fatalf("the admin page does not isolate the tenant name in <bdi>: got %q", got)
	}
}

// Every field of the AI section has its label and shows its error right
// after it; the key's field is a password's, always empty; the remove box
// and the "a key is saved" placeholder come only with a saved key; the
// dashboard shows the model's use only when there is a view of it.
func TestBotFormAISection(t *testing.T) {
	inputs := map[string]string{"ai.base_url": "ai_base_url", "ai.model": "ai_model", "ai.api_key": "ai_api_key",
		"ai.system_prompt": "ai_system_prompt", "ai.knowledge": "ai_knowledge", "ai.temperature": "ai_temperature",
		"ai.max_answer_chars": "ai_max_answer_chars", "ai.history_messages": "ai_history_messages",
		"ai.timeout_seconds": "ai_timeout_seconds", "ai.monthly_token_budget": "ai_monthly_token_budget",
		"ai.answers_per_chat_per_day": "ai_answers_per_chat_per_day", "ai.on_failure": "ai_on_failure"}
	errs := map[string]string{}
	for field := range inputs {
		errs[field] = "Wrong " + field
	}
	doc := render(t, views.BotPage(views.BotView{AI: views.AIForm{BaseURL: "https://api.example.com/v1", OnFailure: "fallback"}, Errors: errs}))
	for field, id := range inputs {
		if doc.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("no label for %s", id)
		}
		if prev := testid(doc, "error-"+field).Prev(); prev.AttrOr("id", "") != id {
			t.Errorf("the error of %s follows %q", field, prev.AttrOr("id", ""))
		}
	}
	key := doc.Find("#ai_api_key")
	if key.AttrOr("type", "") != "password" || key.AttrOr("value", "x") != "" || key.AttrOr("placeholder", "") != "" {
		t.Errorf("the key's field without a saved key: %v", key.Nodes[0].Attr)
	}
	if testid(doc, "ai-clear-key").Length() != 0 || testid(doc, "ai-key-not-saved").Length() != 0 {
		t.Error("a form without a saved key offers to remove one, or says one was not saved")
	}

	doc = render(t, views.BotPage(views.BotView{AI: views.AIForm{HasAPIKey: true, KeyNotSaved: true}}))
	if doc.Find("#ai_api_key").AttrOr("placeholder", "") == "" || testid(doc, "ai-clear-key").Length() != 1 || testid(doc, "ai-key-not-saved").Length() != 1 {
		t.Error("a saved key is not announced, or cannot be removed, or a key not saved is not said")
	}

	dash := views.DashboardView{Chrome: views.Chrome{Title: "Shop", HasTenant: true}, Tenant: views.TenantView{Name: "Shop", Status: "ACTIVE"}}
	if testid(render(t, views.Dashboard(dash)), "dashboard-ai").Length() != 0 {
		t.Error("the dashboard shows the model's use without one")
	}
	dash.AI = &views.AIUsageView{Month: "2026-12", Tokens: "12,345 of 500,000 tokens", Answers: 7}
	if got := testid(render(t, views.Dashboard(dash)), "ai-usage-tokens").Text(); got != "12,345 of 500,000 tokens" {
		t.Errorf("the dashboard's tokens: %q", got)
	}
}
