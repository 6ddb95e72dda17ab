package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// page parses an HTML response.
func page(t *testing.T, r resp) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func testText(doc *goquery.Document, id string) string {
	return strings.TrimSpace(doc.Find(`[data-testid="` + id + `"]`).First().Text())
}

// createKey fills in the keys page's form at path and returns the secret
// the answer shows.
func (b *browser) createKey(path, name string, scopes ...string) string {
	b.t.Helper()
	r := b.postForm(path, url.Values{"name": {name}, "scopes": scopes})
	if r.status != http.StatusCreated {
		b.t.Fatalf("create key: %d %s", r.status, r.body)
	}
	secret, _ := page(b.t, r).Find(`[data-testid="new-secret"]`).Attr("value")
	if !strings.HasPrefix(secret, "wabot_") {
		b.t.Fatalf("no secret shown: %s", r.body)
	}
	return secret
}

// TestKeysPage: the owner creates a key, sees its secret once, sees it
// listed by name and prefix afterwards, and revokes it after confirming.
func TestKeysPage(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("keys@example.com", "Keys Shop")

	doc := page(t, b.get("/app"))
	if href, _ := doc.Find(`nav a:contains("API keys")`).Attr("href"); href != "/app/settings/keys" {
		t.Fatalf("nav link to keys: %q", href)
	}
	doc = page(t, b.get("/app/settings/keys"))
	if testText(doc, "keys-empty") == "" || doc.Find(`input[name="scopes"]`).Length() != 4 {
		t.Fatalf("empty keys page: %s", doc.Text())
	}

	// Refused input comes back with the field's error and what was typed.
	r := b.postForm("/app/settings/keys", url.Values{"name": {"CRM"}})
	if doc := page(t, r); r.status != http.StatusUnprocessableEntity || testText(doc, "error-scopes") == "" {
		t.Fatalf("no scope: %d %s", r.status, r.body)
	}
	r = b.postForm("/app/settings/keys", url.Values{"name": {"CRM\u202e"}, "scopes": {"bot:manage"}})
	if doc := page(t, r); r.status != http.StatusUnprocessableEntity || testText(doc, "error-name") == "" ||
		doc.Find(`input[value="bot:manage"]`).AttrOr("checked", "none") == "none" {
		t.Fatalf("bad name: %d %s", r.status, r.body)
	}

	secret := b.createKey("/app/settings/keys", "CRM", "messages:send", "bot:manage")
	doc = page(t, b.get("/app/settings/keys"))
	if strings.Contains(doc.Text(), secret) || doc.Find(`[data-testid="new-secret"]`).Length() != 0 {
		t.Fatal("the secret is shown again")
	}
	row := doc.Find(`[data-testid="key-row"]`)
	if row.Length() != 1 || testText(doc, "key-name") != "CRM" || testText(doc, "key-prefix") != secret[:12]+"…" ||
		testText(doc, "key-scopes") != "messages:send, bot:manage" || testText(doc, "key-last-used") != "never" {
		t.Fatalf("key row: %s", row.Text())
	}

	// Another workspace's owner cannot see or revoke it.
	other, _ := e.tenantUser("other@example.com", "Other")
	revoke, _ := doc.Find(`[data-testid="key-revoke"]`).Attr("href")
	if doc := page(t, other.get("/app/settings/keys")); doc.Find(`[data-testid="key-row"]`).Length() != 0 {
		t.Fatal("another workspace lists the key")
	}
	if r := other.postForm(revoke, nil); r.status != http.StatusNotFound {
		t.Fatalf("revoke by another workspace: %d", r.status)
	}

	confirm := page(t, b.get(revoke))
	if action, _ := confirm.Find(`[data-testid="confirm"] form`).Attr("action"); action != revoke {
		t.Fatalf("confirm form posts to %q", action)
	}
	r = b.postForm(revoke, nil)
	doc = page(t, r)
	if r.status != http.StatusOK || testText(doc, "flash") != "Key CRM revoked." || testText(doc, "key-revoked") == "" ||
		doc.Find(`[data-testid="key-revoke"]`).Length() != 0 {
		t.Fatalf("after revoke: %d %s", r.status, doc.Text())
	}
}

// TestAdminKeysPage: an admin creates an instance key on its own page;
// others do not find the page.
func TestAdminKeysPage(t *testing.T) {
	e := newEnv(t, nil)
	admin := newAdmin(e)
	if href, _ := page(t, admin.get("/admin")).Find(`nav a:contains("Instance keys")`).Attr("href"); href != "/admin/keys" {
		t.Fatalf("nav link: %q", href)
	}
	secret := admin.createKey("/admin/keys", "Reseller")
	doc := page(t, admin.get("/admin/keys"))
	if testText(doc, "key-scopes") != "admin" || testText(doc, "key-prefix") != secret[:12]+"…" {
		t.Fatalf("instance key row: %s", doc.Find(`[data-testid="key-list"]`).Text())
	}
	user, _ := e.tenantUser("user@example.com", "Shop")
	if r := user.get("/admin/keys"); r.status != http.StatusNotFound {
		t.Fatalf("a user reached instance keys: %d", r.status)
	}
	if r := user.postForm("/admin/keys", url.Values{"name": {"mine"}}); r.status != http.StatusNotFound {
		t.Fatalf("a user created an instance key: %d", r.status)
	}
	// The owner's own keys page never offers admin.
	if page(t, user.get("/app/settings/keys")).Find(`input[value="admin"]`).Length() != 0 {
		t.Fatal("admin scope offered to a workspace")
	}
	if r := user.postForm("/app/settings/keys", url.Values{"name": {"x"}, "scopes": {"admin"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("admin scope for a workspace key: %d", r.status)
	}
}
