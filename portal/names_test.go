package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestWorkspaceNameWithBidiOverrideRefused: a workspace name carrying a
// right-to-left override (which would reorder the text after it on the
// admin page) or a terminal escape is refused, on the form and through
// the API, with a sentence saying why; nothing is created.
func TestWorkspaceNameWithBidiOverrideRefused(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b := e.browser()
	b.loginLink("bidi@example.com", false)

	r := b.postForm("/app/tenant", url.Values{"name": {"Acme \u202egnp.exe"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("form: %d, want 422", r.status)
	}
	if !strings.Contains(r.body, `data-testid="error-name"`) || !strings.Contains(r.body, "text-direction marks") {
		t.Fatalf("form page does not say why:\n%s", r.body)
	}

	r = b.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "Acme\x1b[2J"})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("API: %d %s, want 422", r.status, r.body)
	}
	fields, _ := r.json(t)["fields"].(map[string]any)
	if msg, _ := fields["name"].(string); !strings.Contains(msg, "control characters") {
		t.Fatalf("API error: %s", r.body)
	}

	if r := b.get("/app"); !strings.Contains(r.body, `data-testid="create-tenant"`) {
		t.Fatalf("a refused name created a workspace:\n%s", r.body)
	}
	r = b.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "Acme مخبز"})
	if r.status != http.StatusCreated {
		t.Fatalf("a plain name: %d %s", r.status, r.body)
	}
}
