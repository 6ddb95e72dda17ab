package portal_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"wabot/session/fakemodel"
	"wabot/tenant"
)

// aiSecret is the provider key the tests save: it must never come back in
// a page or a JSON answer.
const aiSecret = "sk-test-9f2c41d0e8b7a6c5SECRET"

// aiEnv is a wabot whose AI answers may point at a model on this machine,
// as a local Ollama would be: the tests never call it.
func aiEnv(t *testing.T) *env {
	return newEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_AI_ALLOW_LOOPBACK": "true"})
}

// aiForm is the Bot form with every AI field filled in.
func aiForm() url.Values {
	return url.Values{"op": {"save"}, "enabled": {"1"}, "rule_count": {"0"}, "queue_per_chat": {"20"},
		"ai_enabled": {"1"}, "ai_base_url": {"http://127.0.0.1:11434/v1/"}, "ai_model": {"llama3.2"},
		"ai_api_key": {aiSecret}, "ai_system_prompt": {"You answer for Ana's Bakery.\nBe brief."},
		"ai_knowledge": {"Open 7:00-19:00.\nRolls: 0.50 each."}, "ai_temperature": {"0.7"},
		"ai_max_answer_chars": {"800"}, "ai_history_messages": {"6"}, "ai_timeout_seconds": {"15"},
		"ai_monthly_token_budget": {"250000"}, "ai_answers_per_chat_per_day": {"30"}, "ai_on_failure": {"fallback"},
		// The model hands chats over with it: AI answers need one.
		"handover_reply": {"A person from our team will answer you here."}}
}

// postBotMultipart posts the bot form as the browser does, multipart,
// with a file in the named field when data is not nil.
func (b *browser) postBotMultipart(fields url.Values, fileField, fileName string, data []byte) resp {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range fields {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	if data != nil {
		fw, _ := mw.CreateFormFile(fileField, fileName)
		fw.Write(data)
	}
	mw.Close()
	return b.do(http.MethodPost, "/app/bot", &body, map[string]string{"Content-Type": mw.FormDataContentType()})
}

func saved(t *testing.T, r resp) {
	t.Helper()
	if r.status != http.StatusOK || strings.Contains(r.body, `data-testid="bot-errors"`) || r.url != "http://wabot.test/app/bot" {
		var errs []string
		page(t, r).Find(`.field-error`).Each(func(_ int, s *goquery.Selection) {
			errs = append(errs, s.AttrOr("data-testid", "")+": "+s.Text())
		})
		t.Fatalf("save: %d %s %q", r.status, r.url, errs)
	}
}

// The AI section saves every field from the form and shows it again; the
// APIs read the same values; the key is stored but never shown: not in
// the page, not in either JSON API. An empty key field keeps the key,
// the remove box clears it.
func TestBotPageAISettingsRoundTrip(t *testing.T) {
	e := aiEnv(t)
	b, tid := e.tenantUser("ai@example.com", "AI Shop")
	ctx := context.Background()

	saved(t, b.postForm("/app/bot", aiForm()))
	r := b.get("/app/bot")
	if strings.Contains(r.body, aiSecret) || strings.Contains(r.body, "9f2c41d0") {
		t.Fatal("the Bot page shows the saved key")
	}
	doc := page(t, r)
	if _, ok := doc.Find(`[data-testid="ai-enabled"]`).Attr("checked"); !ok {
		t.Error("AI answers are not shown enabled")
	}
	for id, want := range map[string]string{
		"#ai_base_url": "http://127.0.0.1:11434/v1", "#ai_model": "llama3.2", "#ai_temperature": "0.7",
		"#ai_max_answer_chars": "800", "#ai_history_messages": "6", "#ai_timeout_seconds": "15",
		"#ai_monthly_token_budget": "250000", "#ai_answers_per_chat_per_day": "30", "#ai_api_key": "",
	} {
		if got := doc.Find(id).AttrOr("value", "<none>"); got != want {
			t.Errorf("%s shown as %q, want %q", id, got, want)
		}
	}
	if got := doc.Find("#ai_system_prompt").Text(); got != "You answer for Ana's Bakery.\nBe brief." {
		t.Errorf("system prompt shown as %q", got)
	}
	if got := doc.Find("#ai_knowledge").Text(); got != "Open 7:00-19:00.\nRolls: 0.50 each." {
		t.Errorf("knowledge shown as %q", got)
	}
	if got := doc.Find("#ai_on_failure option[selected]").AttrOr("value", ""); got != "fallback" {
		t.Errorf("on failure shown as %q", got)
	}
	if doc.Find("#ai_api_key").AttrOr("type", "") != "password" || !strings.Contains(doc.Find("#ai_api_key").AttrOr("placeholder", ""), "A key is saved") {
		t.Errorf("the key field: %s", between(r.body, `id="ai_api_key"`, ">"))
	}
	if doc.Find(`[data-testid="ai-clear-key"]`).Length() != 1 {
		t.Error("no box to remove the saved key")
	}
	if doc.Find(`[data-testid="ai-demo-model"]`).Length() != 0 {
		t.Error("a production build offers the demo's fake model")
	}
	if key, err := e.app.Store().AIAPIKeyOf(ctx, tid); err != nil || key != aiSecret {
		t.Fatalf("the store holds the key %q, %v", key, err)
	}

	// Both JSON APIs: the values, has_api_key, never the key.
	apiKey := b.createKey("/app/settings/keys", "script", "bot:manage")
	readAI := func(what string, r resp) map[string]any {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
		if strings.Contains(r.body, aiSecret) || strings.Contains(r.body, `"api_key"`) || strings.Contains(r.body, "clear_api_key") {
			t.Fatalf("%s returns the key: %s", what, r.body)
		}
		ai, _ := r.json(t)["ai"].(map[string]any)
		return ai
	}
	for what, r := range map[string]resp{
		"/api/portal/tenant/current/bot": b.get("/api/portal/tenant/current/bot"),
		"/api/v1/bot":                    e.api(apiKey).call(http.MethodGet, "/api/v1/bot", nil),
	} {
		ai := readAI(what, r)
		want := map[string]any{"enabled": true, "base_url": "http://127.0.0.1:11434/v1", "model": "llama3.2", "has_api_key": true,
			"system_prompt": "You answer for Ana's Bakery.\nBe brief.", "knowledge": "Open 7:00-19:00.\nRolls: 0.50 each.",
			"temperature": 0.7, "max_answer_chars": float64(800), "history_messages": float64(6), "timeout_seconds": float64(15),
			"monthly_token_budget": float64(250000), "answers_per_chat_per_day": float64(30), "on_failure": "fallback"}
		for k, v := range want {
			if ai[k] != v {
				t.Errorf("%s: ai.%s = %v, want %v", what, k, ai[k], v)
			}
		}
	}
	// A save through the API answers without the key it was given.
	cfg := e.api(apiKey).call(http.MethodGet, "/api/v1/bot", nil).json(t)
	cfg["ai"].(map[string]any)["api_key"] = "sk-other-0000SECRET"
	delete(cfg["ai"].(map[string]any), "has_api_key")
	if r := e.api(apiKey).call(http.MethodPut, "/api/v1/bot", cfg); strings.Contains(r.body, "sk-other") || readAI("PUT /api/v1/bot", r)["has_api_key"] != true {
		t.Fatalf("PUT /api/v1/bot: %d %s", r.status, r.body)
	}
	if key, _ := e.app.Store().AIAPIKeyOf(ctx, tid); key != "sk-other-0000SECRET" {
		t.Fatalf("the API's key was not stored: %q", key)
	}

	// The form without a key keeps the stored one.
	form := aiForm()
	form.Set("ai_api_key", "")
	form.Set("ai_model", "llama3.3")
	saved(t, b.postForm("/app/bot", form))
	if key, _ := e.app.Store().AIAPIKeyOf(ctx, tid); key != "sk-other-0000SECRET" {
		t.Fatalf("an empty key field changed the key to %q", key)
	}
	if cfg, _ := e.app.Store().BotConfigOf(ctx, tid); cfg.AI.Model != "llama3.3" || !cfg.AI.HasAPIKey {
		t.Fatalf("after a save without a key: %+v", cfg.AI)
	}

	// The remove box clears it.
	form.Set("ai_clear_api_key", "1")
	saved(t, b.postForm("/app/bot", form))
	if key, _ := e.app.Store().AIAPIKeyOf(ctx, tid); key != "" {
		t.Fatalf("the key was not removed: %q", key)
	}
	if ai := readAI("after removing", b.get("/api/portal/tenant/current/bot")); ai["has_api_key"] != false {
		t.Fatalf("has_api_key after removing: %v", ai["has_api_key"])
	}
	doc = page(t, b.get("/app/bot"))
	if doc.Find(`[data-testid="ai-clear-key"]`).Length() != 0 || doc.Find("#ai_api_key").AttrOr("placeholder", "") != "" {
		t.Error("the page still says a key is saved")
	}
}

// A form that comes back unsaved (a refused field, a rule added) shows
// the key field empty, says the key typed was not kept, and keeps every
// other field as typed.
func TestBotPageAIRefusedSaveKeepsTheForm(t *testing.T) {
	e := aiEnv(t)
	b, tid := e.tenantUser("airefused@example.com", "AI Refused")
	form := aiForm()
	form.Set("ai_temperature", "3")
	form.Set("ai_model", "")
	form.Set("ai_monthly_token_budget", "-5")
	r := b.postForm("/app/bot", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("a temperature of 3 and no model: %d", r.status)
	}
	if strings.Contains(r.body, aiSecret) {
		t.Fatal("the refused form shows the key typed")
	}
	doc := page(t, r)
	for field, input := range map[string]string{"ai.temperature": "ai_temperature", "ai.model": "ai_model", "ai.monthly_token_budget": "ai_monthly_token_budget"} {
		errEl := doc.Find(`[data-testid="error-` + field + `"]`)
		if errEl.Length() != 1 || strings.TrimSpace(errEl.Text()) == "" {
			t.Fatalf("%s: no message on the page", field)
		}
		if prev := errEl.Prev(); prev.AttrOr("name", "") != input {
			t.Errorf("%s: the message follows %q, not its field", field, prev.AttrOr("name", ""))
		}
	}
	if got := testText(doc, "ai-usage-tokens"); got != "0 of 500,000 tokens" {
		t.Errorf("the use beside a refused budget: %q, want it against the budget saved", got)
	}
	if doc.Find(`[data-testid="ai-key-not-saved"]`).Length() != 1 {
		t.Error("the page does not say the key typed was not saved")
	}
	if got := doc.Find("#ai_temperature").AttrOr("value", ""); got != "3" {
		t.Errorf("the temperature typed came back as %q", got)
	}
	if got := doc.Find("#ai_knowledge").Text(); got != "Open 7:00-19:00.\nRolls: 0.50 each." {
		t.Errorf("the knowledge typed came back as %q", got)
	}
	if key, _ := e.app.Store().AIAPIKeyOf(context.Background(), tid); key != "" {
		t.Fatalf("a refused save stored the key %q", key)
	}

	// Adding a rule re-renders the form: the AI fields survive it.
	form = aiForm()
	form.Set("op", "add")
	doc = page(t, b.postForm("/app/bot", form))
	if doc.Find(`[data-testid="rule-row"]`).Length() != 1 || doc.Find("#ai_model").AttrOr("value", "") != "llama3.2" ||
		doc.Find("#ai_on_failure option[selected]").AttrOr("value", "") != "fallback" {
		t.Fatal("adding a rule lost the AI fields")
	}
}

// A knowledge file replaces the knowledge text; one over 64 KB, or not
// UTF-8 text, is refused beside the knowledge, nothing is saved and the
// rest of the form comes back as typed.
func TestBotPageKnowledgeUpload(t *testing.T) {
	e := aiEnv(t)
	b, tid := e.tenantUser("knowledge@example.com", "Knowledge Shop")
	ctx := context.Background()
	form := aiForm()
	form.Set("ai_api_key", "")
	faq := "# FAQ\n\nDo you deliver? Yes, within 5 km.\nPão de queijo: R$ 2,00.\n"
	saved(t, b.postBotMultipart(form, "ai_knowledge_file", "faq.md", []byte("\uFEFF"+faq)))
	if cfg, _ := e.app.Store().BotConfigOf(ctx, tid); cfg.AI.Knowledge != faq {
		t.Fatalf("knowledge after the upload: %q", cfg.AI.Knowledge)
	}

	for name, file := range map[string]struct {
		name string
		data []byte
		says string
	}{
		"too large":  {"big.txt", bytes.Repeat([]byte("price list line\n"), tenant.MaxKnowledgeBytes/16+100), "66 KB"},
		"not UTF-8":  {"latin1.txt", []byte("P\xe3o de queijo: R$ 2,00\n"), "UTF-8"},
		"not a text": {"menu.pdf", []byte("%PDF-1.7\n"), ".txt"},
	} {
		form := aiForm()
		form.Set("ai_model", "mistral-small")
		form.Set("ai_knowledge", "typed, not saved")
		r := b.postBotMultipart(form, "ai_knowledge_file", file.name, file.data)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d", name, r.status)
		}
		doc := page(t, r)
		errEl := doc.Find(`[data-testid="error-ai.knowledge"]`)
		if !strings.Contains(errEl.Text(), file.says) {
			t.Errorf("%s: the knowledge's error says %q", name, errEl.Text())
		}
		if doc.Find("#ai_model").AttrOr("value", "") != "mistral-small" || doc.Find("#ai_knowledge").Text() != "typed, not saved" ||
			doc.Find("#ai_system_prompt").Text() != "You answer for Ana's Bakery.\nBe brief." || doc.Find("#ai_history_messages").AttrOr("value", "") != "6" {
			t.Errorf("%s: the form did not come back as typed", name)
		}
		if strings.Contains(r.body, aiSecret) {
			t.Errorf("%s: the refused form shows the key typed", name)
		}
		if cfg, _ := e.app.Store().BotConfigOf(ctx, tid); cfg.AI.Knowledge != faq || cfg.AI.Model != "llama3.2" {
			t.Fatalf("%s: a refused upload changed the configuration: %+v", name, cfg.AI)
		}
	}
}

// The dashboard shows this month's use of the model once there is some
// (or AI answers are on), against the budget; the Bot page shows it too;
// /api/v1/bot/usage gives it to a key holding bot:manage, and to no other.
func TestAIUsageOnDashboardAndAPI(t *testing.T) {
	e := aiEnv(t)
	b, tid := e.tenantUser("usage@example.com", "Usage Shop")
	ctx := context.Background()
	if page(t, b.get("/app")).Find(`[data-testid="dashboard-ai"]`).Length() != 0 {
		t.Fatal("the dashboard shows AI use while AI answers are off and unused")
	}
	if err := e.app.Store().AddAIUsage(ctx, tid, time.Now(), tenant.AIUsage{Tokens: 12345, Answers: 7, Handovers: 2, Failures: 1}); err != nil {
		t.Fatal(err)
	}
	doc := page(t, b.get("/app"))
	ai := doc.Find(`[data-testid="dashboard-ai"]`)
	if ai.Length() != 1 {
		t.Fatal("the dashboard does not show this month's AI use")
	}
	for id, want := range map[string]string{"ai-usage-tokens": "12,345 of 500,000 tokens", "ai-usage-answers": "7", "ai-usage-handovers": "2", "ai-usage-failures": "1"} {
		if got := strings.TrimSpace(ai.Find(`[data-testid="` + id + `"]`).Text()); got != want {
			t.Errorf("dashboard %s: %q, want %q", id, got, want)
		}
	}
	month := time.Now().UTC().Format("2006-01")
	if !strings.Contains(ai.Text(), month) {
		t.Errorf("the dashboard does not name the month %s: %s", month, ai.Text())
	}
	if got := strings.TrimSpace(page(t, b.get("/app/bot")).Find(`[data-testid="bot-ai"] [data-testid="ai-usage-tokens"]`).Text()); got != "12,345 of 500,000 tokens" {
		t.Errorf("the Bot page's use: %q", got)
	}
	es := page(t, b.do(http.MethodGet, "/app", nil, map[string]string{"Accept-Language": "es"}))
	if got := strings.TrimSpace(es.Find(`[data-testid="ai-usage-tokens"]`).Text()); got != "12.345 de 500.000 tokens" {
		t.Errorf("the use in Spanish: %q", got)
	}

	// The admin console shows each workspace's tokens this month.
	admin := e.browser()
	admin.loginLink("root@example.com", true)
	ap := page(t, admin.get("/admin"))
	if got := strings.TrimSpace(ap.Find(`tr[data-tenant="` + tid + `"] [data-testid="admin-ai-tokens"]`).Text()); got != "12,345" {
		t.Errorf("the admin console's AI tokens for the workspace: %q", got)
	}

	// Without a budget the tokens are counted alone.
	form := aiForm()
	form.Set("ai_monthly_token_budget", "0")
	saved(t, b.postForm("/app/bot", form))
	if got := testText(page(t, b.get("/app")), "ai-usage-tokens"); got != "12,345 tokens (no budget)" {
		t.Errorf("without a budget: %q", got)
	}

	manager := e.api(b.createKey("/app/settings/keys", "watcher", "bot:manage"))
	r := manager.call(http.MethodGet, "/api/v1/bot/usage", nil)
	if r.status != http.StatusOK {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	got := r.json(t)
	want := map[string]any{"month": month, "tokens": float64(12345), "answers": float64(7), "handovers": float64(2), "failures": float64(1),
		"monthly_token_budget": float64(0), "last_failure": "", "last_failure_at": nil}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("usage %s = %v, want %v", k, got[k], v)
		}
	}

	// The month's latest failure, in the pipeline's words, and when.
	if testText(page(t, b.get("/app/bot")), "ai-usage-last-failure") != "" {
		t.Error("the Bot page shows a latest failure before there is one")
	}
	failedAt := time.Now()
	if err := e.app.Store().AddAIUsage(ctx, tid, failedAt, tenant.AIUsage{Failures: 1, LastFailure: "the model's provider answered HTTP 401"}); err != nil {
		t.Fatal(err)
	}
	last := page(t, b.get("/app/bot")).Find(`[data-testid="ai-usage-last-failure"]`)
	if !strings.Contains(last.Text(), "the model's provider answered HTTP 401") || last.Find("time").AttrOr("datetime", "") != failedAt.UTC().Format(time.RFC3339) {
		t.Errorf("the Bot page's latest failure: %q %s", last.Text(), last.Find("time").AttrOr("datetime", ""))
	}
	got = manager.call(http.MethodGet, "/api/v1/bot/usage", nil).json(t)
	at, _ := time.Parse(time.RFC3339Nano, jsonString(got["last_failure_at"]))
	if got["failures"] != float64(2) || got["last_failure"] != "the model's provider answered HTTP 401" || at.Sub(failedAt).Abs() > time.Millisecond {
		t.Errorf("usage after a failure: %v", got)
	}
	reader := e.api(b.createKey("/app/settings/keys", "reader", "messages:read"))
	wantErr(t, "usage without bot:manage", reader.call(http.MethodGet, "/api/v1/bot/usage", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "usage without a key", e.api("").call(http.MethodGet, "/api/v1/bot/usage", nil), http.StatusUnauthorized, "unauthorized")
}

// A reply the model wrote is labelled as an AI answer in the log and in
// the chat's thread, and a chat the model handed over says who did.
func TestLogShowsAnAIAnswer(t *testing.T) {
	e := aiEnv(t)
	b, tid := e.tenantUser("aiorigin@example.com", "AI Origin")
	ctx := context.Background()
	in := customerWrites(t, e, tid, inboxChat, "Carla", "Do you deliver?")
	if _, err := e.app.Store().LogReplies(ctx, tid, nil, []tenant.Reply{{InID: in, Chat: inboxChat, Body: "Yes, within 5 km.", Origin: tenant.OriginAI}},
		func(r tenant.Reply) tenant.Reply { r.Status, r.WAID = tenant.MsgPending, "3EB0AIORIGIN"; return r }); err != nil {
		t.Fatal(err)
	}
	if got := testText(page(t, b.get("/app/logs")), "message-origin"); got != "bot · AI answer" {
		t.Errorf("the log says %q", got)
	}
	if got := testText(page(t, b.do(http.MethodGet, "/app/logs", nil, map[string]string{"Accept-Language": "pt-BR"})), "message-origin"); got != "robô · resposta da IA" {
		t.Errorf("the log in Portuguese says %q", got)
	}
	thread := b.get("/app/chats/" + url.PathEscape(inboxChat)).body
	if !strings.Contains(thread, "bot · AI answer") {
		t.Errorf("the thread does not label the AI answer: %s", between(thread, "Yes, within 5 km.", "</li>"))
	}
	if strings.Contains(thread, `data-testid="paused-by-model"`) {
		t.Error("a chat the bot answers says the model handed it over")
	}

	// A chat the model handed over says so; one a keyword paused does not.
	for by, want := range map[string]bool{tenant.PausedByModel: true, tenant.PausedByKeyword: false} {
		if err := e.app.Store().PauseBot(ctx, tid, inboxChat, by, true); err != nil {
			t.Fatal(err)
		}
		doc := page(t, b.get("/app/chats/"+url.PathEscape(inboxChat)))
		if got := doc.Find(`[data-testid="paused-by-model"]`).Length() == 1; got != want {
			t.Errorf("paused by %s: the thread says the model handed it over: %v", by, got)
		}
	}
}

// jsonString is a JSON value as a string, "" for anything else.
func jsonString(v any) string { s, _ := v.(string); return s }

// "Ask the model" puts the test question to the model as the form has it,
// unsaved, with the saved key, and shows the answer, the hand-over or the
// failure; the form comes back as typed and nothing is saved.
func TestBotPageTryModel(t *testing.T) {
	model := fakemodel.New(func(r fakemodel.Request) fakemodel.Answer {
		switch q := r.Last().Content; {
		case strings.Contains(q, "person"):
			return fakemodel.Answer{ToolCall: r.Tools[0]}
		case strings.Contains(q, "broken"):
			return fakemodel.Answer{Status: http.StatusUnauthorized}
		}
		return fakemodel.Answer{Text: "Rolls are 0.60 each.", Tokens: 21}
	})
	srv := httptest.NewServer(model)
	defer srv.Close()
	e := aiEnv(t)
	b, tid := e.tenantUser("try@example.com", "Try Shop")
	ctx := context.Background()
	form := aiForm()
	form.Set("ai_base_url", srv.URL+"/v1")
	saved(t, b.postForm("/app/bot", form))

	form.Set("op", "try")
	form.Set("ai_api_key", "")
	form.Set("ai_knowledge", "Rolls: 0.60 each (typed, not saved).")
	form.Set("ai_try_question", "How much is a roll?")
	r := b.postForm("/app/bot", form)
	doc := page(t, r)
	if r.status != http.StatusOK || doc.Find(`[data-testid="ai-trial-answer"]`).Text() != "Rolls are 0.60 each." {
		t.Fatalf("a test question: %d, trial %q", r.status, doc.Find(`[data-testid="ai-trial"]`).Text())
	}
	if !strings.Contains(doc.Find(`[data-testid="ai-trial"]`).Text(), "21 tokens") {
		t.Errorf("the trial does not show its tokens: %q", doc.Find(`[data-testid="ai-trial"]`).Text())
	}
	if got := doc.Find("#ai_knowledge").Text(); got != "Rolls: 0.60 each (typed, not saved)." || doc.Find("#ai_try_question").AttrOr("value", "") != "How much is a roll?" {
		t.Errorf("the form came back as %q / %q", got, doc.Find("#ai_try_question").AttrOr("value", ""))
	}
	if strings.Contains(r.body, aiSecret) {
		t.Error("the trial's page shows the saved key")
	}
	reqs := model.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+aiSecret || !strings.Contains(reqs[0].System(), "(typed, not saved)") {
		t.Fatalf("the model got %d requests: %+v", len(reqs), reqs)
	}
	cfg, _ := e.app.Store().BotConfigOf(ctx, tid)
	if cfg.AI.Knowledge != "Open 7:00-19:00.\nRolls: 0.50 each." {
		t.Errorf("a trial saved the knowledge: %q", cfg.AI.Knowledge)
	}
	if u, _ := e.app.Store().AIUsageOf(ctx, tid, time.Now()); u.Tokens != 21 || u.Answers != 0 {
		t.Errorf("usage after a trial: %+v, want its 21 tokens and no answer", u)
	}

	form.Set("ai_try_question", "Can I talk to a person?")
	if doc := page(t, b.postForm("/app/bot", form)); doc.Find(`[data-testid="ai-trial-handover"]`).Length() != 1 {
		t.Errorf("a hand-over trial shows %q", doc.Find(`[data-testid="ai-trial"]`).Text())
	}
	form.Set("ai_try_question", "broken key?")
	if doc := page(t, b.postForm("/app/bot", form)); doc.Find(`[data-testid="ai-trial-failure"]`).Text() != "the model's provider answered HTTP 401" {
		t.Errorf("a failed trial shows %q", doc.Find(`[data-testid="ai-trial"]`).Text())
	}
	form.Set("ai_try_question", "")
	r = b.postForm("/app/bot", form)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(page(t, r).Find(`.field-error`).Text(), "Write a question to put to the model.") {
		t.Errorf("an empty test question: %d %q", r.status, page(t, r).Find(`.field-error`).Text())
	}
}
