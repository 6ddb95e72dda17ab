package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"wabot/tenant"
)

// Config is every setting of a wabot process, loaded once from the
// environment and flags and validated before anything starts.
type Config struct {
	Addr        string
	BaseURL     *url.URL
	DataDir     string
	SessionsDir string
	// DatabaseURL is a postgres:// URL when the app database and every
	// tenant's device store live in PostgreSQL; empty for SQLite files
	// under DataDir and SessionsDir.
	DatabaseURL string

	GoogleClientID     string
	GoogleClientSecret string
	OIDCIssuer         string
	OIDCClientID       string
	OIDCClientSecret   string

	AdminEmails    []string
	AllowedDomains []string
	TrustedProxies []netip.Prefix
	MetricsToken   string
	InstanceID     string // this instance among several on one database; empty: host name and a random suffix
	// LeaseRenew and LeaseTTL: how often an instance renews its tenants'
	// leases, and how long one lasts unrenewed (PostgreSQL only).
	LeaseRenew time.Duration
	LeaseTTL   time.Duration

	WebhookAllowPrivate bool
	// AI answers may call a model on this machine (AIAllowLoopback) or
	// anywhere in the operator's network (AIAllowPrivate).
	AIAllowLoopback      bool
	AIAllowPrivate       bool
	WebhookMaxAttempts   int           // deliveries tried before failed
	WebhookRetryDelay    time.Duration // first retry; doubles up to 10 minutes
	Approval             string        // "manual" or "auto"
	ReconnectMaxAttempts int
	HeartbeatInterval    time.Duration
	MessageRetention     time.Duration
	PairingPerTenant     int // phone pairing codes per tenant in 10 minutes
	PairingPerNumber     int // phone pairing codes per phone number in an hour
	APIRatePerMinute     int // requests one API key may make in a minute
	StreamsPerUser       int
	StreamLifetime       time.Duration
	RestoreMaxFile       int64 // bytes one file of a backup may unpack to
	RestoreMaxTotal      int64 // bytes a whole backup may unpack to

	// Media caps: per file of each kind and per tenant in all.
	Media tenant.MediaLimits
	// MediaLinkTTL is how long a signed media download link works.
	MediaLinkTTL time.Duration

	// API sends (see bot.SendOptions).
	SendPerMinute      int
	SendNewChatsPerDay int
	SendJitter         time.Duration
	SendTypingMax      time.Duration
	SendMaxAge         time.Duration
	SendMaxQueued      int
	SendPacing         bool

	LogFormat string // "auto", "text" or "json"
	LogLevel  string // "debug", "info", "warn" or "error"

	// HandoverResumeCheck and HandoverResumeUnit are bot.Options'
	// ResumeCheck and ResumeUnit; zero in production (30 s and a minute).
	// End-to-end tests shorten them to watch the bot resume. Not
	// configurable.
	HandoverResumeCheck time.Duration
	HandoverResumeUnit  time.Duration

	// ProviderHTTPClient reaches the sign-in providers; nil in production.
	// Tests point it at fakes of Google's endpoints. Not configurable.
	ProviderHTTPClient *http.Client
}

// Secure reports whether the portal is served over https, which turns on
// Secure and __Host- cookies.
func (c *Config) Secure() bool { return c.BaseURL.Scheme == "https" }

// UsageError is a bad command line or configuration value: the process
// exits with status 2 and prints the message as is.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// setting describes one configuration variable: its name, default, help
// text and the parser that stores it into a Config.
type setting struct {
	env   string
	def   string
	help  string
	parse func(c *Config, v string) error
}

// settings lists every setting of the production binary, each a WABOT_
// environment variable and a flag of the same name that wins over it, in
// the order the README shows them. Each parse error says what is
// accepted; loadConfig adds the name and the value.
var settings = []setting{
	{"WABOT_ADDR", "127.0.0.1:8080", "listen address (host:port)", func(c *Config, v string) error {
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			return errors.New("accepted: host:port, such as 127.0.0.1:8080 or :8080")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return errors.New("accepted: a port from 0 to 65535 after the colon")
		}
		if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			return errors.New("accepted: an IP address or host name before the colon")
		}
		c.Addr = v
		return nil
	}},
	{"WABOT_BASE_URL", "http://localhost:8080", "public URL of the portal", func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return errors.New("accepted: an absolute http:// or https:// URL without query, such as https://wabot.example.com")
		}
		u.Path = strings.TrimRight(u.Path, "/")
		c.BaseURL = u
		return nil
	}},
	{"WABOT_DATA_DIR", "./data", "folder of the app database and generated secrets", nonEmpty(func(c *Config, v string) { c.DataDir = v })},
	{"WABOT_DATABASE_URL", "", "postgres://user:password@host/db puts the app database and the WhatsApp device stores in PostgreSQL (empty: SQLite files under the data and sessions folders)", func(c *Config, v string) error {
		if v != "" && !tenant.IsPostgresURL(v) {
			return errors.New("accepted: empty (SQLite), or a postgres:// or postgresql:// URL")
		}
		c.DatabaseURL = v
		return nil
	}},
	{"WABOT_SESSIONS_DIR", "./sessions", "folder with one WhatsApp device store per tenant", nonEmpty(func(c *Config, v string) { c.SessionsDir = v })},
	{"WABOT_GOOGLE_CLIENT_ID", "", "enables Sign in with Google", func(c *Config, v string) error { c.GoogleClientID = v; return nil }},
	{"WABOT_GOOGLE_CLIENT_SECRET", "", "Google OAuth client secret", func(c *Config, v string) error { c.GoogleClientSecret = v; return nil }},
	{"WABOT_OIDC_ISSUER", "", "enables OpenID Connect sign-in (issuer URL)", func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname()))) {
			return errors.New("accepted: the issuer's https:// URL, such as https://auth.example.com/realms/main (http:// only on loopback, for tests)")
		}
		// Kept exactly as given: the ID token's iss must equal it, and some
		// issuers end in a slash.
		c.OIDCIssuer = v
		return nil
	}},
	{"WABOT_OIDC_CLIENT_ID", "", "OpenID Connect client id", func(c *Config, v string) error { c.OIDCClientID = v; return nil }},
	{"WABOT_OIDC_CLIENT_SECRET", "", "OpenID Connect client secret", func(c *Config, v string) error { c.OIDCClientSecret = v; return nil }},
	{"WABOT_ADMIN_EMAILS", "", "comma list of admin emails", func(c *Config, v string) error {
		list, err := commaList(v, tenant.ValidEmail)
		if err != nil {
			return fmt.Errorf("accepted: comma-separated email addresses (%w)", err)
		}
		c.AdminEmails = list
		return nil
	}},
	{"WABOT_ALLOWED_DOMAINS", "", "comma list of email domains allowed to sign in", func(c *Config, v string) error {
		list, err := commaList(v, validHostname)
		if err != nil {
			return fmt.Errorf("accepted: comma-separated domain names such as example.com (%w)", err)
		}
		c.AllowedDomains = list
		return nil
	}},
	{"WABOT_TRUSTED_PROXIES", "", "comma list of CIDRs whose X-Forwarded-For is believed", func(c *Config, v string) error {
		var out []netip.Prefix
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("accepted: comma-separated CIDRs such as 10.0.0.0/8 or 127.0.0.1/32 (%q is not one)", s)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, p.Masked())
		}
		c.TrustedProxies = out
		return nil
	}},
	{"WABOT_METRICS_TOKEN", "", "bearer token for /metrics; empty: loopback only", func(c *Config, v string) error { c.MetricsToken = v; return nil }},
	{"WABOT_INSTANCE_ID", "", "this instance's id among several sharing a database; empty: the host name and a random suffix", func(c *Config, v string) error { c.InstanceID = v; return nil }},
	{"WABOT_WEBHOOK_ALLOW_PRIVATE", "false", "allow webhooks to loopback and private addresses", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("accepted: true or false")
		}
		c.WebhookAllowPrivate = b
		return nil
	}},
	{"WABOT_AI_ALLOW_LOOPBACK", "false", "allow AI answers to use a model on this machine (a local Ollama or vLLM)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("accepted: true or false")
		}
		c.AIAllowLoopback = b
		return nil
	}},
	{"WABOT_AI_ALLOW_PRIVATE", "false", "allow AI answers to use a model at loopback and private (RFC 1918, fc00::/7) addresses; link-local stays refused", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("accepted: true or false")
		}
		c.AIAllowPrivate = b
		return nil
	}},
	{"WABOT_WEBHOOK_MAX_ATTEMPTS", "8", "attempts of a webhook delivery before it is failed", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return errors.New("accepted: a whole number from 1 to 100")
		}
		c.WebhookMaxAttempts = n
		return nil
	}},
	{"WABOT_WEBHOOK_RETRY_DELAY", "2s", "wait before a webhook delivery's first retry; doubles each time, up to 10m", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > 10*time.Minute {
			return errors.New("accepted: a duration from 10ms to 10m, such as 2s")
		}
		c.WebhookRetryDelay = d
		return nil
	}},
	{"WABOT_APPROVAL", "manual", "manual: an admin approves each tenant; auto: approved at creation", oneOf(func(c *Config, v string) { c.Approval = v }, "manual", "auto")},
	{"WABOT_RECONNECT_MAX_ATTEMPTS", "10", "reconnect tries before a session goes to ERROR", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errors.New("accepted: a whole number from 1 to 1000")
		}
		c.ReconnectMaxAttempts = n
		return nil
	}},
	{"WABOT_LEASE_RENEW", "5s", "with several instances: how often each renews the leases of the tenants it runs", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Minute {
			return errors.New("accepted: a duration from 100ms to 1m, such as 5s")
		}
		c.LeaseRenew = d
		return nil
	}},
	{"WABOT_LEASE_TTL", "15s", "with several instances: how long a tenant's lease lasts unrenewed; an instance that dies hands its tenants on after this", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			return errors.New("accepted: a duration from 1s to 10m, such as 15s")
		}
		c.LeaseTTL = d
		return nil
	}},
	{"WABOT_HEARTBEAT_INTERVAL", "30s", "how often a running session writes last_seen_at", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			return errors.New("accepted: a duration from 100ms to 1h, such as 30s")
		}
		c.HeartbeatInterval = d
		return nil
	}},
	{"WABOT_MESSAGE_RETENTION", "90d", "how long the message log keeps messages", func(c *Config, v string) error {
		d, err := parseDays(v)
		if err != nil || d < time.Hour || d > 10*365*24*time.Hour {
			return errors.New("accepted: a duration from 1h to 3650d, such as 90d or 720h")
		}
		c.MessageRetention = d
		return nil
	}},
	{"WABOT_PAIRING_PER_TENANT", "3", "phone pairing codes a tenant may ask for in 10 minutes", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errors.New("accepted: a whole number from 1 to 1000")
		}
		c.PairingPerTenant = n
		return nil
	}},
	{"WABOT_PAIRING_PER_NUMBER", "3", "phone pairing codes one phone number may get in an hour, across tenants", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errors.New("accepted: a whole number from 1 to 1000")
		}
		c.PairingPerNumber = n
		return nil
	}},
	{"WABOT_API_RATE_PER_MINUTE", "120", "requests one API key may make under /api/v1 in a minute", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return errors.New("accepted: a whole number from 1 to 100000")
		}
		c.APIRatePerMinute = n
		return nil
	}},
	{"WABOT_STREAMS_PER_USER", "4", "live-update streams (open link pages) one user may hold at once", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return errors.New("accepted: a whole number from 1 to 100")
		}
		c.StreamsPerUser = n
		return nil
	}},
	{"WABOT_STREAM_LIFETIME", "30m", "how long one live-update stream lasts before the page reconnects", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			return errors.New("accepted: a duration from 1m to 24h, such as 30m")
		}
		c.StreamLifetime = d
		return nil
	}},
	{"WABOT_RESTORE_MAX_FILE", "4G", "largest file wabot restore unpacks from a backup", sizeSetting(func(c *Config, n int64) { c.RestoreMaxFile = n })},
	{"WABOT_RESTORE_MAX_TOTAL", "16G", "most wabot restore unpacks from one backup in all", sizeSetting(func(c *Config, n int64) { c.RestoreMaxTotal = n })},
	{"WABOT_MEDIA_MAX_IMAGE", "16M", "largest image stored or sent", sizeSetting(func(c *Config, n int64) { c.Media.MaxImage = n })},
	{"WABOT_MEDIA_MAX_STICKER", "16M", "largest sticker stored or sent", sizeSetting(func(c *Config, n int64) { c.Media.MaxSticker = n })},
	{"WABOT_MEDIA_MAX_AUDIO", "16M", "largest audio file or voice note stored or sent", sizeSetting(func(c *Config, n int64) { c.Media.MaxAudio = n })},
	{"WABOT_MEDIA_MAX_VIDEO", "16M", "largest video stored or sent", sizeSetting(func(c *Config, n int64) { c.Media.MaxVideo = n })},
	{"WABOT_MEDIA_MAX_DOCUMENT", "100M", "largest document stored or sent", sizeSetting(func(c *Config, n int64) { c.Media.MaxDocument = n })},
	{"WABOT_MEDIA_TENANT_QUOTA", "1G", "most disk one tenant's media files may take in all", sizeSetting(func(c *Config, n int64) { c.Media.TenantQuota = n })},
	{"WABOT_MEDIA_LINK_TTL", "24h", "how long a media download link in a webhook or event works without a key", durationSetting(time.Minute, 7*24*time.Hour, func(c *Config, d time.Duration) { c.MediaLinkTTL = d })},
	{"WABOT_SEND_PER_MINUTE", "20", "messages a tenant sends through the API in a minute, evenly spaced", intSetting(1, 600, func(c *Config, n int) { c.SendPerMinute = n })},
	{"WABOT_SEND_NEW_CHATS_PER_DAY", "50", "API messages a tenant may send in 24 hours to chats it never wrote to or heard from", intSetting(1, 100000, func(c *Config, n int) { c.SendNewChatsPerDay = n })},
	{"WABOT_SEND_JITTER", "2s", "random pause of up to this before each API send", durationSetting(0, time.Minute, func(c *Config, d time.Duration) { c.SendJitter = d })},
	{"WABOT_SEND_TYPING_MAX", "3s", "longest \"typing…\" shown before an API send (30ms a character up to this; 0 turns it off)", durationSetting(0, 30*time.Second, func(c *Config, d time.Duration) { c.SendTypingMax = d })},
	{"WABOT_SEND_MAX_AGE", "24h", "how long a queued API message waits (session offline, pacing) before it fails as expired", func(c *Config, v string) error {
		d, err := parseDays(v)
		if err != nil || d < time.Minute || d > 30*24*time.Hour {
			return errors.New("accepted: a duration from 1m to 30d, such as 24h")
		}
		c.SendMaxAge = d
		return nil
	}},
	{"WABOT_SEND_MAX_QUEUED", "1000", "API messages one tenant may have queued at once (429 beyond)", intSetting(1, 1000000, func(c *Config, n int) { c.SendMaxQueued = n })},
	{"WABOT_SEND_PACING", "true", "false turns off the per-minute and new-chat limits, jitter and typing (tests, benchmarks only)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("accepted: true or false")
		}
		c.SendPacing = b
		return nil
	}},
	{"WABOT_LOG_FORMAT", "auto", "text, json, or auto (text on a terminal)", oneOf(func(c *Config, v string) { c.LogFormat = v }, "auto", "text", "json")},
	{"WABOT_LOG_LEVEL", "info", "debug, info, warn or error", oneOf(func(c *Config, v string) { c.LogLevel = v }, "debug", "info", "warn", "error")},
}

// flagName turns WABOT_BASE_URL into base-url.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "WABOT_")), "_", "-")
}

// registerConfigFlags adds one string flag per setting to fs; values are
// applied by loadConfig so that a flag wins over the environment.
func registerConfigFlags(fs *flag.FlagSet) map[string]*string {
	vals := make(map[string]*string, len(settings))
	for _, s := range settings {
		vals[s.env] = fs.String(flagName(s.env), "", s.help+" (env "+s.env+")")
	}
	return vals
}

// LoadConfig builds a Config from the environment alone (tests and tools).
func LoadConfig(getenv func(string) string) (*Config, error) { return loadConfig(getenv, nil, nil) }

// loadConfig builds a Config from defaults, the environment and the flags
// that were set, reporting every bad value, one line each.
func loadConfig(getenv func(string) string, fs *flag.FlagSet, flags map[string]*string) (*Config, error) {
	set := map[string]bool{}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	}
	c := &Config{}
	var problems []string
	for _, s := range settings {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if set[flagName(s.env)] {
			v = *flags[s.env]
		}
		if err := s.parse(c, strings.TrimSpace(v)); err != nil {
			shown := fmt.Sprintf("%q", v)
			if strings.Contains(s.env, "SECRET") || s.env == "WABOT_DATABASE_URL" {
				shown = "(not shown: it may hold a password)"
			}
			problems = append(problems, fmt.Sprintf("invalid %s=%s: %v", s.env, shown, err))
		}
	}
	if len(problems) == 0 {
		problems = append(problems, c.crossCheck()...)
	}
	if len(problems) > 0 {
		return nil, &UsageError{Msg: strings.Join(problems, "\n")}
	}
	return c, nil
}

// crossCheck reports settings that are valid alone but not together.
func (c *Config) crossCheck() []string {
	var p []string
	if c.LeaseTTL < 2*c.LeaseRenew {
		p = append(p, "invalid WABOT_LEASE_TTL: accepted: at least twice WABOT_LEASE_RENEW, so one late renewal does not hand tenants over")
	}
	if (c.GoogleClientID == "") != (c.GoogleClientSecret == "") {
		p = append(p, "invalid WABOT_GOOGLE_CLIENT_ID/WABOT_GOOGLE_CLIENT_SECRET: accepted: both set, or both empty")
	}
	if c.OIDCIssuer != "" && (c.OIDCClientID == "" || c.OIDCClientSecret == "") {
		p = append(p, "invalid WABOT_OIDC_ISSUER: accepted only with WABOT_OIDC_CLIENT_ID and WABOT_OIDC_CLIENT_SECRET set")
	}
	if c.OIDCIssuer == "" && (c.OIDCClientID != "" || c.OIDCClientSecret != "") {
		p = append(p, "invalid WABOT_OIDC_CLIENT_ID: accepted only with WABOT_OIDC_ISSUER set")
	}
	return p
}

// PrintConfigHelp writes the table of variables, their defaults and meaning.
func PrintConfigHelp(w io.Writer) {
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(w, "  %-30s --%-24s default %-22s %s\n", s.env, flagName(s.env), def, s.help)
	}
}

func nonEmpty(store func(c *Config, v string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			return errors.New("accepted: a folder path")
		}
		store(c, v)
		return nil
	}
}

func oneOf(store func(c *Config, v string), allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if v == a {
				store(c, v)
				return nil
			}
		}
		return fmt.Errorf("accepted: %s", strings.Join(allowed, ", "))
	}
}

func commaList(v string, valid func(string) bool) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		if !valid(s) {
			return nil, fmt.Errorf("%q is not one", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// loopbackHost reports whether h names this machine: the only place a
// plain-http OpenID issuer is acceptable (a test's mock).
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// sizeSetting parses a size in bytes with an optional binary suffix
// (K, M, G, T: 512M, 4G), from 1M to 64T.
func intSetting(lo, hi int, store func(c *Config, n int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("accepted: a whole number from %d to %d", lo, hi)
		}
		store(c, n)
		return nil
	}
}

func durationSetting(lo, hi time.Duration, store func(c *Config, d time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("accepted: a duration from %s to %s, such as 2s", lo, hi)
		}
		store(c, d)
		return nil
	}
}

func sizeSetting(store func(c *Config, n int64)) func(*Config, string) error {
	return func(c *Config, v string) error {
		units := map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
		num, mult := v, int64(1)
		if n := len(v); n > 0 {
			if m, ok := units[v[n-1]&^0x20]; ok {
				num, mult = v[:n-1], m
			}
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 1 || n > (64<<40)/mult || n*mult < 1<<20 {
			return errors.New("accepted: a size from 1M to 64T, such as 512M or 4G")
		}
		store(c, n*mult)
		return nil
	}
}

// parseDays is time.ParseDuration that also takes whole days ("90d").
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}
