package app_test

import (
	"context"
	"net/http"
	"testing"

	"wabot/app/apptest"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// Behind a load balancer a client's requests land on every instance: an
// API key's limit must hold across them, not once per instance.
func TestAPIKeyRateLimitHoldsAcrossInstances(t *testing.T) {
	ctx := context.Background()
	db := tenanttest.NewPostgresDatabase(t)
	env := map[string]string{"WABOT_DATABASE_URL": db, "WABOT_API_RATE_PER_MINUTE": "3"}
	a := apptest.Start(t, apptest.Options{Env: env})
	b := apptest.Start(t, apptest.Options{Env: env})

	u, err := a.Store().EnsureUser(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := a.Store().CreateTenant(ctx, u.ID, "Shop", true)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.Store().CreateAPIKey(ctx, tn.ID, "ci", []tenant.Scope{tenant.ScopeMessagesRead}, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	get := func(base string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/messages", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, base := range []string{a.URL(), b.URL(), a.URL()} {
		if code := get(base); code != http.StatusOK {
			t.Fatalf("request %d within the limit: %d", i+1, code)
		}
	}
	if code := get(b.URL()); code != http.StatusTooManyRequests {
		t.Fatalf("the fourth request in a minute, on the other instance: %d, want 429", code)
	}
}
