package bot

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"wabot/session/fakemodel"
	"wabot/tenant"
)

// BenchmarkModelCall is what wabot adds to a model's own latency per
// answer: the prompt with a 4 KB knowledge text and 10 earlier messages,
// the openai-go call over loopback to a model that answers at once, and
// reading its answer. Run: go test -run '^$' -bench ModelCall -benchmem ./session/bot/
func BenchmarkModelCall(b *testing.B) {
	srv := httptest.NewServer(fakemodel.New(func(fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "Repairs cost 20 EUR and take a day.", Tokens: 1200}
	}))
	defer srv.Close()
	bot := New(Options{AllowLoopbackModels: true}, slog.New(slog.DiscardHandler), nil)
	ai := tenant.DefaultBotConfig().AI
	ai.BaseURL, ai.Model = srv.URL+"/v1", "bench"
	ai.Knowledge = strings.Repeat("Opening hours: 9 to 17, Monday to Saturday. Repairs: 20 EUR.\n", 64)
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(systemPrompt(ai, "Ann"))}
	for i := range 10 {
		if i%2 == 0 {
			msgs = append(msgs, openai.UserMessage("How much is a repair of a city bike with a flat tyre?"))
		} else {
			msgs = append(msgs, openai.AssistantMessage("A repair costs 20 EUR and takes a day."))
		}
	}
	msgs = append(msgs, openai.UserMessage("And how long does it take?"))
	b.ReportAllocs()
	for b.Loop() {
		if turn := bot.callModel(context.Background(), ai, "sk-bench", msgs); turn.answer == "" {
			b.Fatalf("no answer: %+v", turn)
		}
	}
}
