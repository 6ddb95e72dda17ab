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
	"time"
	"unicode/utf8"
)

// BotConfig is how a tenant's bot answers.
type BotConfig struct {
	Enabled       bool `json:"enabled"`
	ReplyInGroups bool `json:"reply_in_groups"`
	// ReadReceipts: opening a chat in the inbox tells the customer's
	// WhatsApp that their messages were read.
	ReadReceipts  bool     `json:"read_receipts"`
	Rules         []Rule   `json:"rules"`
	WelcomeReply  string   `json:"welcome_reply"`
	FallbackReply string   `json:"fallback_reply"`
	BusyReply     string   `json:"busy_reply"`
	Webhook       Webhook  `json:"webhook"`
	Limits        Limits   `json:"limits"`
	Handover      Handover `json:"handover"`
	// AI answers what the rules do not (ai.go).
	AI AI `json:"ai"`
}

// Handover is how the bot hands a chat over to a person: a customer who
// writes one of the keywords pauses the bot there and gets the reply; a
// paused chat gets the bot back once neither a person's reply nor the
// pause is more recent than ResumeAfterMinutes.
type Handover struct {
	// Keywords are matched as whole words (or phrases), ignoring case,
	// anywhere in a message's text: "agent" matches "Agent please!" but
	// not "agents" or "reagent".
	Keywords []string `json:"keywords"`
	Reply    string   `json:"reply"`
	// ResumeAfterMinutes is the idle time before the bot resumes; 0 (a
	// configuration from before hand-over existed) is the default, 60.
	ResumeAfterMinutes int `json:"resume_after_minutes"`
}

// Rule answers messages that match: the first matching rule wins.
type Rule struct {
	// Kind narrows the rule to one kind of message (OnImage…); empty
	// matches any message by its text, or a media message by its caption.
	Kind    string `json:"kind,omitempty"`
	Match   string `json:"match"` // exact, contains, prefix, regex
	Pattern string `json:"pattern"`
	Reply   string `json:"reply"`
	// Attachment, when set, is sent as the answer, the reply as its
	// caption; audio, voice notes and stickers carry no caption, so their
	// rules have no reply text.
	Attachment *RuleAttachment `json:"attachment,omitempty"`
}

// RuleAttachment is a file of the tenant's (an upload) that a rule
// answers with. While a saved configuration names it, the file is pinned
// (kept whatever its age); once none does, it is kept for a day more,
// then goes with the message-log retention like any upload.
type RuleAttachment struct {
	UploadID string    `json:"upload_id"`           // the file's SHA-256
	Kind     MediaKind `json:"kind,omitempty"`      // "" takes KindOfMIME of the file when saved
	FileName string    `json:"file_name,omitempty"` // shown with a document
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
	MaxKeywords      = 20
	MaxKeywordLength = 50
	MaxResumeMinutes = 7 * 24 * 60
)

// DefaultBotConfig is a new tenant's configuration: enabled, with no rules
// (so it answers nothing until the tenant adds some), default limits.
func DefaultBotConfig() BotConfig {
	return BotConfig{
		Enabled:   true,
		Rules:     []Rule{},
		BusyReply: "Thanks for your messages! We are catching up and will answer shortly.",
		Limits:    Limits{QueuePerChat: 20, PerChatPerMinute: 6, PerTenantPerMinute: 60},
		Handover: Handover{Keywords: []string{}, ResumeAfterMinutes: 60,
			Reply: "Thanks! A person from our team will answer you here shortly."},
		AI: defaultAI(),
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
	c.AI.normalize()
	if c.Handover.Keywords != nil {
		kw := []string{}
		for _, k := range c.Handover.Keywords {
			if k = strings.TrimSpace(k); k != "" {
				kw = append(kw, k)
			}
		}
		c.Handover.Keywords = kw
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
		if a := r.Attachment; a != nil {
			if !sha256Pattern.MatchString(a.UploadID) {
				f[key+".attachment.upload_id"] = "There is no upload with this id; upload the file first."
			}
			if a.Kind != "" && !a.Kind.HasFile() {
				f[key+".attachment.kind"] = "Use image, video, audio, voice, document or sticker; leave it out to take it from the file's type."
			}
			if len(a.FileName) > maxFileNameBytes || !utf8.ValidString(a.FileName) || strings.ContainsAny(a.FileName, "/\\\x00") {
				f[key+".attachment.file_name"] = "Use a file name of at most 255 bytes, without slashes."
			}
		}
		switch {
		case strings.TrimSpace(r.Reply) == "" && r.Attachment != nil:
			// The file alone is the answer.
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
	c.Handover.validate(f)
	c.AI.validate(f)
	if c.AI.Enabled && strings.TrimSpace(c.Handover.Reply) == "" && f["handover.reply"] == "" {
		// The model hands chats over with this reply.
		f["handover.reply"] = "Enter the reply a customer gets when they ask for a person."
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

// BotConfigOf returns the tenant's configuration, or the default, its
// replies in the tenant's language.
func (s *Store) BotConfigOf(ctx context.Context, tenantID string) (BotConfig, error) {
	var raw string
	var hasKey bool
	err := s.db.read.QueryRowContext(ctx, `SELECT config, ai_api_key <> '' FROM bot_configs WHERE tenant_id = ?`, tenantID).Scan(&raw, &hasKey)
	if errors.Is(err, sql.ErrNoRows) {
		return s.defaultBotConfigOf(ctx, tenantID), nil
	}
	if err != nil {
		return BotConfig{}, fmt.Errorf("reading bot configuration: %w", err)
	}
	c := s.defaultBotConfigOf(ctx, tenantID)
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return BotConfig{}, fmt.Errorf("decoding bot configuration: %w", err)
	}
	c.Normalize()
	c.AI.APIKey, c.AI.ClearAPIKey, c.AI.HasAPIKey = "", false, hasKey
	return c, nil
}

// SaveBotConfig validates and stores the configuration. The model's API
// key goes to its own column, replaced only by a save that carries one
// (or clears it), and is never part of what is returned.
func (s *Store) SaveBotConfig(ctx context.Context, tenantID string, c BotConfig) (BotConfig, error) {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Webhook.URL != "" && c.Webhook.Secret == "" {
		c.Webhook.Secret = NewWebhookSecret()
	}
	if s.media != nil {
		// Pinning and unpinning must not run between a removal's check
		// and its delete.
		s.media.mu.Lock()
		defer s.media.mu.Unlock()
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.pinRuleFiles(ctx, tx, tenantID, c.Rules); err != nil {
			return err
		}
		key, setKey := c.AI.APIKey, c.AI.APIKey != "" || c.AI.ClearAPIKey
		if !setKey {
			// A saved key belongs to the provider it was saved for: a save
			// that moves the address elsewhere without a new key removes
			// it, so it never reaches a host someone else typed.
			var prev string
			err := tx.QueryRowContext(ctx, `SELECT config FROM bot_configs WHERE tenant_id = ?`, tenantID).Scan(&prev)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			var was BotConfig
			if prev != "" && json.Unmarshal([]byte(prev), &was) == nil && !SameProvider(was.AI.BaseURL, c.AI.BaseURL) {
				key, setKey = "", true
			}
		}
		c.AI.APIKey, c.AI.ClearAPIKey, c.AI.HasAPIKey = "", false, false
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO bot_configs (tenant_id, config, updated_at, ai_api_key) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at,
				ai_api_key = CASE WHEN ? = 1 THEN excluded.ai_api_key ELSE bot_configs.ai_api_key END`, tenantID, string(raw), ms(s.now()), key, setKey)
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT ai_api_key <> '' FROM bot_configs WHERE tenant_id = ?`, tenantID).Scan(&c.AI.HasAPIKey)
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return c, err
		}
		return c, fmt.Errorf("saving bot configuration: %w", err)
	}
	return c, nil
}

// keepPinned is the keep_until of a file a saved rule answers with: no
// removal takes it. It needs no table of its own: a file is pinned
// exactly while its keep_until says so.
const keepPinned int64 = 1<<62 - 1

// unpinnedGrace is how long a file no rule names any more is kept, like
// a fresh upload: a configuration saved by mistake can still be undone.
const unpinnedGrace = 24 * time.Hour

// pinRuleFiles checks that every rule's attachment is one of the tenant's
// files, fills its kind from the file's type when empty, and checks the
// file fits that kind's cap; then it pins those files and unpins the
// tenant's files no rule names any more (kept unpinnedGrace from now).
func (s *Store) pinRuleFiles(ctx context.Context, tx *sql.Tx, tenantID string, rules []Rule) error {
	fields := map[string]string{}
	var shas []any
	for i := range rules {
		a := rules[i].Attachment
		if a == nil {
			continue
		}
		key := fmt.Sprintf("rules[%d].attachment", i)
		f, err := fileRow(ctx, tx, tenantID, a.UploadID)
		if errors.Is(err, ErrNotFound) {
			fields[key+".upload_id"] = "There is no upload with this id; upload the file first."
			continue
		}
		if err != nil {
			return err
		}
		if a.Kind == "" {
			a.Kind = KindOfMIME(f.MIME)
		}
		if s.media != nil {
			if limit := s.media.limits.MaxFor(a.Kind); f.Size > limit {
				fields[key] = tooLarge(a.Kind, limit).Error()
				continue
			}
		}
		if !CaptionFits(a.Kind) && strings.TrimSpace(rules[i].Reply) != "" {
			fields[fmt.Sprintf("rules[%d].reply", i)] = "WhatsApp shows no text with audio, voice notes or stickers: leave the reply empty, or attach the file as a document."
			continue
		}
		shas = append(shas, a.UploadID)
	}
	if len(fields) > 0 {
		return &Error{Code: CodeInvalid, Msg: "the bot configuration has errors", Fields: fields}
	}
	in := ""
	if len(shas) > 0 {
		in = ` AND sha256 NOT IN (?` + strings.Repeat(", ?", len(shas)-1) + `)`
	}
	args := append([]any{ms(s.now().Add(unpinnedGrace)), tenantID, keepPinned}, shas...)
	if _, err := tx.ExecContext(ctx, `UPDATE media_files SET keep_until = ? WHERE tenant_id = ? AND keep_until = ?`+in, args...); err != nil {
		return err
	}
	if len(shas) == 0 {
		return nil
	}
	args = append([]any{keepPinned, tenantID}, shas...)
	_, err := tx.ExecContext(ctx, `UPDATE media_files SET keep_until = ? WHERE tenant_id = ? AND sha256 IN (?`+strings.Repeat(", ?", len(shas)-1)+`)`, args...)
	return err
}
