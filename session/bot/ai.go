package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"go.mau.fi/whatsmeow/types"

	"wabot/tenant"
)

// AI answers: a message no rule matched is put to the tenant's model,
// with its knowledge and the chat's recent messages (never another
// chat's). The model may answer, or call its one tool to hand the chat to
// a person; a timeout, an error, a spent budget or a chat's daily limit
// hand over too, or go on to the webhook and fallback, as the tenant chose.

// handOverTool is the one tool the model is given. Nothing a customer
// writes can make it reach anything else: any other call is a failure.
const handOverTool = "hand_over_to_person"

// modelTurn is what became of asking the model about one message.
type modelTurn struct {
	answer   string // the model's answer, capped; "" when it gave none
	handOver bool   // the model asked for a person
	failure  string // why the model could not answer ("" when it did, or handed over)
	refused  bool   // the failure came before any call: a budget or limit
	tokens   int64
}

// Outcomes of a model turn, as the metrics count them.
const (
	aiAnswered = "answered"
	aiHandOver = "handover"
	aiFailed   = "failed"  // a timeout, an error, an unusable answer
	aiRefused  = "refused" // the budget or the chat's limit, before any call
)

// newModelClient reaches model providers: like webhooks, never an address
// the operator's network keeps private, checked when connecting (DNS may
// answer otherwise than when the URL was saved); loopback only when the
// operator allows a model on this machine.
func newModelClient(o Options) *http.Client {
	allowed := func(a netip.Addr) bool { return modelAddrAllowed(o, a) }
	dialer := guardedDialer(allowed, errors.New("the model's host resolves to a non-public address"))
	return &http.Client{
		Transport: capBodies{&http.Transport{
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
		}},
		// The provider must answer itself: a redirect could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxModelResponse bounds what a provider's answer may hold: the client
// reads an answer whole, and a tenant chooses the provider, so one
// answering without end must not fill the process's memory.
const maxModelResponse = 4 << 20

var errModelResponseTooLarge = errors.New("the model's answer is over 4 MB")

// capBodies ends every response body at maxModelResponse bytes, with an
// error.
type capBodies struct{ base http.RoundTripper }

func (c capBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Body = &cappedBody{ReadCloser: res.Body, left: maxModelResponse}
	return res, nil
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errModelResponseTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// modelAddrAllowed: public addresses, and loopback or the private ranges
// (RFC 1918, fc00::/7) when the operator allows; never link-local (cloud
// metadata lives there) or other special-purpose space.
func modelAddrAllowed(o Options, a netip.Addr) bool {
	a = a.Unmap()
	switch {
	case (o.AllowLoopbackModels || o.AllowPrivateModels) && a.IsLoopback():
		return true
	case o.AllowPrivateModels && a.IsPrivate():
		return true
	}
	return !nonPublic(a)
}

// errModelHost is the field error of a provider URL whose host is not a
// public address; like the webhook's, it never names the address.
var errModelHost = errors.New("The model's host is not a public internet address; the operator can allow a model on this machine with WABOT_AI_ALLOW_LOOPBACK.")

// checkModelURL refuses, when saving, a provider URL whose host resolves
// to an address the model client would refuse.
func (b *Bot) checkModelURL(ctx context.Context, raw string) error {
	if !b.resolvesOnlyTo(ctx, raw, func(a netip.Addr) bool { return modelAddrAllowed(b.opts, a) }) {
		return errModelHost
	}
	return nil
}

// askModel puts an inbound message to the tenant's model. ok is false
// only when the pipeline stopped. The whole turn (the reads before the
// call too) is bounded by the tenant's timeout: the customer never waits
// longer.
func (t *tenantBot) askModel(in inbound, cfg *config) (turn modelTurn, ok bool) {
	ai := cfg.AI
	now := time.Now()
	ctx, cancel := context.WithTimeout(t.ctx, time.Duration(ai.TimeoutSeconds)*time.Second)
	defer cancel()
	turn = t.modelTurn(ctx, in, ai, now)
	return turn, t.ctx.Err() == nil
}

func (t *tenantBot) modelTurn(ctx context.Context, in inbound, ai tenant.AI, now time.Time) modelTurn {
	usage, err := t.b.store.AIUsageOf(ctx, t.id, now)
	if err != nil {
		return modelTurn{failure: "cannot read the model's usage"}
	}
	if ai.MonthlyTokenBudget > 0 && usage.Tokens >= ai.MonthlyTokenBudget {
		return modelTurn{failure: "the model's monthly token budget is used up", refused: true}
	}
	if ai.AnswersPerChatPerDay > 0 {
		n, err := t.b.store.AIAnswersInChatSince(ctx, t.id, in.chat.String(), now.Add(-24*time.Hour))
		switch {
		case err != nil:
			return modelTurn{failure: "cannot count the model's answers in this chat"}
		case n >= ai.AnswersPerChatPerDay:
			return modelTurn{failure: "the model answered this chat as often as a day allows", refused: true}
		}
	}
	msgs, err := t.modelMessages(ctx, in, ai)
	if err != nil {
		return modelTurn{failure: "cannot read the chat's earlier messages"}
	}
	key, err := t.b.store.AIAPIKeyOf(ctx, t.id)
	if err != nil {
		return modelTurn{failure: "cannot read the model's API key"}
	}
	return t.b.callModel(ctx, ai, key, msgs)
}

// awayFromSlot runs fn (a model call) without the chat's slot of the
// tenant's ParallelChats: waiting on a model is not work, and messages of
// other chats (a rule answers at once) go on meanwhile. At most
// ParallelChats model calls of a tenant wait at once. fn does not run if
// the pipeline stops first.
func (t *tenantBot) awayFromSlot(fn func()) {
	<-t.sem
	defer func() { t.sem <- struct{}{} }() // answer gives it up after process
	select {
	case t.models <- struct{}{}:
	case <-t.ctx.Done():
		return
	}
	defer func() { <-t.models }()
	fn()
}

// showTyping shows the customer "typing…" while the model thinks, and
// ends it. Best effort: without it the answer comes all the same.
func (t *tenantBot) showTyping(chat types.JID, on bool) {
	ctx, cancel := context.WithTimeout(t.ctx, 2*time.Second)
	defer cancel()
	if err := t.out.Typing(ctx, chat, on); err != nil && t.ctx.Err() == nil {
		t.log.Debug("cannot show typing", "err", err)
	}
}

// callModel makes one call of a model within its timeout.
func (b *Bot) callModel(ctx context.Context, ai tenant.AI, key string, msgs []openai.ChatCompletionMessageParamUnion) modelTurn {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(ai.TimeoutSeconds)*time.Second)
	defer cancel()
	// The chat service alone, not openai.NewClient: that reads OPENAI_*
	// from the process's environment, and the operator's key or address
	// must never serve a tenant.
	svc := openai.NewChatCompletionService(
		option.WithBaseURL(ai.BaseURL+"/"),
		option.WithAPIKey(key),
		option.WithHTTPClient(b.model),
		option.WithMaxRetries(0), // the customer is waiting: fail over instead
	)
	res, err := svc.New(ctx, openai.ChatCompletionNewParams{
		Model:       shared.ChatModel(ai.Model),
		Messages:    msgs,
		Temperature: openai.Float(ai.Temperature),
		// Most text takes more than a character per token: this leaves
		// the model room to finish, and the cap below does the rest.
		MaxTokens: openai.Int(int64(ai.MaxAnswerChars)),
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        handOverTool,
			Description: openai.String("Hand the conversation to a person of the business: when the knowledge does not hold the answer, when you are not sure, or when the customer asks for a person."),
			Parameters: shared.FunctionParameters{
				"type": "object",
				"properties": map[string]any{
					"reason": map[string]any{"type": "string", "description": "Why a person should take over, in a few words."},
				},
			},
		})},
	})
	if err != nil {
		return modelTurn{failure: modelError(err, ai.TimeoutSeconds)}
	}
	// The usage is the provider's word: a negative count would lower the
	// month's use and panic the Prometheus counter it is added to.
	turn := modelTurn{tokens: max(res.Usage.TotalTokens, 0)}
	if turn.tokens == 0 {
		// A provider that does not say (some local servers): about 4
		// bytes a token, so the budget still holds.
		raw, _ := json.Marshal(msgs)
		n := len(raw)
		for _, c := range res.Choices {
			n += len(c.Message.Content) + len(c.Message.ToolCalls)*32
		}
		turn.tokens = int64(n/4 + 1)
	}
	if len(res.Choices) == 0 {
		turn.failure = "the model gave no answer"
		return turn
	}
	m := res.Choices[0].Message
	for _, call := range m.ToolCalls {
		if call.Function.Name != handOverTool {
			turn.failure = "the model called a tool it does not have"
			return turn
		}
		turn.handOver = true
	}
	if turn.handOver {
		return turn
	}
	if turn.answer = capAnswer(m.Content, ai.MaxAnswerChars); turn.answer == "" {
		turn.failure = "the model gave an empty answer"
	}
	return turn
}

// TryModel puts a question to a tenant's model with the AI settings
// given (saved or being typed), as a customer's first message would go,
// for the Bot page's test: the owner sees the address, key and knowledge
// work before a customer does. Without a typed key the saved one is
// used. The tokens count in the month's use; nothing is sent or logged.
func (b *Bot) TryModel(ctx context.Context, tenantID string, ai tenant.AI, question string) (tenant.ModelTrial, error) {
	cfg := tenant.DefaultBotConfig()
	cfg.AI = ai
	cfg.AI.Enabled = true // the address and the model's name are needed
	cfg.Normalize()
	ai = cfg.AI
	fields := map[string]string{}
	var invalid *tenant.Error
	if err := cfg.Validate(); errors.As(err, &invalid) {
		for k, v := range invalid.Fields {
			if strings.HasPrefix(k, "ai.") {
				fields[k] = v
			}
		}
	}
	question = strings.TrimSpace(question)
	switch {
	case question == "":
		fields["ai.try_question"] = "Write a question to put to the model."
	case utf8.RuneCountInString(question) > 1000:
		fields["ai.try_question"] = "Use at most 1000 characters."
	}
	if fields["ai.base_url"] == "" && ai.BaseURL != "" {
		if err := b.checkModelURL(ctx, ai.BaseURL); err != nil {
			fields["ai.base_url"] = err.Error()
		}
	}
	if len(fields) > 0 {
		return tenant.ModelTrial{}, &tenant.Error{Code: tenant.CodeInvalid, Msg: "the bot configuration has errors", Fields: fields}
	}
	saved, err := b.store.BotConfigOf(ctx, tenantID)
	if err != nil {
		return tenant.ModelTrial{}, err
	}
	usage, err := b.store.AIUsageOf(ctx, tenantID, time.Now())
	if err != nil {
		return tenant.ModelTrial{}, err
	}
	if saved.AI.MonthlyTokenBudget > 0 && usage.Tokens >= saved.AI.MonthlyTokenBudget {
		return tenant.ModelTrial{Failure: "the model's monthly token budget is used up"}, nil
	}
	key := ai.APIKey
	// The saved key goes only to the address it was saved for.
	if key == "" && !ai.ClearAPIKey && tenant.SameProvider(saved.AI.BaseURL, ai.BaseURL) {
		if key, err = b.store.AIAPIKeyOf(ctx, tenantID); err != nil {
			return tenant.ModelTrial{}, err
		}
	}
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(systemPrompt(ai, "")), openai.UserMessage(question)}
	turn := b.callModel(ctx, ai, key, msgs)
	if turn.tokens > 0 {
		b.opts.Observer.AI("trial", turn.tokens)
		if err := b.store.AddAIUsage(context.WithoutCancel(ctx), tenantID, time.Now(), tenant.AIUsage{Tokens: turn.tokens}); err != nil {
			b.log.Warn("cannot count the model's usage", "tenant", tenantID, "err", err)
		}
	}
	return tenant.ModelTrial{Answer: turn.answer, HandOver: turn.handOver, Failure: turn.failure, Tokens: turn.tokens}, nil
}

// modelError says why a call failed, without the provider's words: they
// may echo the request, and they go to the log.
func modelError(err error, timeout int) string {
	var api *openai.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the model did not answer within " + strconv.Itoa(timeout) + " s"
	case errors.Is(err, errModelResponseTooLarge):
		return errModelResponseTooLarge.Error()
	case errors.As(err, &api):
		return fmt.Sprintf("the model's provider answered HTTP %d", api.StatusCode)
	}
	return "cannot reach the model's provider"
}

// modelMessages are the prompt: the instructions and knowledge, the
// chat's recent messages, then the message to answer.
func (t *tenantBot) modelMessages(ctx context.Context, in inbound, ai tenant.AI) ([]openai.ChatCompletionMessageParamUnion, error) {
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(systemPrompt(ai, in.name))}
	if ai.HistoryMessages > 0 {
		history, err := t.history(ctx, in, ai.HistoryMessages)
		if err != nil {
			return nil, err
		}
		for _, m := range history {
			text := promptText(m.Kind, m.Body)
			switch {
			case text == "":
			case m.Direction == "in":
				msgs = append(msgs, openai.UserMessage(text))
			case m.Status != tenant.MsgFailed && m.Status != tenant.MsgRateLimited: // the customer saw it
				msgs = append(msgs, openai.AssistantMessage(text))
			}
		}
	}
	text := promptText(in.kind, in.text)
	if text == "" {
		text = "(an empty message)"
	}
	return append(msgs, openai.UserMessage(text)), nil
}

// history returns up to n of this chat's messages before in, as the
// conversation went: the customer's earlier messages, and every message
// sent to them so far, each reply after what it answers. In a burst the
// answers to earlier messages are logged after the later questions; cut
// by id alone, the model would not see its own answers and answer again.
func (t *tenantBot) history(ctx context.Context, in inbound, n int) ([]tenant.ThreadMessage, error) {
	rows, _, err := t.b.store.Thread(ctx, t.id, in.chat.String(), "", min(2*n+20, 200))
	if errors.Is(err, tenant.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type placed struct {
		at int64 // the id of the message it follows
		m  tenant.ThreadMessage
	}
	var kept []placed
	for _, m := range rows {
		switch {
		case m.Direction == "in" && m.ID < in.id:
			kept = append(kept, placed{m.ID, m})
		case m.Direction == "out" && m.ReplyTo == 0:
			kept = append(kept, placed{m.ID, m})
		case m.Direction == "out" && m.ReplyTo < in.id:
			kept = append(kept, placed{m.ReplyTo, m})
		}
	}
	slices.SortStableFunc(kept, func(a, b placed) int { return cmp.Compare(a.at, b.at) })
	out := make([]tenant.ThreadMessage, 0, n)
	for _, p := range kept[max(len(kept)-n, 0):] {
		out = append(out, p.m)
	}
	return out, nil
}

// promptText is a logged message as the model reads it: a media
// message's kind before its caption.
func promptText(kind, body string) string {
	body = strings.TrimSpace(body)
	switch kind {
	case "", "text":
		return body
	}
	if body == "" {
		return "[" + kind + "]"
	}
	return "[" + kind + "] " + body
}

// systemPrompt tells the model what it is for, what it may answer from
// and when to hand over.
func systemPrompt(ai tenant.AI, customer string) string {
	var b strings.Builder
	if p := strings.TrimSpace(ai.SystemPrompt); p != "" {
		b.WriteString(p)
	} else {
		b.WriteString("You answer customers of a business on WhatsApp, briefly and politely.")
	}
	b.WriteString("\n\nAnswer in the customer's language, in plain text fit for WhatsApp, in at most ")
	b.WriteString(strconv.Itoa(ai.MaxAnswerChars))
	b.WriteString(" characters. Answer only from the business's knowledge below and the conversation; never invent prices, dates or promises. " +
		"If the knowledge does not hold the answer, if you are not sure, or if the customer asks for a person, call " + handOverTool + " instead of answering.")
	if name := strings.Map(printable, cutRunes(customer, 60)); strings.TrimSpace(name) != "" {
		b.WriteString("\n\nThe customer's WhatsApp name: ")
		b.WriteString(strconv.Quote(name))
	}
	if k := strings.TrimSpace(ai.Knowledge); k != "" {
		b.WriteString("\n\nThe business's knowledge:\n<knowledge>\n")
		b.WriteString(k)
		b.WriteString("\n</knowledge>")
	}
	return b.String()
}

func printable(r rune) rune {
	if unicode.IsPrint(r) {
		return r
	}
	return -1
}

func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// capAnswer trims an answer and cuts it to at most max characters (and
// WhatsApp's own limit), at the last word boundary, marked with "…".
func capAnswer(s string, max int) string {
	s = strings.TrimSpace(s)
	if max <= 0 || max > tenant.MaxTextChars {
		max = tenant.MaxTextChars
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)[:max-1]
	cut := len(r)
	for i := len(r) - 1; i > len(r)/2; i-- {
		if unicode.IsSpace(r[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(r[:cut]), func(c rune) bool { return unicode.IsSpace(c) || unicode.IsPunct(c) }) + "…"
}

// countModelTurn adds a turn to the tenant's monthly usage and the
// metrics; handedOver says the chat went to a person for it (the model's
// call, or a failure when the tenant chose hand-over). A failed count is
// logged, not retried: the answer matters more.
func (t *tenantBot) countModelTurn(at time.Time, turn modelTurn, handedOver bool) {
	add := tenant.AIUsage{Tokens: turn.tokens}
	outcome := aiAnswered
	switch {
	case turn.handOver:
		outcome = aiHandOver
	case turn.refused:
		outcome, add.Failures, add.LastFailure = aiRefused, 1, turn.failure
	case turn.failure != "":
		outcome, add.Failures, add.LastFailure = aiFailed, 1, turn.failure
	default:
		add.Answers = 1
	}
	if handedOver {
		add.Handovers = 1
	}
	t.b.opts.Observer.AI(outcome, turn.tokens)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	if err := t.b.store.AddAIUsage(ctx, t.id, at, add); err != nil {
		t.log.Warn("cannot count the model's usage", "err", err)
	}
}
