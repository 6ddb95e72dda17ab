package bot

// AI answers at their edges: what a provider the tenant chose may send
// back, who may learn the saved key, bursts, slow models and floods.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/prometheus/client_golang/prometheus"

	"wabot/session/fakemodel"
	"wabot/tenant"
)

// A tenant controls its provider URL, so it controls the body wabot reads
// back, which openai-go reads whole: the client stops reading at 4 MB,
// however much a provider streams within the timeout.
func TestAIModelResponseBodyIsBounded(t *testing.T) {
	t.Parallel()
	const huge = 64 << 20 // 64 MB of answer; a real attack would send GBs
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		head := `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"`
		n, _ := fmt.Fprint(w, head)
		written.Add(int64(n))
		chunk := []byte(strings.Repeat("a", 1<<20))
		for i := 0; i < huge>>20; i++ {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return // the client stopped reading
			}
		}
		n, _ = fmt.Fprint(w, `"}}],"usage":{"total_tokens":1}}`)
		written.Add(int64(n))
	}))
	defer srv.Close()
	b := New(Options{AllowLoopbackModels: true}, slog.New(slog.DiscardHandler), nil)
	ai := tenant.DefaultBotConfig().AI
	ai.BaseURL, ai.Model, ai.TimeoutSeconds = srv.URL+"/v1", "m", 30
	turn := b.callModel(context.Background(), ai, "sk", []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")})
	// Allow generous slack for socket buffers: a 4 MB cap plus buffers
	// must not read 64 MB.
	if got := written.Load(); got > 24<<20 {
		t.Errorf("wabot read %d MB of a provider's answer (turn: answer %d chars, failure %q); want it to stop at a cap of a few MB",
			got>>20, len(turn.answer), turn.failure)
	}
}

// promObserver counts AI turns in a real Prometheus counter, as
// app/metrics.go does.
type promObserver struct {
	noObserver
	tokens prometheus.Counter
}

func (o promObserver) AI(_ string, tokens int64) { o.tokens.Add(float64(tokens)) }

// A provider's usage block is the provider's word: a negative
// total_tokens (a buggy proxy, or a hostile endpoint the tenant chose)
// counts as none. Passed on, prometheus.Counter.Add would panic, and the
// message would never be answered.
func TestAINegativeTokensFromProviderDoNotLoseTheMessage(t *testing.T) {
	t.Parallel()
	_, base := newModel(t, func(fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "We open at 9.", Tokens: -5}
	})
	obs := promObserver{tokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "t"})}
	r := newRig(t, Options{AllowLoopbackModels: true, Observer: obs})
	id, phone := r.tenant(aiConfig(base))
	ann := phone.NewContact("", "Ann")
	send(t, ann, "When do you open?")
	got, err := ann.Next(10 * time.Second)
	if err != nil || got.Text != "We open at 9." {
		t.Fatalf("the customer got %q (%v), want the model's answer; log: %s", got.Text, err, describe(r.logs(id)))
	}
	if u := usageOf(t, r, id); u.Tokens < 0 {
		t.Errorf("usage %+v: a provider lowered the month's tokens", u)
	}
}

// The key is write-only, and bound to the provider it was saved for:
// whoever can save the bot configuration (a co-owner, or any API key with
// the bot:manage scope) and points the base URL at a host of their own,
// leaving the key empty, gets no key there, neither from "Ask the model"
// nor from the next customer's message.
func TestAISavedKeyIsNotSentToANewProviderHost(t *testing.T) {
	t.Parallel()
	_, base := newModel(t, func(fakemodel.Request) fakemodel.Answer { return fakemodel.Answer{Text: "hi"} })
	thief, thiefBase := newModel(t, func(fakemodel.Request) fakemodel.Answer { return fakemodel.Answer{Text: "hi"} })
	thiefBase = strings.Replace(thiefBase, "127.0.0.1", "localhost", 1) // another host, same loopback
	r := newRig(t, Options{AllowLoopbackModels: true})
	ctx := context.Background()
	id, phone := r.tenant(aiConfig(base)) // saves key sk-test-key-123 for base

	// 1. The Bot page's "Ask the model", the URL typed, the key left empty.
	typed := aiConfig(thiefBase).AI
	typed.APIKey = ""
	if _, err := r.bot.TryModel(ctx, id, typed, "hello"); err != nil {
		t.Fatal(err)
	}
	for _, req := range thief.Requests() {
		if got := req.Header.Get("Authorization"); strings.Contains(got, "sk-test-key-123") {
			t.Errorf("TryModel sent the saved key to a newly typed host: %q", got)
		}
	}

	// 2. A save that only changes the URL keeps the key for the new host.
	cfg := aiConfig(thiefBase)
	cfg.AI.APIKey = ""
	if _, err := r.bot.SaveConfig(ctx, id, cfg); err != nil {
		t.Fatal(err)
	}
	ann := phone.NewContact("", "Ann")
	send(t, ann, "hello")
	if _, err := ann.Next(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	n := len(thief.Requests())
	for _, req := range thief.Requests() {
		if got := req.Header.Get("Authorization"); strings.Contains(got, "sk-test-key-123") {
			t.Errorf("after a save that changed only the base URL, the saved key went to the new host: %q (of %d requests)", got, n)
			break
		}
	}
}

// A customer who writes three messages in a row (the usual WhatsApp way)
// has them stored before the model answers the first: the answers get
// higher ids than the later questions. The model answering the third
// still sees each earlier question with its answer, not three questions
// and no answers (which it might answer again).
func TestAIHistoryHasTheModelsEarlierAnswersInABurst(t *testing.T) {
	t.Parallel()
	model, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "Answer to " + r.Last().Content, Delay: 300 * time.Millisecond}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	_, phone := r.tenant(aiConfig(base))
	ann := phone.NewContact("", "Ann")
	send(t, ann, "first")
	send(t, ann, "second")
	send(t, ann, "third")
	for _, want := range []string{"Answer to first", "Answer to second", "Answer to third"} {
		expect(t, ann, want)
	}
	reqs := requestsFor(model, "third")
	if len(reqs) != 1 {
		t.Fatalf("%d requests for the third message", len(reqs))
	}
	var convo []string
	for _, m := range reqs[0].Messages[1:] {
		convo = append(convo, m.Role+": "+m.Content)
	}
	want := "user: first\nassistant: Answer to first\nuser: second\nassistant: Answer to second\nuser: third"
	if got := strings.Join(convo, "\n"); got != want {
		t.Errorf("the model answering the third message saw:\n%s\nwant:\n%s", got, want)
	}
}

// A chat waiting on a slow model (up to 60 s) gives its slot of the
// tenant's ParallelChats up: with every slot's chat at the model, a
// message a rule answers in another chat is answered at once.
func TestAISlowModelDoesNotHoldUpRuleAnswersInOtherChats(t *testing.T) {
	t.Parallel()
	_, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "slow answer", Delay: 4 * time.Second}
	})
	r := newRig(t, Options{AllowLoopbackModels: true, ParallelChats: 2})
	cfg := aiConfig(base, tenant.Rule{Match: tenant.MatchExact, Pattern: "hours", Reply: "9 to 5"})
	cfg.AI.TimeoutSeconds = 10
	_, phone := r.tenant(cfg)
	a, b, c := phone.NewContact("", "A"), phone.NewContact("", "B"), phone.NewContact("", "C")
	send(t, a, "question a")
	send(t, b, "question b")
	time.Sleep(300 * time.Millisecond) // both at the model
	start := time.Now()
	send(t, c, "hours")
	expect(t, c, "9 to 5")
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("a rule's answer waited %v for other chats' model calls", waited)
	}
}

// A shutdown while the model thinks ends the call at once; after the
// start the message is put to the model again and answered once.
func TestAIRestartDuringTheModelCallAnswersOnce(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	model, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		if calls.Add(1) == 1 {
			return fakemodel.Answer{Text: "too late", Delay: 8 * time.Second}
		}
		return fakemodel.Answer{Text: "after the restart"}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	cfg := aiConfig(base)
	cfg.AI.TimeoutSeconds = 20
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	send(t, ann, "hello")
	waitFor(t, "the model's first call", func() bool { return len(model.Requests()) == 1 })
	start := time.Now()
	r.stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the shutdown waited %v for the model", d)
	}
	r.start()
	r.wait(id, "CONNECTED", func(s tenant.Link) bool { return s.State == tenant.StateConnected })
	expect(t, ann, "after the restart")
	expectNothing(t, ann, time.Second)
	ms := r.logs(id)
	if count(ms, "out", "") != 1 {
		t.Errorf("log: %s", describe(ms))
	}
	if u := usageOf(t, r, id); u.Answers != 1 {
		t.Errorf("usage %+v", u)
	}
}

// Odd provider answers fail over without a panic; a redirect is not
// followed.
func TestAIOddProviderAnswers(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	cases := []struct {
		name, ctype, body string
		status            int
		wantAnswer        string
	}{
		{"empty object", "application/json", `{}`, 200, ""},
		{"null choices", "application/json", `{"choices":null}`, 200, ""},
		{"null message", "application/json", `{"choices":[{"message":null}]}`, 200, ""},
		{"null content", "application/json", `{"choices":[{"message":{"role":"assistant","content":null}}]}`, 200, ""},
		{"truncated", "application/json", `{"choices":[{"message":{"content":"hi`, 200, ""},
		{"html", "text/html", `<html>hi</html>`, 200, ""},
		{"empty body", "application/json", ``, 200, ""},
		{"string tokens", "application/json", `{"choices":[{"message":{"content":"ok"}}],"usage":{"total_tokens":"lots"}}`, 200, "ok"},
		{"tool call without name", "application/json", `{"choices":[{"message":{"content":"x","tool_calls":[{"id":"1","type":"function","function":{}}]}}]}`, 200, ""},
		{"redirect", "application/json", `{}`, 302, ""},
		{"error without error", "application/json", `[1,2]`, 500, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				if tc.status == 302 {
					w.Header().Set("Location", target.URL+"/v1/chat/completions")
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			b := New(Options{AllowLoopbackModels: true}, slog.New(slog.DiscardHandler), nil)
			ai := tenant.DefaultBotConfig().AI
			ai.BaseURL, ai.Model, ai.TimeoutSeconds = srv.URL+"/v1", "m", 5
			turn := b.callModel(context.Background(), ai, "sk", []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")})
			if turn.answer != tc.wantAnswer || (tc.wantAnswer == "" && turn.failure == "" && !turn.handOver) {
				t.Errorf("turn %+v, want answer %q or a failure", turn, tc.wantAnswer)
			}
			t.Logf("turn %+v", turn)
		})
	}
	if followed.Load() != 0 {
		t.Error("a redirect was followed")
	}
}

// A customer who floods a chat over its reply rate does not have every
// message put to the model: the tokens of answers the rate would drop
// are not spent, nor counted as answers.
func TestAIRateLimitedChatDoesNotSpendTheModel(t *testing.T) {
	t.Parallel()
	model, base := newModel(t, func(r fakemodel.Request) fakemodel.Answer {
		return fakemodel.Answer{Text: "AI: " + r.Last().Content, Tokens: 100}
	})
	r := newRig(t, Options{AllowLoopbackModels: true})
	cfg := aiConfig(base)
	cfg.Limits.PerChatPerMinute = 2
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	for i := range 6 {
		send(t, ann, fmt.Sprintf("message %d", i))
	}
	r.waitLogs(id, "every message handled", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReceived) == 0 && count(ms, "in", "") == 6
	})
	ms := r.logs(id)
	sent := count(ms, "out", tenant.MsgReplied) + count(ms, "out", tenant.MsgPending)
	u := usageOf(t, r, id)
	t.Logf("model calls %d, answers sent %d, usage %+v", len(model.Requests()), sent, u)
	if n := len(model.Requests()); n > sent {
		t.Errorf("the model was asked %d times for %d answers the rate let through", n, sent)
	}
	if u.Answers > int64(sent) {
		t.Errorf("usage counts %d answers, %d were sent", u.Answers, sent)
	}
}

// A provider that sends its headers at once and then trickles the body is
// cut off at the timeout too.
func TestAITricklingProviderIsBoundedByTheTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		fmt.Fprint(w, `{"choices":[{"message":{"content":"`)
		for i := 0; i < 100; i++ {
			if _, err := fmt.Fprint(w, "a"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		fmt.Fprint(w, `"}}]}`)
	}))
	defer srv.Close()
	b := New(Options{AllowLoopbackModels: true}, slog.New(slog.DiscardHandler), nil)
	ai := tenant.DefaultBotConfig().AI
	ai.BaseURL, ai.Model, ai.TimeoutSeconds = srv.URL+"/v1", "m", 1
	start := time.Now()
	turn := b.callModel(context.Background(), ai, "sk", []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")})
	if d := time.Since(start); d > 2*time.Second || turn.failure == "" {
		t.Errorf("after %v: %+v, want a timeout after 1 s", d, turn)
	}
}
