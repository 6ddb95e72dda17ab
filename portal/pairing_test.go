package portal_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// Pairing codes are limited per tenant (3 in 10 minutes) and per phone
// number across tenants (3 in an hour), for pending tenants too: each
// code makes WhatsApp push a prompt to that phone.
func TestPhonePairingIsRateLimitedPerTenantAndPerNumber(t *testing.T) {
	e := newEnv(t, nil) // manual approval: the tenants stay pending
	a, _ := e.tenantUser("pair-a@example.com", "Pair A")
	b, _ := e.tenantUser("pair-b@example.com", "Pair B")
	x, y := "+"+e.wa.NewPhone("").Number(), "+"+e.wa.NewPhone("").Number()
	ask := func(br *browser, phone string) resp {
		return br.postJSON(http.MethodPost, "/api/portal/tenant/current/link/phone", map[string]string{"phone": phone})
	}
	limited := func(r resp, window int, what string) {
		t.Helper()
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("%s: %d %s, want 429", what, r.status, r.body)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > window {
			t.Fatalf("%s: Retry-After %q", what, r.header.Get("Retry-After"))
		}
	}

	for i := range 3 {
		if r := ask(a, x); r.status != http.StatusOK {
			t.Fatalf("code %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := ask(a, y)
	limited(r, 600, "a fourth code for the tenant")
	if !strings.Contains(r.json(t)["error"].(string), "workspace") {
		t.Fatalf("error %s", r.body)
	}

	// Another tenant cannot push more prompts to the same phone, written
	// differently; other numbers are its own to pair.
	r = ask(b, strings.Replace(x, "+", "+ (", 1)+")")
	limited(r, 3600, "a fourth code for the number")
	if !strings.Contains(r.json(t)["error"].(string), "phone number") {
		t.Fatalf("error %s", r.body)
	}
	page := b.postForm("/app/link/phone", url.Values{"phone": {x}})
	if page.status != http.StatusTooManyRequests || page.header.Get("Retry-After") == "" || !strings.Contains(page.body, "phone number") {
		t.Fatalf("form: %d %q", page.status, page.header.Get("Retry-After"))
	}
	if r := ask(b, y); r.status != http.StatusOK {
		t.Fatalf("another number: %d %s", r.status, r.body)
	}
}
