package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A webhook host that resolves to an internal address is refused without
// naming the address: the error must not let a tenant map the operator's
// DNS. "localhost" resolves to 127.0.0.1 through /etc/hosts.
func TestWebhookSaveErrorDoesNotNameTheResolvedAddress(t *testing.T) {
	e := newEnv(t, nil)
	b, _ := e.tenantUser("ssrf@example.com", "Probe")

	r := b.postJSON(http.MethodPut, "/api/portal/tenant/current/bot", map[string]any{
		"webhook": map[string]string{"url": "http://localhost:9/hook"},
	})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("saved: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "::1") {
		t.Fatalf("the error names the resolved address: %s", r.body)
	}
	field, _ := r.json(t)["fields"].(map[string]any)["webhook.url"].(string)
	if !strings.Contains(field, "public") {
		t.Fatalf("webhook.url error %q does not say the address is not public", field)
	}

	page := b.postForm("/app/bot", url.Values{"op": {"save"}, "enabled": {"1"}, "webhook_url": {"http://localhost:9/hook"}})
	if page.status != http.StatusUnprocessableEntity || !strings.Contains(page.body, `data-testid="error-webhook.url"`) {
		t.Fatalf("form saved: %d", page.status)
	}
	if strings.Contains(page.body, "127.0.0.1") {
		t.Fatal("the bot page names the resolved address")
	}
}
