package app

import (
	"strings"
	"testing"
)

// Issue 13, finding 13: an OpenID issuer is reached over https; plain
// http only on loopback, where tests run their mock.
func TestOIDCIssuerMustBeHTTPS(t *testing.T) {
	env := func(issuer string) func(string) string {
		return envFrom(map[string]string{"WABOT_OIDC_ISSUER": issuer, "WABOT_OIDC_CLIENT_ID": "id", "WABOT_OIDC_CLIENT_SECRET": "s"})
	}
	for _, bad := range []string{"http://auth.example.com", "http://10.0.0.5/realms/main", "ftp://auth.example.com", "https://auth.example.com/?x=1", "https://user@auth.example.com"} {
		_, err := loadConfig(env(bad), nil, nil)
		if err == nil || !strings.Contains(err.Error(), "WABOT_OIDC_ISSUER") || !strings.Contains(err.Error(), "https://") {
			t.Errorf("issuer %q: %v, want refused", bad, err)
		}
	}
	for _, good := range []string{"https://auth.example.com/realms/main", "https://tenant.auth0.example/", "http://127.0.0.1:5556/oidc", "http://localhost:5556/dex", "http://[::1]:8080/oidc"} {
		cfg, err := loadConfig(env(good), nil, nil)
		if err != nil {
			t.Errorf("issuer %q refused: %v", good, err)
			continue
		}
		if cfg.OIDCIssuer != good {
			t.Errorf("issuer %q stored as %q; the ID token's iss must match it exactly", good, cfg.OIDCIssuer)
		}
	}
}
