package tenant_test

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// TestAPIKeyLifecycle: a key's secret is shown once, recognisable, stored
// only as a hash; it authenticates until revoked, and its last use is
// written at most once a minute.
func TestAPIKeyLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wabot.db")
	st := tenanttest.OpenAt(t, path)
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tenant.SetNow(st, func() time.Time { return now })
	u, tn := newTenant(t, st, "keys@example.com", "Keys Shop")

	k, secret, err := st.CreateAPIKey(ctx, tn.ID, "  CRM  ", []tenant.Scope{tenant.ScopeMessagesSend, tenant.ScopeBotManage}, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^wabot_[0-9A-Za-z]{43}$`).MatchString(secret) {
		t.Fatalf("secret %q has not the recognisable shape", secret)
	}
	if k.Name != "CRM" || k.Prefix != secret[:12] || k.TenantID != tn.ID || !k.Has(tenant.ScopeBotManage) || k.Has(tenant.ScopeAdmin) {
		t.Fatalf("key %+v", k)
	}
	// The database never holds the secret.
	raw := tenanttest.Raw(t, path)
	var n int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE secret_hash = ? OR prefix = ? OR name = ?`, secret, secret, secret).Scan(&n); err != nil || n != 0 {
		t.Fatalf("secret stored in clear: %d %v", n, err)
	}

	got, err := st.AuthenticateAPIKey(ctx, secret)
	if err != nil || got.ID != k.ID || !got.LastUsedAt.Equal(now) {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	first := now
	now = now.Add(30 * time.Second)
	if got, _ := st.AuthenticateAPIKey(ctx, secret); !got.LastUsedAt.Equal(first) {
		t.Fatalf("last used rewritten within a minute: %v", got.LastUsedAt)
	}
	now = now.Add(31 * time.Second)
	if got, _ := st.AuthenticateAPIKey(ctx, secret); !got.LastUsedAt.Equal(now) {
		t.Fatalf("last used not updated after a minute: %v", got.LastUsedAt)
	}

	for _, bad := range []string{"", "wabot_", secret[:len(secret)-1] + "x", strings.ToUpper(secret), "Bearer " + secret} {
		if _, err := st.AuthenticateAPIKey(ctx, bad); tenant.ErrorCode(err) != tenant.CodeUnauthorized {
			t.Errorf("secret %q: %v, want unauthorized", bad, err)
		}
	}

	// Another tenant cannot revoke it; its owner can, and then it is refused.
	_, other := newTenant(t, st, "other@example.com", "Other")
	if err := st.RevokeAPIKey(ctx, other.ID, k.ID); tenant.ErrorCode(err) != tenant.CodeNotFound {
		t.Fatalf("revoke by another tenant: %v", err)
	}
	if err := st.RevokeAPIKey(ctx, "", k.ID); tenant.ErrorCode(err) != tenant.CodeNotFound {
		t.Fatalf("revoke as an instance key: %v", err)
	}
	if err := st.RevokeAPIKey(ctx, tn.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AuthenticateAPIKey(ctx, secret); tenant.ErrorCode(err) != tenant.CodeUnauthorized {
		t.Fatalf("revoked key: %v", err)
	}
	keys, err := st.APIKeys(ctx, tn.ID)
	if err != nil || len(keys) != 1 || !keys[0].Revoked() {
		t.Fatalf("list after revoke: %+v %v", keys, err)
	}
	if keys, _ := st.APIKeys(ctx, other.ID); len(keys) != 0 {
		t.Fatalf("another tenant sees %+v", keys)
	}
}

// TestAPIKeyRules: names are validated like workspaces', tenant keys hold
// known scopes but never admin, instance keys hold admin only.
func TestAPIKeyRules(t *testing.T) {
	st := tenanttest.Open(t)
	ctx := context.Background()
	u, tn := newTenant(t, st, "rules@example.com", "Rules")
	cases := []struct {
		name   string
		key    string
		scopes []tenant.Scope
		field  string
	}{
		{"empty name", " ", []tenant.Scope{tenant.ScopeMessagesSend}, "name"},
		{"control character", "CRM\x1b[2J", []tenant.Scope{tenant.ScopeMessagesSend}, "name"},
		{"too long", strings.Repeat("k", 81), []tenant.Scope{tenant.ScopeMessagesSend}, "name"},
		{"no scope", "CRM", nil, "scopes"},
		{"admin scope", "CRM", []tenant.Scope{tenant.ScopeAdmin}, "scopes"},
		{"unknown scope", "CRM", []tenant.Scope{"messages:delete"}, "scopes"},
	}
	for _, c := range cases {
		_, _, err := st.CreateAPIKey(ctx, tn.ID, c.key, c.scopes, u.ID)
		var de *tenant.Error
		if tenant.ErrorCode(err) != tenant.CodeInvalid || !errors.As(err, &de) || de.Fields[c.field] == "" {
			t.Errorf("%s: %v, want invalid with a %s field", c.name, err, c.field)
		}
	}
	if _, err := tenant.ParseScopes([]string{"bot:manage", "messages:send"}); err != nil {
		t.Fatal(err)
	}
	if sc, _ := tenant.ParseScopes([]string{"bot:manage", "messages:send"}); !slices.Equal(sc, []tenant.Scope{tenant.ScopeMessagesSend, tenant.ScopeBotManage}) {
		t.Fatalf("scopes %v", sc)
	}
	if _, err := tenant.ParseScopes([]string{"admin"}); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Fatalf("admin accepted for a tenant key: %v", err)
	}

	inst, secret, err := st.CreateAPIKey(ctx, "", "Operator", []tenant.Scope{tenant.ScopeMessagesSend}, u.ID)
	if err != nil || inst.TenantID != "" || !slices.Equal(inst.Scopes, []tenant.Scope{tenant.ScopeAdmin}) {
		t.Fatalf("instance key %+v %v", inst, err)
	}
	if k, err := st.AuthenticateAPIKey(ctx, secret); err != nil || !k.Has(tenant.ScopeAdmin) || k.TenantID != "" {
		t.Fatalf("instance key authenticates as %+v %v", k, err)
	}
	if keys, _ := st.APIKeys(ctx, ""); len(keys) != 1 || keys[0].ID != inst.ID {
		t.Fatalf("instance keys %+v", keys)
	}
	if keys, _ := st.APIKeys(ctx, tn.ID); len(keys) != 0 {
		t.Fatalf("tenant lists instance keys %+v", keys)
	}
	if err := st.RevokeAPIKey(ctx, tn.ID, inst.ID); tenant.ErrorCode(err) != tenant.CodeNotFound {
		t.Fatalf("tenant revoked an instance key: %v", err)
	}
}
