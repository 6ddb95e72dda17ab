package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The Bot page saves the hand-over settings and shows them again; the
// API reads them back; a refused setting is shown right after its field,
// with what was typed, and nothing is saved.
func TestBotPageHandoverSettings(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("handover@example.com", "Handover Shop")
	form := func(keywords, reply, resume string) url.Values {
		return url.Values{"op": {"save"}, "enabled": {"1"}, "rule_count": {"0"}, "queue_per_chat": {"20"},
			"handover_keywords": {keywords}, "handover_reply": {reply}, "handover_resume_after_minutes": {resume}}
	}
	if r := b.postForm("/app/bot", form(" agent, Talk to a human ,,", "A person comes, {{name}}.", "90")); (r.status != http.StatusOK && r.status != http.StatusSeeOther) || strings.Contains(r.body, "bot-errors") {
		t.Fatalf("saving the hand-over: %d %.300s", r.status, r.body)
	}
	doc := page(t, b.get("/app/bot"))
	if got := doc.Find("#handover_keywords").AttrOr("value", ""); got != "agent, Talk to a human" {
		t.Errorf("keywords shown as %q", got)
	}
	if got := doc.Find("#handover_reply").Text(); got != "A person comes, {{name}}." {
		t.Errorf("reply shown as %q", got)
	}
	if got := doc.Find("#handover_resume").AttrOr("value", ""); got != "90" {
		t.Errorf("idle minutes shown as %q", got)
	}
	api := e.api(b.createKey("/app/settings/keys", "script", "bot:manage"))
	r := api.call(http.MethodGet, "/api/v1/bot", nil)
	h, _ := r.json(t)["handover"].(map[string]any)
	if r.status != http.StatusOK || h["resume_after_minutes"] != float64(90) || len(h["keywords"].([]any)) != 2 {
		t.Fatalf("the API reads %d %s", r.status, r.body)
	}

	long := strings.Repeat("x", 51)
	for field, f := range map[string]url.Values{
		"handover.keywords":             form("agent, "+long, "A person comes.", "60"),
		"handover.reply":                form("agent", "  ", "60"),
		"handover.resume_after_minutes": form("agent", "A person comes.", "20000"),
	} {
		r := b.postForm("/app/bot", f)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s refused with %d", field, r.status)
		}
		doc := page(t, r)
		errEl := doc.Find(`[data-testid="error-` + field + `"]`)
		if errEl.Length() != 1 || strings.TrimSpace(errEl.Text()) == "" {
			t.Fatalf("%s: no message on the page", field)
		}
		if prev := errEl.Prev(); prev.AttrOr("name", "") != "handover_"+strings.TrimPrefix(field, "handover.") {
			t.Errorf("%s: the message follows %q, not its field", field, prev.AttrOr("name", ""))
		}
		if got := doc.Find("#handover_keywords").AttrOr("value", ""); got != strings.Join(strings.Split(f.Get("handover_keywords"), ", "), ", ") {
			t.Errorf("%s: the keywords typed came back as %q", field, got)
		}
	}
	if got := page(t, b.get("/app/bot")).Find("#handover_resume").AttrOr("value", ""); got != "90" {
		t.Errorf("a refused save changed the idle minutes to %q", got)
	}
}
