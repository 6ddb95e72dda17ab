package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// AI answers: a language model, reached through an OpenAI-compatible
// chat-completions endpoint, answers what the rules do not, from the
// tenant's knowledge text and the chat's recent messages. It can hand the
// chat over to a person, and so does the pipeline when the model fails or
// its budget runs out (OnFailure says which of the two, hand-over or the
// webhook and fallback reply).
type AI struct {
	Enabled bool `json:"enabled"`
	// BaseURL is the endpoint's root, the part before /chat/completions:
	// https://api.openai.com/v1, https://openrouter.ai/api/v1,
	// http://127.0.0.1:11434/v1 for a local Ollama.
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
	// APIKey is write-only: a save that carries one stores it apart from
	// the configuration (bot_configs.ai_api_key); a save without keeps the
	// stored key, ClearAPIKey removes it. No read returns it: HasAPIKey
	// says whether one is stored.
	APIKey      string `json:"api_key,omitempty"`
	ClearAPIKey bool   `json:"clear_api_key,omitempty"`
	HasAPIKey   bool   `json:"has_api_key"`
	// SystemPrompt is the tenant's instructions to the model (tone, what
	// the business is); Knowledge is what it may answer from (an FAQ, a
	// price list), at most MaxKnowledgeBytes.
	SystemPrompt string  `json:"system_prompt"`
	Knowledge    string  `json:"knowledge"`
	Temperature  float64 `json:"temperature"`
	// MaxAnswerChars caps an answer (longer ones are cut at a word); the
	// model is asked for at most about as many tokens.
	MaxAnswerChars int `json:"max_answer_chars"`
	// HistoryMessages is how many of the chat's earlier messages the model
	// sees with the new one.
	HistoryMessages int `json:"history_messages"`
	// TimeoutSeconds bounds one call: a customer never waits longer for
	// the model.
	TimeoutSeconds int `json:"timeout_seconds"`
	// MonthlyTokenBudget is how many tokens the tenant's answers may use
	// in a calendar month (UTC); 0 is no budget.
	MonthlyTokenBudget int64 `json:"monthly_token_budget"`
	// AnswersPerChatPerDay caps the model's answers in one chat over 24
	// hours; past it the chat goes as OnFailure says. 0 is no limit.
	AnswersPerChatPerDay int `json:"answers_per_chat_per_day"`
	// OnFailure is what happens when the model cannot answer (a timeout,
	// an error, the budget or the chat's limit reached): AIHandOver pauses
	// the bot in the chat for a person; AIFallback goes on to the webhook
	// and the fallback reply, as if the model were not there.
	OnFailure string `json:"on_failure"`
}

// What the pipeline does when the model cannot answer.
const (
	AIHandOver = "handover"
	AIFallback = "fallback"
)

// OriginAI is the origin of a reply the model wrote.
const OriginAI = "ai"

// PausedByModel marks a chat the model (or the pipeline, for it) handed
// over to a person.
const PausedByModel = "model"

// Limits of the AI settings.
const (
	MaxKnowledgeBytes    = 64 << 10
	MaxSystemPromptChars = 4000
	MaxModelNameLength   = 200
	MaxAPIKeyLength      = 1000
	MaxHistoryMessages   = 50
	MaxAITimeoutSeconds  = 60
	MaxAnswersPerChatDay = 10000
)

func defaultAI() AI {
	return AI{Temperature: 0.3, MaxAnswerChars: 1000, HistoryMessages: 10, TimeoutSeconds: 20,
		MonthlyTokenBudget: 500_000, AnswersPerChatPerDay: 50, OnFailure: AIHandOver}
}

func (a *AI) normalize() {
	a.BaseURL = strings.TrimRight(strings.TrimSpace(a.BaseURL), "/")
	a.Model = strings.TrimSpace(a.Model)
	a.APIKey = strings.TrimSpace(a.APIKey)
	a.OnFailure = strings.ToLower(strings.TrimSpace(a.OnFailure))
	// Zero is no answer and no time at all: a configuration that left
	// them out gets the defaults.
	def := defaultAI()
	if a.OnFailure == "" {
		a.OnFailure = def.OnFailure
	}
	if a.MaxAnswerChars == 0 {
		a.MaxAnswerChars = def.MaxAnswerChars
	}
	if a.TimeoutSeconds == 0 {
		a.TimeoutSeconds = def.TimeoutSeconds
	}
	a.Knowledge = strings.ReplaceAll(a.Knowledge, "\r\n", "\n")
	a.SystemPrompt = strings.ReplaceAll(a.SystemPrompt, "\r\n", "\n")
}

// validate adds the AI settings' problems to f, by field name. The
// provider's address is checked again by the pipeline, against where its
// host resolves.
func (a *AI) validate(f map[string]string) {
	if a.BaseURL != "" || a.Enabled {
		u, err := url.Parse(a.BaseURL)
		switch {
		case a.BaseURL == "":
			f["ai.base_url"] = "Enter the model provider's API address, such as https://api.openai.com/v1."
		case len(a.BaseURL) > MaxURLLength:
			f["ai.base_url"] = "The URL is too long."
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			f["ai.base_url"] = "Enter an http:// or https:// URL without user name, password or query, such as https://api.openai.com/v1."
		}
	}
	switch {
	case a.Enabled && a.Model == "":
		f["ai.model"] = "Enter the model's name, such as gpt-4o-mini."
	case utf8.RuneCountInString(a.Model) > MaxModelNameLength:
		f["ai.model"] = fmt.Sprintf("Use at most %d characters.", MaxModelNameLength)
	}
	if len(a.APIKey) > MaxAPIKeyLength || strings.ContainsAny(a.APIKey, " \t\r\n") {
		f["ai.api_key"] = fmt.Sprintf("Paste the key alone, at most %d characters, without spaces.", MaxAPIKeyLength)
	}
	if utf8.RuneCountInString(a.SystemPrompt) > MaxSystemPromptChars {
		f["ai.system_prompt"] = fmt.Sprintf("Use at most %d characters.", MaxSystemPromptChars)
	}
	switch {
	case len(a.Knowledge) > MaxKnowledgeBytes:
		f["ai.knowledge"] = fmt.Sprintf("The knowledge text is %d KB; use at most %d KB.", (len(a.Knowledge)+1023)/1024, MaxKnowledgeBytes>>10)
	case !utf8.ValidString(a.Knowledge):
		f["ai.knowledge"] = "The knowledge must be plain text (UTF-8)."
	}
	if t := a.Temperature; math.IsNaN(t) || t < 0 || t > 2 {
		f["ai.temperature"] = "Choose 0 to 2."
	}
	// 0 for the answer's length, the timeout and the failure's way is the
	// default (normalize fills it in).
	if n := a.MaxAnswerChars; n < 0 || n > MaxReplyLength {
		f["ai.max_answer_chars"] = fmt.Sprintf("Choose 1 to %d characters.", MaxReplyLength)
	}
	if n := a.HistoryMessages; n < 0 || n > MaxHistoryMessages {
		f["ai.history_messages"] = fmt.Sprintf("Choose 0 to %d messages.", MaxHistoryMessages)
	}
	if n := a.TimeoutSeconds; n < 0 || n > MaxAITimeoutSeconds {
		f["ai.timeout_seconds"] = fmt.Sprintf("Choose 1 to %d seconds.", MaxAITimeoutSeconds)
	}
	if a.MonthlyTokenBudget < 0 || a.MonthlyTokenBudget > 1e12 {
		f["ai.monthly_token_budget"] = "Choose 0 (no budget) or a number of tokens."
	}
	if n := a.AnswersPerChatPerDay; n < 0 || n > MaxAnswersPerChatDay {
		f["ai.answers_per_chat_per_day"] = fmt.Sprintf("Choose 0 (no limit) to %d.", MaxAnswersPerChatDay)
	}
	if a.OnFailure != "" && a.OnFailure != AIHandOver && a.OnFailure != AIFallback {
		f["ai.on_failure"] = "Choose handover or fallback."
	}
}

// ModelTrial is what a tenant's model made of a test question from the
// Bot page.
type ModelTrial struct {
	Answer   string // the model's answer, as a customer would get it
	HandOver bool   // the model would hand the chat to a person
	Failure  string // why it could not answer
	Tokens   int64
}

// SameProvider reports whether two provider URLs reach the same origin
// (scheme, host and port): a saved key is sent only to the origin it was
// saved for, never to one a later edit points at.
func SameProvider(a, b string) bool {
	return providerOrigin(a) != "" && providerOrigin(a) == providerOrigin(b)
}

func providerOrigin(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// AIAPIKeyOf returns the model provider's key the tenant saved, "" when
// none. Only the pipeline reads it, to call the model.
func (s *Store) AIAPIKeyOf(ctx context.Context, tenantID string) (string, error) {
	var key string
	err := s.db.read.QueryRowContext(ctx, `SELECT ai_api_key FROM bot_configs WHERE tenant_id = ?`, tenantID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the model's API key: %w", err)
	}
	return key, nil
}

// AIUsage is a tenant's use of its model in one month.
type AIUsage struct {
	Month     string // YYYY-MM, UTC
	Tokens    int64  // prompt and answer tokens, as the provider counted them
	Answers   int64  // answers the model wrote
	Handovers int64  // chats handed to a person: by the model or for it
	Failures  int64  // calls that timed out or failed, and turns refused by a budget or limit
	// LastFailure says why the month's latest failure happened ("the
	// model's provider answered HTTP 401"), at LastFailureAt.
	LastFailure   string
	LastFailureAt time.Time
}

// UsageMonth is the month a time's usage counts in.
func UsageMonth(t time.Time) string { return t.UTC().Format("2006-01") }

// AIUsageOf returns the tenant's use of its model in the month of at;
// a month without any is zero.
func (s *Store) AIUsageOf(ctx context.Context, tenantID string, at time.Time) (AIUsage, error) {
	u := AIUsage{Month: UsageMonth(at)}
	var failedAt int64
	err := s.db.read.QueryRowContext(ctx, `SELECT tokens, answers, handovers, failures, last_failure, last_failure_at
		FROM ai_usage WHERE tenant_id = ? AND month = ?`,
		tenantID, u.Month).Scan(&u.Tokens, &u.Answers, &u.Handovers, &u.Failures, &u.LastFailure, &failedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return u, nil
	}
	if err != nil {
		return u, fmt.Errorf("reading the model's usage: %w", err)
	}
	if failedAt > 0 {
		u.LastFailureAt = fromMS(failedAt)
	}
	return u, nil
}

// AddAIUsage adds add's counts to the tenant's usage in the month of at;
// add.LastFailure, when set, becomes the latest failure, at at.
func (s *Store) AddAIUsage(ctx context.Context, tenantID string, at time.Time, add AIUsage) error {
	failedAt := int64(0)
	if add.LastFailure != "" {
		failedAt = ms(at)
	}
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ai_usage (tenant_id, month, tokens, answers, handovers, failures, last_failure, last_failure_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, month) DO UPDATE SET tokens = ai_usage.tokens + excluded.tokens,
				answers = ai_usage.answers + excluded.answers, handovers = ai_usage.handovers + excluded.handovers,
				failures = ai_usage.failures + excluded.failures,
				last_failure = CASE WHEN excluded.last_failure_at > 0 THEN excluded.last_failure ELSE ai_usage.last_failure END,
				last_failure_at = CASE WHEN excluded.last_failure_at > 0 THEN excluded.last_failure_at ELSE ai_usage.last_failure_at END`,
			tenantID, UsageMonth(at), add.Tokens, add.Answers, add.Handovers, add.Failures, cutUTF8(add.LastFailure, 200), failedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("counting the model's usage: %w", err)
	}
	return nil
}

// AIAnswersInChatSince counts the model's answers logged in a chat since
// a time.
func (s *Store) AIAnswersInChatSince(ctx context.Context, tenantID, chat string, since time.Time) (int, error) {
	var n int
	err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages
		WHERE tenant_id = ? AND chat = ? AND created_at >= ? AND origin = 'ai'`, tenantID, chat, ms(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting the model's answers in a chat: %w", err)
	}
	return n, nil
}

// AITokensByTenant returns every tenant's tokens in the month of at, for
// the admin console; a tenant without use is absent.
func (s *Store) AITokensByTenant(ctx context.Context, at time.Time) (map[string]int64, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT tenant_id, tokens FROM ai_usage WHERE month = ?`, UsageMonth(at))
	if err != nil {
		return nil, fmt.Errorf("reading the models' usage: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("reading the models' usage: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
