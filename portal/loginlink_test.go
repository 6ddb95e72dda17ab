package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"wabot/app/apptest"
)

// who is the email the portal's header shows as signed in, or "".
func (b *browser) who() string {
	b.t.Helper()
	r := b.get("/app")
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimSpace(doc.Find(`[data-testid="who"]`).Text())
}

func testidText(t *testing.T, body, id string) string {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(doc.Find(`[data-testid="` + id + `"]`).Text())
}

// Issue 13, finding 10: opening a login link signs no one in; its page
// asks, and only the button (a POST) spends the link.
func TestLoginLinkPageAsksAndSpendsNothing(t *testing.T) {
	e := newEnv(t, nil)
	token, _ := e.app.Store().CreateLoginLink(context.Background(), "lin@example.com", false)
	link := e.url + "/auth/link?token=" + url.QueryEscape(token)

	scanner := e.browser() // a mail client's link scanner, or a lured click
	r := scanner.get(link)
	if r.status != http.StatusOK || testidText(t, r.body, "link-email") != "lin@example.com" || !strings.Contains(r.body, "Sign in as") {
		t.Fatalf("link page: %d\n%s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("link page Cache-Control %q", r.header.Get("Cache-Control"))
	}
	if got := scanner.who(); got != "" {
		t.Fatalf("opening the link signed in %q", got)
	}
	if r := scanner.get("/api/portal/tenant/current/status"); r.status != http.StatusUnauthorized {
		t.Fatalf("after opening the link, the API says %d", r.status)
	}
	// The link is unspent: the person it was meant for still signs in.
	person := e.browser()
	apptest.SignIn(t, person.c, link)
	if got := person.who(); got != "lin@example.com" {
		t.Fatalf("signed in as %q", got)
	}
	// A cross-site form posting the token (login CSRF) is refused.
	token2, _ := e.app.Store().CreateLoginLink(context.Background(), "lin@example.com", false)
	victim := e.browser()
	r = victim.do(http.MethodPost, "/auth/link", strings.NewReader(url.Values{"token": {token2}}.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if r.status != http.StatusForbidden || victim.who() != "" {
		t.Fatalf("cross-site POST of a link: %d, signed in as %q", r.status, victim.who())
	}
}

// Issue 13, finding 10: a link never silently replaces another user
// signed in on the same browser.
func TestLoginLinkNeverSilentlyReplacesAnotherUser(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.loginLink("alice@example.com", false)
	token, _ := e.app.Store().CreateLoginLink(context.Background(), "mallory@example.com", false)

	r := b.get("/auth/link?token=" + url.QueryEscape(token))
	if r.status != http.StatusOK || !strings.Contains(testidText(t, r.body, "signed-in-as"), "alice@example.com") {
		t.Fatalf("the page should say who is signed in: %d\n%s", r.status, r.body)
	}
	// Posting the link without the confirmation the page carries: the
	// page comes back, nothing changes, the link stays unspent.
	r = b.postForm("/auth/link", url.Values{"token": {token}})
	if r.status != http.StatusConflict || !strings.Contains(testidText(t, r.body, "signed-in-as"), "alice@example.com") {
		t.Fatalf("post without confirmation: %d", r.status)
	}
	r = b.postForm("/auth/link", url.Values{"token": {token}, "switch_from": {"u-someone-else"}})
	if r.status != http.StatusConflict {
		t.Fatalf("post confirming another user: %d", r.status)
	}
	if got := b.who(); got != "alice@example.com" {
		t.Fatalf("after unconfirmed posts, signed in as %q", got)
	}
	// Pressing the page's button, which says it signs alice out, switches.
	apptest.SignIn(t, b.c, e.url+"/auth/link?token="+url.QueryEscape(token))
	if got := b.who(); got != "mallory@example.com" {
		t.Fatalf("after confirming, signed in as %q", got)
	}
	// The same user's own link needs no confirmation.
	again, _ := e.app.Store().CreateLoginLink(context.Background(), "mallory@example.com", false)
	if r := b.postForm("/auth/link", url.Values{"token": {again}}); r.status != http.StatusOK || b.who() != "mallory@example.com" {
		t.Fatalf("own link while signed in: %d", r.status)
	}
}

// Scripts POST the link's URL itself (the README's curl recipe): no
// Origin, no page, one request.
func TestScriptedSignInPostsTheLink(t *testing.T) {
	e := newEnv(t, nil)
	token, _ := e.app.Store().CreateLoginLink(context.Background(), "script@example.com", false)
	b := e.browser()
	r := b.do(http.MethodPost, "/auth/link?token="+url.QueryEscape(token)+"&next=//evil.example", nil, nil)
	if u, _ := url.Parse(r.url); r.status != http.StatusOK || u.Host != "wabot.test" || u.Path != "/app" {
		t.Fatalf("scripted sign-in: %d at %s", r.status, r.url)
	}
	if r := b.get("/api/portal/tenant/current/status"); r.status != http.StatusNotFound || r.json(t)["error"] != "no tenant" {
		t.Fatalf("signed in by script: %d %s", r.status, r.body)
	}
}
