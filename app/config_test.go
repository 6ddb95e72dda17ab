package app

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaultsMatchContract(t *testing.T) {
	cfg, err := loadConfig(envFrom(nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", cfg.Addr, "127.0.0.1:8080"},
		{"base url", cfg.BaseURL.String(), "http://localhost:8080"},
		{"data dir", cfg.DataDir, "./data"},
		{"sessions dir", cfg.SessionsDir, "./sessions"},
		{"approval", cfg.Approval, "manual"},
		{"reconnect attempts", cfg.ReconnectMaxAttempts, 10},
		{"heartbeat", cfg.HeartbeatInterval, 30 * time.Second},
		{"log format", cfg.LogFormat, "auto"},
		{"log level", cfg.LogLevel, "info"},
		{"webhook private", cfg.WebhookAllowPrivate, false},
		{"google", cfg.GoogleClientID, ""},
		{"oidc", cfg.OIDCIssuer, ""},
		{"secure", cfg.Secure(), false},
		{"trusted proxies", len(cfg.TrustedProxies), 0},
		{"pairing per tenant", cfg.PairingPerTenant, 3},
		{"pairing per number", cfg.PairingPerNumber, 3},
		{"streams per user", cfg.StreamsPerUser, 4},
		{"stream lifetime", cfg.StreamLifetime, 30 * time.Minute},
		{"restore max file", cfg.RestoreMaxFile, int64(4 << 30)},
		{"restore max total", cfg.RestoreMaxTotal, int64(16 << 30)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigRejectsEachInvalidValue(t *testing.T) {
	cases := []struct {
		env   string
		value string
	}{
		{"WABOT_ADDR", "localhost"},
		{"WABOT_ADDR", "127.0.0.1:99999"},
		{"WABOT_ADDR", "127.0.0.1:http"},
		{"WABOT_ADDR", "bad host:80"},
		{"WABOT_BASE_URL", "localhost:8080"},
		{"WABOT_BASE_URL", "ftp://example.com"},
		{"WABOT_BASE_URL", "https://example.com/?x=1"},
		{"WABOT_OIDC_ISSUER", "not a url"},
		{"WABOT_ADMIN_EMAILS", "alice@example.com,bob"},
		{"WABOT_ALLOWED_DOMAINS", "example.com,-bad-.com"},
		{"WABOT_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"WABOT_TRUSTED_PROXIES", "proxy.local"},
		{"WABOT_WEBHOOK_ALLOW_PRIVATE", "maybe"},
		{"WABOT_APPROVAL", "sometimes"},
		{"WABOT_RECONNECT_MAX_ATTEMPTS", "0"},
		{"WABOT_RECONNECT_MAX_ATTEMPTS", "ten"},
		{"WABOT_HEARTBEAT_INTERVAL", "30"},
		{"WABOT_HEARTBEAT_INTERVAL", "2h"},
		{"WABOT_PAIRING_PER_TENANT", "0"},
		{"WABOT_PAIRING_PER_NUMBER", "many"},
		{"WABOT_API_RATE_PER_MINUTE", "0"},
		{"WABOT_STREAMS_PER_USER", "0"},
		{"WABOT_STREAM_LIFETIME", "10s"},
		{"WABOT_RESTORE_MAX_FILE", "512K"},
		{"WABOT_RESTORE_MAX_TOTAL", "lots"},
		{"WABOT_RESTORE_MAX_TOTAL", "100T"},
		{"WABOT_SEND_PER_MINUTE", "0"},
		{"WABOT_SEND_NEW_CHATS_PER_DAY", "lots"},
		{"WABOT_SEND_JITTER", "-1s"},
		{"WABOT_SEND_TYPING_MAX", "1m"},
		{"WABOT_SEND_MAX_AGE", "90d"},
		{"WABOT_SEND_MAX_QUEUED", "0"},
		{"WABOT_SEND_PACING", "sometimes"},
		{"WABOT_LOG_FORMAT", "xml"},
		{"WABOT_LOG_LEVEL", "verbose"},
	}
	for _, c := range cases {
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			_, err := loadConfig(envFrom(map[string]string{c.env: c.value}), nil, nil)
			if err == nil {
				t.Fatalf("accepted %s=%q", c.env, c.value)
			}
			if _, ok := err.(*UsageError); !ok {
				t.Fatalf("error is %T, want *UsageError", err)
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.env) || !strings.Contains(msg, c.value) || !strings.Contains(msg, "accepted") {
				t.Fatalf("error %q should be one line naming %s, the value and what is accepted", msg, c.env)
			}
		})
	}
}

func TestConfigReportsEveryBadValue(t *testing.T) {
	_, err := loadConfig(envFrom(map[string]string{"WABOT_ADDR": "x", "WABOT_LOG_LEVEL": "loud"}), nil, nil)
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Fatalf("want two lines, got %v", err)
	}
}

func TestConfigCrossChecks(t *testing.T) {
	for _, env := range []map[string]string{
		{"WABOT_GOOGLE_CLIENT_ID": "id"},
		{"WABOT_OIDC_ISSUER": "https://id.example.com"},
		{"WABOT_OIDC_CLIENT_ID": "id", "WABOT_OIDC_CLIENT_SECRET": "s"},
	} {
		if _, err := loadConfig(envFrom(env), nil, nil); err == nil {
			t.Errorf("accepted %v", env)
		}
	}
}

func TestConfigFlagWinsOverEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	flags := registerConfigFlags(fs)
	if err := fs.Parse([]string{"--addr", "127.0.0.1:9999", "--trusted-proxies", "10.0.0.0/8,127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(envFrom(map[string]string{"WABOT_ADDR": "127.0.0.1:1111", "WABOT_APPROVAL": "auto"}), fs, flags)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" {
		t.Errorf("addr %q: the flag should win", cfg.Addr)
	}
	if cfg.Approval != "auto" {
		t.Errorf("approval %q: the environment should apply when no flag is given", cfg.Approval)
	}
	if len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[1].String() != "127.0.0.1/32" {
		t.Errorf("trusted proxies %v", cfg.TrustedProxies)
	}
}
