package tenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

// The model's API key is write-only: a save with a key stores it, a save
// without keeps it, clearing removes it, and no read of the configuration
// (nor its JSON) ever carries it; the pipeline reads it alone. Another
// tenant's key is its own.
func TestAIKeyIsStoredApartAndNeverReadBack(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	cfg := tenant.DefaultBotConfig()
	cfg.AI.Enabled, cfg.AI.BaseURL, cfg.AI.Model, cfg.AI.APIKey = true, "https://api.example.com/v1/", "m", "sk-secret-one"
	saved, err := st.SaveBotConfig(ctx, a.ID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantKey string) {
		t.Helper()
		got, err := st.BotConfigOf(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(got)
		if got.AI.APIKey != "" || strings.Contains(string(raw), "sk-secret") {
			t.Errorf("%s: the configuration read back carries the key: %s", when, raw)
		}
		if got.AI.HasAPIKey != (wantKey != "") {
			t.Errorf("%s: has_api_key = %v, want %v", when, got.AI.HasAPIKey, wantKey != "")
		}
		key, err := st.AIAPIKeyOf(ctx, a.ID)
		if err != nil || key != wantKey {
			t.Errorf("%s: AIAPIKeyOf = %q, %v; want %q", when, key, err, wantKey)
		}
	}
	if saved.AI.APIKey != "" || !saved.AI.HasAPIKey || saved.AI.BaseURL != "https://api.example.com/v1" {
		t.Errorf("SaveBotConfig returned %+v: want no key, has_api_key and the URL without its trailing slash", saved.AI)
	}
	check("after saving a key", "sk-secret-one")
	next := saved
	next.AI.Model = "m2"
	if _, err := st.SaveBotConfig(ctx, a.ID, next); err != nil {
		t.Fatal(err)
	}
	check("after a save without a key", "sk-secret-one")
	if key, _ := st.AIAPIKeyOf(ctx, b.ID); key != "" {
		t.Errorf("another tenant reads key %q", key)
	}
	next.AI.APIKey = "sk-secret-two"
	if _, err := st.SaveBotConfig(ctx, a.ID, next); err != nil {
		t.Fatal(err)
	}
	check("after replacing the key", "sk-secret-two")
	// Another path at the same origin keeps the key; another host (or
	// port, or scheme) without a new key drops it.
	next.AI.APIKey, next.AI.BaseURL = "", "https://API.example.com:443/v2"
	if _, err := st.SaveBotConfig(ctx, a.ID, next); err != nil {
		t.Fatal(err)
	}
	check("after a save at another path of the same origin", "sk-secret-two")
	next.AI.BaseURL = "https://attacker.example/v1"
	if got, err := st.SaveBotConfig(ctx, a.ID, next); err != nil || got.AI.HasAPIKey {
		t.Fatalf("a save moving the provider elsewhere: %+v, %v; want the key gone", got.AI, err)
	}
	check("after moving the provider to another host", "")
	next.AI.APIKey = "sk-secret-three"
	if _, err := st.SaveBotConfig(ctx, a.ID, next); err != nil {
		t.Fatal(err)
	}
	next.AI.APIKey, next.AI.ClearAPIKey = "", true
	if _, err := st.SaveBotConfig(ctx, a.ID, next); err != nil {
		t.Fatal(err)
	}
	check("after clearing the key", "")
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://api.openai.com/v1", "https://api.openai.com:443/v2", true},
		{"https://api.openai.com/v1", "http://api.openai.com/v1", false},
		{"http://127.0.0.1:11434/v1", "http://127.0.0.1:11435/v1", false},
		{"http://127.0.0.1:11434/v1", "http://localhost:11434/v1", false},
		{"", "", false},
	} {
		if got := tenant.SameProvider(tc.a, tc.b); got != tc.same {
			t.Errorf("SameProvider(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// The AI settings are checked field by field; an enabled model needs an
// address, a name and a hand-over reply.
func TestAISettingsValidation(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, tn := newTenant(t, st, "a@example.com", "A")
	cfg := tenant.DefaultBotConfig()
	cfg.Handover.Reply = ""
	cfg.AI = tenant.AI{Enabled: true, BaseURL: "ftp://x", APIKey: "two words", Temperature: 3, MaxAnswerChars: 5000,
		HistoryMessages: 51, TimeoutSeconds: 61, MonthlyTokenBudget: -1, AnswersPerChatPerDay: -1, OnFailure: "pray",
		Knowledge: strings.Repeat("x", tenant.MaxKnowledgeBytes+1)}
	_, err := st.SaveBotConfig(ctx, tn.ID, cfg)
	var e *tenant.Error
	if !errors.As(err, &e) {
		t.Fatalf("an invalid AI configuration saved: %v", err)
	}
	for _, f := range []string{"ai.base_url", "ai.model", "ai.api_key", "ai.temperature", "ai.max_answer_chars", "ai.history_messages",
		"ai.timeout_seconds", "ai.monthly_token_budget", "ai.answers_per_chat_per_day", "ai.on_failure", "ai.knowledge", "handover.reply"} {
		if e.Fields[f] == "" {
			t.Errorf("no error on %s; got %v", f, e.Fields)
		}
	}
	if len(e.Fields) != 12 {
		t.Errorf("errors on %d fields, want 12: %v", len(e.Fields), e.Fields)
	}
	// Turned off, an empty model is fine, and omitted numbers take their defaults.
	off := tenant.DefaultBotConfig()
	off.AI = tenant.AI{Temperature: 0}
	got, err := st.SaveBotConfig(ctx, tn.ID, off)
	if err != nil {
		t.Fatal(err)
	}
	if got.AI.TimeoutSeconds != 20 || got.AI.MaxAnswerChars != 1000 || got.AI.OnFailure != tenant.AIHandOver {
		t.Errorf("defaults: %+v", got.AI)
	}
}

// Usage adds up per tenant and month; the chat's count of the model's
// answers counts that chat's alone.
func TestAIUsageByMonthAndAnswersPerChat(t *testing.T) {
	ctx := context.Background()
	st, clock := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	failedAt := clock.Now()
	for _, add := range []tenant.AIUsage{{Failures: 1, LastFailure: "the model did not answer within 20 s"}, {Tokens: 100, Answers: 1}, {Tokens: 50, Handovers: 1}} {
		if err := st.AddAIUsage(ctx, a.ID, clock.Now(), add); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	if err := st.AddAIUsage(ctx, b.ID, clock.Now(), tenant.AIUsage{Tokens: 7}); err != nil {
		t.Fatal(err)
	}
	got, err := st.AIUsageOf(ctx, a.ID, clock.Now())
	want := tenant.AIUsage{Month: "2030-01", Tokens: 150, Answers: 1, Handovers: 1, Failures: 1,
		LastFailure: "the model did not answer within 20 s", LastFailureAt: failedAt}
	if err != nil || got != want {
		t.Errorf("usage = %+v, %v; want %+v", got, err, want)
	}
	if byTenant, err := st.AITokensByTenant(ctx, clock.Now()); err != nil || len(byTenant) != 2 || byTenant[a.ID] != 150 || byTenant[b.ID] != 7 {
		t.Errorf("tokens by tenant = %v, %v; want 150 and 7", byTenant, err)
	}
	if next, _ := st.AITokensByTenant(ctx, clock.Now().AddDate(0, 1, 0)); len(next) != 0 {
		t.Errorf("next month's tokens by tenant = %v, want none", next)
	}
	if next, _ := st.AIUsageOf(ctx, a.ID, clock.Now().AddDate(0, 1, 0)); next.Tokens != 0 || next.Month != "2030-02" {
		t.Errorf("next month's usage = %+v, want none", next)
	}

	chat, other := "111@s.whatsapp.net", "222@s.whatsapp.net"
	in := storeIn(t, st, a.ID, tenant.Inbound{Chat: chat, Sender: chat, WAID: "W1", Body: "hi"})
	pending := func(r tenant.Reply) tenant.Reply { r.Status, r.WAID = tenant.MsgPending, "OUT"+r.Body; return r }
	if _, err := st.LogReplies(ctx, a.ID, nil, []tenant.Reply{{InID: in, Chat: chat, Body: "a1", Origin: tenant.OriginAI}}, pending); err != nil {
		t.Fatal(err)
	}
	in2 := storeIn(t, st, a.ID, tenant.Inbound{Chat: other, Sender: other, WAID: "W2", Body: "hi"})
	if _, err := st.LogReplies(ctx, a.ID, nil, []tenant.Reply{{InID: in2, Chat: other, Body: "r1", Origin: tenant.OriginRule(1)}}, pending); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[string]int{chat: 1, other: 0} {
		if n, err := st.AIAnswersInChatSince(ctx, a.ID, c, clock.Now().Add(-24*60*60e9)); err != nil || n != want {
			t.Errorf("AI answers in %s = %d, %v; want %d", c, n, err, want)
		}
	}
	clock.Advance(25 * 60 * 60e9)
	if n, _ := st.AIAnswersInChatSince(ctx, a.ID, chat, clock.Now().Add(-24*60*60e9)); n != 0 {
		t.Errorf("a day later, %d AI answers counted", n)
	}
}
