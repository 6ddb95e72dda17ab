package bot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"wabot/session/fakemodel"
	"wabot/tenant"
)

// modelRig is a fake OpenAI-compatible provider on loopback, answering by
// script.
func newModel(t *testing.T, script func(fakemodel.Request) fakemodel.Answer) (*fakemodel.Server, string) {
	t.Helper()
	m := fakemodel.New(script)
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv.URL + "/v1"
}

// aiConfig is a configuration whose model is at baseURL.
func aiConfig(baseURL string, rs ...tenant.Rule) tenant.BotConfig {
	cfg := rules(rs...)
	cfg.AI = tenant.DefaultBotConfig().AI
	cfg.AI.Enabled, cfg.AI.BaseURL, cfg.AI.Model, cfg.AI.APIKey = true, baseURL, "test-model", "sk-test-key-123"
	cfg.AI.SystemPrompt = "You are the assistant of Bike Shop."
	cfg.AI.Knowledge = "Repairs cost 20 EUR.\nWe are open 9 to 5."
	cfg.AI.TimeoutSeconds = 2
	cfg.Handover.Reply = "A person will answer you, {{name}}."
	cfg.FallbackReply = "Sorry, I did not get that."
	return cfg
}

func requestsFor(m *fakemodel.Server, text string) []fakemodel.Request {
	var out []fakemodel.Request
	for _, r := range m.Requests() {
		if r.Last().Content == text {
			out = append(out, r)
		}
	}
	return out
}

func usageOf(t *testing.T, r *rig, id string) tenant.AIUsage {
	t.Helper()
	u, err := r.store.AIUsageOf(context.Background(), id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The model answers what no rule does, from the knowledge and this chat's
// recent messages; another chat's messages never reach its prompt, and
// its answer is logged as the AI's and counted.
func TestAIAnswersFromKnowledgeAndTheChatsOwnMessages(t *testing.T) {
	t.Parallel()
	model, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "Model says: " + r.Last().Content, Tokens: 42}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	id, phone := r.tenant(aiConfig(base, tenant.Rule{Match: tenant.MatchExact, Pattern: "hours", Reply: "9 to 5"}))
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")

	send(t, bob, "Bob's secret order")
	expect(t, bob, "Model says: Bob's secret order")
	send(t, ann, "hours")
	expect(t, ann, "9 to 5") // a rule answers first: no call
	if got := requestsFor(model, "hours"); len(got) != 0 {
		t.Fatalf("the model was asked about a message a rule answered: %+v", got)
	}
	send(t, ann, "How much is a repair?")
	expect(t, ann, "Model says: How much is a repair?")

	reqs := requestsFor(model, "How much is a repair?")
	if len(reqs) != 1 {
		t.Fatalf("the model got %d requests for Ann's question, want 1", len(reqs))
	}
	req := reqs[0]
	sys := req.System()
	for _, want := range []string{"You are the assistant of Bike Shop.", "Repairs cost 20 EUR.", "We are open 9 to 5.", `"Ann"`} {
		if !strings.Contains(sys, want) {
			t.Errorf("the system prompt lacks %q:\n%s", want, sys)
		}
	}
	if got := req.Header.Get("Authorization"); got != "Bearer sk-test-key-123" {
		t.Errorf("Authorization = %q, want the tenant's key", got)
	}
	if req.Model != "test-model" || len(req.Tools) != 1 || req.Tools[0] != handOverTool {
		t.Errorf("model %q, tools %v: want test-model and the hand-over tool alone", req.Model, req.Tools)
	}
	var convo []string
	for _, m := range req.Messages[1:] {
		convo = append(convo, m.Role+": "+m.Content)
		if strings.Contains(m.Content, "Bob") {
			t.Errorf("Bob's chat reached the prompt of Ann's: %q", m.Content)
		}
	}
	want := []string{"user: hours", "assistant: 9 to 5", "user: How much is a repair?"}
	if strings.Join(convo, "\n") != strings.Join(want, "\n") {
		t.Errorf("the conversation sent:\n%s\nwant:\n%s", strings.Join(convo, "\n"), strings.Join(want, "\n"))
	}

	// The customer saw "typing…" while the model thought, then its end.
	if got := strings.Join(ann.ChatStates(), ","); got != "composing,paused" {
		t.Errorf("Ann saw the chat states %q, want typing and its end for the model's one turn (the rule's answer has none)", got)
	}
	ms := r.waitLogs(id, "the model's answers logged", func(ms []tenant.Message) bool { return count(ms, "out", tenant.MsgReplied) == 3 })
	if got := origins(ms); strings.Join(got, ",") != "ai,rule 1,ai" {
		t.Errorf("reply origins %v, want ai, rule 1, ai", got)
	}
	if u := usageOf(t, r, id); u.Answers != 2 || u.Tokens != 84 || u.Handovers != 0 || u.Failures != 0 {
		t.Errorf("usage %+v, want 2 answers and 84 tokens", u)
	}
}

// Calling the hand-over tool pauses the bot in the chat, sends the
// hand-over reply and leaves the chat waiting for a person; the model is
// not asked again there.
func TestAIHandOverToolPausesTheChat(t *testing.T) {
	t.Parallel()
	model, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{ToolCall: handOverTool, ToolArgs: `{"reason":"not in the knowledge"}`}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	id, phone := r.tenant(aiConfig(base))
	ann := phone.NewContact("", "Ann")

	send(t, ann, "Can you fix a tandem?")
	expect(t, ann, "A person will answer you, Ann.")
	c, err := r.store.ChatStateOf(context.Background(), id, ann.JID().String())
	if err != nil || !c.BotPaused || !c.Waiting || c.PausedBy != tenant.PausedByModel {
		t.Fatalf("after the model's hand-over: %+v, %v", c, err)
	}
	row := r.inRow(id, send(t, ann, "Hello?"))
	if row.Status != tenant.MsgIgnored || row.Error != tenant.ReasonBotPaused+": the AI handed the chat to a person" {
		t.Fatalf("a message after the hand-over: %s %q", row.Status, row.Error)
	}
	expectNothing(t, ann, 300*time.Millisecond)
	if n := len(model.Requests()); n != 1 {
		t.Errorf("the model got %d requests, want 1", n)
	}
	ms := r.logs(id)
	if got := origins(ms); len(got) != 1 || got[0] != tenant.OriginHandover {
		t.Errorf("reply origins %v, want the hand-over alone", got)
	}
	if u := usageOf(t, r, id); u.Handovers != 1 || u.Answers != 0 {
		t.Errorf("usage %+v, want one hand-over", u)
	}
}

// When the model cannot answer (a timeout, a server error, a tool it does
// not have, an empty answer) or may not (the month's budget, the chat's
// daily limit), the chat goes as the tenant chose: to a person, or on to
// the fallback reply.
func TestAIFailuresHandOverOrFallBackAsConfigured(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{AllowLoopbackModels: true})
	ctx := context.Background()
	cases := []struct {
		name      string
		answer    fakemodel.Answer
		onFailure string
		setup     func(id string, cfg *tenant.BotConfig)
		called    bool   // whether the model is asked at all
		why       string // the failure the Bot page shows
	}{
		{name: "timeout, hand over", answer: fakemodel.Answer{Text: "too late", Delay: 5 * time.Second}, onFailure: tenant.AIHandOver, called: true,
			why: "the model did not answer within 1 s"},
		{name: "timeout, fallback", answer: fakemodel.Answer{Text: "too late", Delay: 5 * time.Second}, onFailure: tenant.AIFallback, called: true,
			why: "the model did not answer within 1 s"},
		{name: "5xx, fallback", answer: fakemodel.Answer{Status: http.StatusBadGateway}, onFailure: tenant.AIFallback, called: true,
			why: "the model's provider answered HTTP 502"},
		{name: "5xx, hand over", answer: fakemodel.Answer{Status: http.StatusServiceUnavailable}, onFailure: tenant.AIHandOver, called: true,
			why: "the model's provider answered HTTP 503"},
		{name: "another tool, fallback", answer: fakemodel.Answer{ToolCall: "send_message", ToolArgs: `{"to":"+15550001111"}`}, onFailure: tenant.AIFallback, called: true,
			why: "the model called a tool it does not have"},
		{name: "empty answer, fallback", answer: fakemodel.Answer{Text: "  "}, onFailure: tenant.AIFallback, called: true,
			why: "the model gave an empty answer"},
		{name: "budget used up, hand over", answer: fakemodel.Answer{Text: "never"}, onFailure: tenant.AIHandOver,
			why: "the model's monthly token budget is used up",
			setup: func(id string, cfg *tenant.BotConfig) {
				cfg.AI.MonthlyTokenBudget = 1000
				if err := r.store.AddAIUsage(ctx, id, time.Now(), tenant.AIUsage{Tokens: 1000}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "budget used up, fallback", answer: fakemodel.Answer{Text: "never"}, onFailure: tenant.AIFallback,
			why: "the model's monthly token budget is used up",
			setup: func(id string, cfg *tenant.BotConfig) {
				cfg.AI.MonthlyTokenBudget = 5
				if err := r.store.AddAIUsage(ctx, id, time.Now(), tenant.AIUsage{Tokens: 6}); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			_, base := newModel(t, func(fakemodel.Request) fakemodel.Answer { calls.Add(1); return tc.answer })
			cfg := aiConfig(base)
			cfg.AI.TimeoutSeconds = 1
			cfg.AI.OnFailure = tc.onFailure
			id, phone := r.tenant(cfg)
			if tc.setup != nil {
				tc.setup(id, &cfg)
				if _, err := r.bot.SaveConfig(ctx, id, cfg); err != nil {
					t.Fatal(err)
				}
			}
			ann := phone.NewContact("", "Ann")
			start := time.Now()
			send(t, ann, "Do you rent bikes?")
			want := "Sorry, I did not get that."
			if tc.onFailure == tenant.AIHandOver {
				want = "A person will answer you, Ann."
			}
			expect(t, ann, want)
			waited := time.Since(start)
			st, err := r.store.ChatStateOf(ctx, id, ann.JID().String())
			if err != nil || st.BotPaused != (tc.onFailure == tenant.AIHandOver) {
				t.Errorf("chat paused = %v (%v), want %v", st.BotPaused, err, tc.onFailure == tenant.AIHandOver)
			}
			if got := calls.Load() > 0; got != tc.called {
				t.Errorf("the model was called: %v, want %v", got, tc.called)
			}
			if tc.answer.Delay > 0 && waited > 4*time.Second {
				t.Errorf("the customer waited %v for a model with a 1 s timeout", waited)
			}
			if u := usageOf(t, r, id); u.Failures != 1 || u.Answers != 0 || u.LastFailure != tc.why {
				t.Errorf("usage %+v, want one failure: %s", u, tc.why)
			}
			expectNothing(t, ann, 200*time.Millisecond)
		})
	}
}

// The chat's daily limit of the model's answers holds per chat: another
// chat still gets the model.
func TestAIAnswersPerChatPerDay(t *testing.T) {
	t.Parallel()
	_, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer { return fakemodel.Answer{Text: "AI: " + r.Last().Content} })
	r := newRig(t, Options{AllowLoopbackModels: true})
	cfg := aiConfig(base)
	cfg.AI.AnswersPerChatPerDay = 1
	cfg.AI.OnFailure = tenant.AIFallback
	_, phone := r.tenant(cfg)
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")
	send(t, ann, "one")
	expect(t, ann, "AI: one")
	send(t, ann, "two")
	expect(t, ann, "Sorry, I did not get that.")
	send(t, bob, "three")
	expect(t, bob, "AI: three")
}

// An answer longer than the tenant's cap is cut at a word, and marked.
func TestAIAnswersAreCapped(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("wheel ", 2000)
	_, base := newModel(t, func(fakemodel.Request) fakemodel.Answer { return fakemodel.Answer{Text: long} })
	r := newRig(t, Options{AllowLoopbackModels: true})
	cfg := aiConfig(base)
	cfg.AI.MaxAnswerChars = 100
	_, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	send(t, ann, "Tell me everything")
	got, err := ann.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got.Text); n > 100 || !strings.HasSuffix(got.Text, "wheel…") {
		t.Fatalf("a capped answer of %d characters: %q", n, got.Text)
	}
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{"  padded  ", "padded"},
		{"one two three four", "one two…"},
		{"nospacesatallhere", "nospacesat…"},
	} {
		if got := capAnswer(tc.in, 11); got != tc.want {
			t.Errorf("capAnswer(%q, 11) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := capAnswer(strings.Repeat("a ", tenant.MaxTextChars), 0); utf8.RuneCountInString(got) > tenant.MaxTextChars {
		t.Errorf("an answer of %d characters is over WhatsApp's limit", utf8.RuneCountInString(got))
	}
}

// A provider URL whose host is not public is refused when saved, unless
// the operator allows a model on this machine; one that slipped past (the
// host's address changed) is refused when connecting, and the chat goes
// as configured, without the model seeing a request.
func TestAIProviderURLPassesTheSSRFGuard(t *testing.T) {
	t.Parallel()
	model, base := newModel(t, func(fakemodel.Request) fakemodel.Answer { return fakemodel.Answer{Text: "hi"} })
	r := newRig(t, Options{})
	ctx := context.Background()
	id, phone := r.tenant(rules())
	for _, u := range []string{base, "http://10.1.2.3/v1", "http://[::1]:8080/v1", "http://169.254.169.254/latest"} {
		_, err := r.bot.SaveConfig(ctx, id, aiConfig(u))
		var e *tenant.Error
		if !errors.As(err, &e) || e.Fields["ai.base_url"] != errModelHost.Error() {
			t.Errorf("saving the provider URL %s: %v, want the field error", u, err)
		}
	}
	// Past the check: stored directly, as if the name resolved elsewhere
	// when saved.
	cfg := aiConfig(base)
	cfg.AI.OnFailure = tenant.AIFallback
	saved, err := r.store.SaveBotConfig(ctx, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.bot.mu.Lock()
	tb := r.bot.tenants[id]
	r.bot.mu.Unlock()
	tb.setConfig(saved) // what the pipeline loads at its next start
	ann := phone.NewContact("", "Ann")
	send(t, ann, "hello")
	expect(t, ann, "Sorry, I did not get that.")
	if n := len(model.Requests()); n != 0 {
		t.Fatalf("the model on loopback got %d requests", n)
	}

	allowed := newRig(t, Options{AllowLoopbackModels: true})
	aid, _ := allowed.tenant(rules())
	if _, err := allowed.bot.SaveConfig(ctx, aid, aiConfig(base)); err != nil {
		t.Errorf("with loopback models allowed, saving %s: %v", base, err)
	}
	if _, err := allowed.bot.SaveConfig(ctx, aid, aiConfig("http://10.1.2.3/v1")); err == nil {
		t.Error("allowing loopback models allowed a private address too")
	}
	// Turned off, the address is not in the way of the rest.
	off := aiConfig("http://10.1.2.3/v1")
	off.AI.Enabled = false
	if _, err := r.bot.SaveConfig(ctx, id, off); err != nil {
		t.Errorf("saving with AI answers off and a private address: %v", err)
	}
	// Private models: the private ranges, never link-local.
	private := New(Options{AllowPrivateModels: true}, r.log, r.store)
	for u, ok := range map[string]bool{"http://10.1.2.3/v1": true, "http://[fd00::1]/v1": true, "http://127.0.0.1:11434/v1": true,
		"http://169.254.169.254/v1": false, "http://[fe80::1]/v1": false, "http://0.0.0.0/v1": false} {
		if err := private.checkModelURL(ctx, u); (err == nil) != ok {
			t.Errorf("with private models allowed, %s: %v", u, err)
		}
	}
}

// A test question from the Bot page reaches the saved model with the
// knowledge, comes back as a customer would get it, sends nothing, and
// counts its tokens.
func TestTryModel(t *testing.T) {
	t.Parallel()
	model, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		if strings.Contains(r.Last().Content, "person") {
			return fakemodel.Answer{ToolCall: handOverTool, Tokens: 3}
		}
		if strings.Contains(r.Last().Content, "fail") {
			return fakemodel.Answer{Status: http.StatusUnauthorized}
		}
		return fakemodel.Answer{Text: "Repairs cost 20 EUR.", Tokens: 30}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	ctx := context.Background()
	id, _ := r.tenant(rules())
	var invalid *tenant.Error
	if _, err := r.bot.TryModel(ctx, id, tenant.AI{}, "hello"); !errors.As(err, &invalid) || invalid.Fields["ai.base_url"] == "" || invalid.Fields["ai.model"] == "" {
		t.Errorf("a test question without a model: %v", err)
	}
	if _, err := r.bot.TryModel(ctx, id, aiConfig(base).AI, " "); !errors.As(err, &invalid) || invalid.Fields["ai.try_question"] == "" {
		t.Errorf("an empty test question: %v", err)
	}
	if _, err := r.bot.SaveConfig(ctx, id, aiConfig(base)); err != nil {
		t.Fatal(err)
	}
	// The settings as typed, without the key: the saved key is used.
	typed := aiConfig(base).AI
	typed.APIKey, typed.Knowledge = "", "Repairs cost 20 EUR, typed."
	got, err := r.bot.TryModel(ctx, id, typed, "How much is a repair?")
	if err != nil || got.Answer != "Repairs cost 20 EUR." || got.HandOver || got.Failure != "" {
		t.Errorf("a test question: %+v, %v", got, err)
	}
	req := requestsFor(model, "How much is a repair?")
	if len(req) != 1 || !strings.Contains(req[0].System(), "Repairs cost 20 EUR, typed.") || req[0].Header.Get("Authorization") != "Bearer sk-test-key-123" {
		t.Errorf("the test question's request: %+v", req)
	}
	if got, _ := r.bot.TryModel(ctx, id, typed, "a person please"); !got.HandOver {
		t.Errorf("a question the model hands over: %+v", got)
	}
	if got, _ := r.bot.TryModel(ctx, id, typed, "fail"); got.Failure != "the model's provider answered HTTP 401" {
		t.Errorf("a refused key: %+v", got)
	}
	private := typed
	private.BaseURL = "http://10.0.0.7/v1"
	if _, err := r.bot.TryModel(ctx, id, private, "hello"); !errors.As(err, &invalid) || invalid.Fields["ai.base_url"] != errModelHost.Error() {
		t.Errorf("a test question to a private address: %v", err)
	}
	if u := usageOf(t, r, id); u.Tokens != 33 || u.Answers != 0 {
		t.Errorf("usage after test questions: %+v, want 33 tokens and no answers", u)
	}
	if n := len(r.logs(id)); n != 0 {
		t.Errorf("test questions logged %d messages", n)
	}
}

// With a webhook too, the model comes first: the webhook hears of the
// message it answered as of one a rule answered, and its reply is not
// used; when the model fails and the tenant chose fallback, the webhook
// answers as before.
func TestAIComesBeforeTheWebhook(t *testing.T) {
	t.Parallel()
	_, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		if strings.Contains(r.Last().Content, "fail") {
			return fakemodel.Answer{Status: http.StatusInternalServerError}
		}
		return fakemodel.Answer{Text: "AI: " + r.Last().Content}
	})
	r := newRig(t, Options{AllowLoopbackModels: true, AllowPrivateWebhooks: true})
	h := newHook(t, "webhook says")
	h.secret = "s3cret"
	cfg := aiConfig(base)
	cfg.AI.OnFailure = tenant.AIFallback
	cfg.Webhook = tenant.Webhook{URL: h.srv.URL + "/in", Secret: h.secret}
	_, phone := r.tenant(cfg)
	ann := phone.NewContact("15550004444", "Ann")
	send(t, ann, "hello")
	expect(t, ann, "AI: hello")
	send(t, ann, "please fail")
	expect(t, ann, "webhook says please fail")
	waitFor(t, "both deliveries", func() bool { return len(h.texts()) == 2 })
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.got {
		if want := p.Message.Text == "hello"; p.RuleMatched != want {
			t.Errorf("the delivery of %q has rule_matched %v, want %v", p.Message.Text, p.RuleMatched, want)
		}
	}
	expectNothing(t, ann, 300*time.Millisecond)
}

// A provider answering without end is cut off at 4 MB: the turn fails
// (here: to the fallback) instead of filling the process's memory.
func TestAIProviderAnswerIsBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"choices":[{"message":{"role":"assistant","content":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for range 200 { // 12.8 MB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.Write([]byte(`"}}]}`))
	}))
	defer srv.Close()
	r := newRig(t, Options{AllowLoopbackModels: true})
	cfg := aiConfig(srv.URL + "/v1")
	cfg.AI.OnFailure = tenant.AIFallback
	cfg.AI.TimeoutSeconds = 10
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	send(t, ann, "Tell me a long story")
	expect(t, ann, "Sorry, I did not get that.")
	if u := usageOf(t, r, id); u.LastFailure != "the model's answer is over 4 MB" {
		t.Errorf("the failure recorded: %q", u.LastFailure)
	}
}

// A provider that reports no usage (some local servers) is counted by
// the prompt's and answer's size, so the month's budget still holds.
func TestAIBudgetHoldsWithoutReportedUsage(t *testing.T) {
	t.Parallel()
	_, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "AI: " + r.Last().Content, NoUsage: true}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	cfg := aiConfig(base)
	cfg.AI.MonthlyTokenBudget = 20
	cfg.AI.OnFailure = tenant.AIFallback
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	send(t, ann, "one")
	expect(t, ann, "AI: one")
	if u := usageOf(t, r, id); u.Tokens < 20 {
		t.Fatalf("a turn without reported usage counted %d tokens; its prompt alone is larger", u.Tokens)
	}
	send(t, ann, "two")
	expect(t, ann, "Sorry, I did not get that.")
}
