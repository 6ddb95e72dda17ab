package portal

import (
	"errors"
	"math"
	"strings"
	"testing"

	"wabot/tenant"
	"wabot/views"
)

// Every sentence the AI settings' validation can give is one the portal
// translates, its numbers and examples carried over: a new or reworded
// sentence in tenant/ai.go fails here until fieldSentences has it.
func TestAIFieldSentencesAreTranslated(t *testing.T) {
	bad := []tenant.AI{
		{Enabled: true}, // no base URL, no model
		{BaseURL: "https://" + strings.Repeat("a", tenant.MaxURLLength) + ".example"},
		{BaseURL: "ftp://user:pw@example.com/v1?x=1", Model: strings.Repeat("m", tenant.MaxModelNameLength+1),
			APIKey: "sk two words", SystemPrompt: strings.Repeat("p", tenant.MaxSystemPromptChars+1),
			Knowledge: strings.Repeat("k", tenant.MaxKnowledgeBytes+1), Temperature: math.NaN(), MaxAnswerChars: -1,
			HistoryMessages: -1, TimeoutSeconds: -1, MonthlyTokenBudget: -1, AnswersPerChatPerDay: -1, OnFailure: "shrug"},
		{Knowledge: "P\xe3o"},
	}
	sentences := map[string]string{} // sentence → field
	for _, a := range bad {
		cfg := tenant.DefaultBotConfig()
		cfg.AI = a
		cfg.Normalize()
		var de *tenant.Error
		if err := cfg.Validate(); !errors.As(err, &de) {
			t.Fatalf("%+v is not refused: %v", a, err)
		}
		for field, s := range de.Fields {
			if strings.HasPrefix(field, "ai.") {
				sentences[s] = field
			}
		}
	}
	// The pipeline's own refusal of a provider on a private address.
	sentences["The model's host is not a public internet address; the operator can allow a model on this machine with WABOT_AI_ALLOW_LOOPBACK."] = "ai.base_url"
	fields := map[string]bool{}
	for _, f := range sentences {
		fields[f] = true
	}
	for _, want := range []string{"ai.base_url", "ai.model", "ai.api_key", "ai.system_prompt", "ai.knowledge", "ai.temperature",
		"ai.max_answer_chars", "ai.history_messages", "ai.timeout_seconds", "ai.monthly_token_budget", "ai.answers_per_chat_per_day", "ai.on_failure"} {
		if !fields[want] {
			t.Errorf("no sentence for %s was produced: is the test still right?", want)
		}
	}
	for s, field := range sentences {
		for _, code := range []string{"es", "pt-BR", "hi", "id"} {
			got := fieldText(views.NewLocale(code), s)
			if got == s {
				t.Errorf("%s (%s) is not translated into %s: %q", field, s, code, s)
				continue
			}
			// Numbers and examples carry over as the store wrote them.
			for _, w := range strings.Fields(s) {
				w = strings.TrimRight(w, ".;,")
				if strings.ContainsAny(w, "0123456789") && strings.Trim(w, "0123456789") == "" || strings.Contains(w, "://") && !strings.HasSuffix(w, "://") || strings.HasPrefix(w, "WABOT_") {
					if !strings.Contains(got, w) {
						t.Errorf("%s in %s lost %q: %q", field, code, w, got)
					}
				}
			}
		}
	}
}
