package tenant

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// BotConfig is how a tenant's bot answers.
type BotConfig struct {
	Enabled       bool    `json:"enabled"`
	ReplyInGroups bool    `json:"reply_in_groups"`
	Rules         []Rule  `json:"rules"`
	WelcomeReply  string  `json:"welcome_reply"`
	FallbackReply string  `json:"fallback_reply"`
	BusyReply     string  `json:"busy_reply"`
	Webhook       Webhook `json:"webhook"`
	Limits        Limits  `json:"limits"`
}

// Rule answers messages that match: the first matching rule wins.
type Rule struct {
	// Kind narrows the rule to one kind of message (OnImage…); empty
	// matches any message by its text, or a media message by its caption.
	Kind    string `json:"kind,omitempty"`
	Match   string `json:"match"` // exact, contains, prefix, regex
	Pattern string `json:"pattern"`
	Reply   string `json:"reply"`
}

// Message kinds a rule can be narrowed to. OnAudio takes voice notes too;
// OnMedia is any of the others. With a kind, the pattern may be empty:
// every message of that kind matches, whatever its caption.
const (
	OnImage    = "image"
	OnVideo    = "video"
	OnAudio    = "audio"
	OnDocument = "document"
	OnSticker  = "sticker"
	OnLocation = "location"
	OnContact  = "contact"
	OnMedia    = "media"
)

// RuleKinds lists the kinds a rule may name, in the order a form offers them.
var RuleKinds = []string{OnImage, OnVideo, OnAudio, OnDocument, OnSticker, OnLocation, OnContact, OnMedia}

// KindMatches reports whether a message of kind (as the log stores it:
// text, image, voice…) is one a rule narrowed to on applies to.
func KindMatches(on, kind string) bool {
	switch on {
	case "":
		return true
	case OnAudio:
		return kind == "audio" || kind == "voice"
	case OnMedia:
		switch kind {
		case "image", "video", "audio", "voice", "document", "sticker", "location", "contact":
			return true
		}
		return false
	}
	return on == kind
}

// Webhook receives every accepted inbound message.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// Limits bound the work one tenant causes.
type Limits struct {
	QueuePerChat       int `json:"queue_per_chat"`
	PerChatPerMinute   int `json:"per_chat_per_minute"`
	PerTenantPerMinute int `json:"per_tenant_per_minute"`
}

// Match kinds.
const (
	MatchExact    = "exact"
	MatchContains = "contains"
	MatchPrefix   = "prefix"
	MatchRegex    = "regex"
)

// Validation limits.
const (
	MaxRules         = 100
	MaxPatternLength = 500
	MaxReplyLength   = 4096
	MaxURLLength     = 2048
)

// DefaultBotConfig is a new tenant's configuration: enabled, with no rules
// (so it answers nothing until the tenant adds some), default limits.
func DefaultBotConfig() BotConfig {
	return BotConfig{
		Enabled:   true,
		Rules:     []Rule{},
		BusyReply: "Thanks for your messages! We are catching up and will answer shortly.",
		Limits:    Limits{QueuePerChat: 20, PerChatPerMinute: 6, PerTenantPerMinute: 60},
	}
}

// Normalize trims the configuration and gives the queue its default size
// when it is missing. A rate limit of 0 means no limit; callers that decode
// JSON decode onto DefaultBotConfig so omitted limits keep their defaults.
func (c *BotConfig) Normalize() {
	def := DefaultBotConfig()
	if c.Rules == nil {
		c.Rules = []Rule{}
	}
	for i := range c.Rules {
		c.Rules[i].Kind = strings.ToLower(strings.TrimSpace(c.Rules[i].Kind))
		c.Rules[i].Match = strings.ToLower(strings.TrimSpace(c.Rules[i].Match))
		if c.Rules[i].Match != MatchRegex {
			c.Rules[i].Pattern = strings.TrimSpace(c.Rules[i].Pattern)
		}
	}
	c.Webhook.URL = strings.TrimSpace(c.Webhook.URL)
	c.Webhook.Secret = strings.TrimSpace(c.Webhook.Secret)
	if c.Limits.QueuePerChat == 0 {
		c.Limits.QueuePerChat = def.Limits.QueuePerChat
	}
}

// Validate checks every field and reports each problem by field name
// ("rules[2].pattern"), so a form can show it beside its field.
func (c *BotConfig) Validate() error {
	f := map[string]string{}
	if len(c.Rules) > MaxRules {
		f["rules"] = fmt.Sprintf("At most %d rules.", MaxRules)
	}
	program := 0 // instructions of the regex rules so far
	for i, r := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if r.Kind != "" && !slices.Contains(RuleKinds, r.Kind) {
			f[key+".kind"] = "Choose any message, or one of: " + strings.Join(RuleKinds, ", ") + "."
		}
		switch r.Match {
		case MatchExact, MatchContains, MatchPrefix, MatchRegex:
		default:
			f[key+".match"] = "Choose exact, contains, prefix or regex."
		}
		switch {
		case strings.TrimSpace(r.Pattern) == "" && r.Kind == "":
			f[key+".pattern"] = "Enter what to match, or choose a kind of message to answer every one of."
		case strings.TrimSpace(r.Pattern) == "":
		case utf8.RuneCountInString(r.Pattern) > MaxPatternLength:
			f[key+".pattern"] = fmt.Sprintf("Use at most %d characters.", MaxPatternLength)
		case r.Match == MatchRegex:
			size, problem := regexSize(r.Pattern)
			program += size
			switch {
			case problem != "":
				f[key+".pattern"] = problem
			case program > MaxRulesProgram:
				f[key+".pattern"] = fmt.Sprintf("With this rule the regular expressions together compile to %d instructions, at most %d are allowed. Simplify or remove some regular expressions.", program, MaxRulesProgram)
				f["rules"] = fmt.Sprintf("The regular expressions together are too complex (at most %d instructions once compiled).", MaxRulesProgram)
			}
		}
		switch {
		case strings.TrimSpace(r.Reply) == "":
			f[key+".reply"] = "Enter the reply to send."
		case utf8.RuneCountInString(r.Reply) > MaxReplyLength:
			f[key+".reply"] = fmt.Sprintf("Use at most %d characters.", MaxReplyLength)
		}
	}
	for name, v := range map[string]string{"welcome_reply": c.WelcomeReply, "fallback_reply": c.FallbackReply, "busy_reply": c.BusyReply} {
		if utf8.RuneCountInString(v) > MaxReplyLength {
			f[name] = fmt.Sprintf("Use at most %d characters.", MaxReplyLength)
		}
	}
	if c.Webhook.URL != "" {
		u, err := url.Parse(c.Webhook.URL)
		switch {
		case len(c.Webhook.URL) > MaxURLLength:
			f["webhook.url"] = "The URL is too long."
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
			f["webhook.url"] = "Enter an http:// or https:// URL without user name or password."
		}
	}
	if len(c.Webhook.Secret) > 256 {
		f["webhook.secret"] = "Use at most 256 characters."
	}
	if l := c.Limits.QueuePerChat; l < 1 || l > 1000 {
		f["limits.queue_per_chat"] = "Choose 1 to 1000."
	}
	if l := c.Limits.PerChatPerMinute; l < 0 || l > 10000 {
		f["limits.per_chat_per_minute"] = "Choose 0 (no limit) to 10000."
	}
	if l := c.Limits.PerTenantPerMinute; l < 0 || l > 100000 {
		f["limits.per_tenant_per_minute"] = "Choose 0 (no limit) to 100000."
	}
	if len(f) > 0 {
		return &Error{Code: CodeInvalid, Msg: "the bot configuration has errors", Fields: f}
	}
	return nil
}

func regexMessage(err error) string {
	var re *syntax.Error
	if errors.As(err, &re) {
		return fmt.Sprintf("%s in %q", re.Code, re.Expr)
	}
	return err.Error()
}

// NewWebhookSecret returns a random secret for signing deliveries.
func NewWebhookSecret() string {
	return rand.Text()
}

// BotConfigOf returns the tenant's configuration, or the default.
func (s *Store) BotConfigOf(ctx context.Context, tenantID string) (BotConfig, error) {
	var raw string
	err := s.db.read.QueryRowContext(ctx, `SELECT config FROM bot_configs WHERE tenant_id = ?`, tenantID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultBotConfig(), nil
	}
	if err != nil {
		return BotConfig{}, fmt.Errorf("reading bot configuration: %w", err)
	}
	c := DefaultBotConfig()
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return BotConfig{}, fmt.Errorf("decoding bot configuration: %w", err)
	}
	c.Normalize()
	return c, nil
}

// SaveBotConfig validates and stores the configuration.
func (s *Store) SaveBotConfig(ctx context.Context, tenantID string, c BotConfig) (BotConfig, error) {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Webhook.URL != "" && c.Webhook.Secret == "" {
		c.Webhook.Secret = NewWebhookSecret()
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return c, err
	}
	_, err = s.db.write.ExecContext(ctx, `INSERT INTO bot_configs (tenant_id, config, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`, tenantID, string(raw), ms(s.now()))
	if err != nil {
		return c, fmt.Errorf("saving bot configuration: %w", err)
	}
	return c, nil
}
