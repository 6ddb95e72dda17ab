package portal_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"wabot/session/fakewa/rigtest"
)

// eventSink is a webhook receiver on 127.0.0.1 answering status.
type eventSink struct {
	mu     sync.Mutex
	status int
	got    []sunk
}

type sunk struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newEventSink(t *testing.T, status int) (*eventSink, string) {
	s := &eventSink{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, sunk{r.Header.Clone(), body, time.Now()})
		st := s.status
		s.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL + "/hook"
}

func (s *eventSink) set(status int) { s.mu.Lock(); s.status = status; s.mu.Unlock() }

func (s *eventSink) all() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.got...)
}

// signedBy checks X-Wabot-Signature as a receiver would: t= within five
// minutes, v1= the HMAC-SHA256 of "t.body".
func signedBy(secret string, r sunk) bool {
	parts := map[string]string{}
	for _, p := range strings.Split(r.header.Get("X-Wabot-Signature"), ",") {
		k, v, _ := strings.Cut(p, "=")
		parts[k] = v
	}
	sec, err := strconv.ParseInt(parts["t"], 10, 64)
	if err != nil || r.at.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts["t"] + "." + string(r.body)))
	return hmac.Equal([]byte(parts["v1"]), []byte(hex.EncodeToString(mac.Sum(nil))))
}

// The owner subscribes a URL on Settings → Webhooks and sees its secret
// once; "send test" to a receiver that keeps failing ends failed after the
// last retry and is listed so; "send again" delivers it, signed with that
// secret. Another workspace can neither resend nor delete it, and delete
// asks first.
func TestWebhooksPageSubscribesTestsAndSendsAFailedDeliveryAgain(t *testing.T) {
	sink, hook := newEventSink(t, http.StatusInternalServerError)
	e := newEnv(t, map[string]string{
		"WABOT_WEBHOOK_ALLOW_PRIVATE": "true",
		"WABOT_WEBHOOK_MAX_ATTEMPTS":  "2",
		"WABOT_WEBHOOK_RETRY_DELAY":   "10ms",
	})
	b, _ := e.tenantUser("hooks@example.com", "Hooks")

	if r := b.get("/app/settings/webhooks"); r.status != http.StatusOK || testidText(t, r.body, "subscriptions-empty") == "" {
		t.Fatalf("empty page: %d", r.status)
	}
	r := b.postForm("/app/settings/webhooks", url.Values{"url": {hook}, "events": {"session.state", "message.received"}})
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	doc := page(t, r)
	secret, _ := doc.Find(`[data-testid="new-secret"]`).Attr("value")
	row := doc.Find(`[data-testid="subscription-row"]`)
	subID, _ := row.Attr("data-id")
	if !strings.HasPrefix(secret, "whsec_") || row.Length() != 1 || row.Find(`[data-testid="subscription-url"]`).Text() != hook ||
		row.Find(`[data-testid="subscription-events"]`).Text() != "message.received, session.state" {
		t.Fatalf("after subscribing: secret %q, rows %d\n%s", secret, row.Length(), r.body)
	}
	if again := b.get("/app/settings/webhooks"); strings.Contains(again.body, secret) {
		t.Fatal("the page shows the secret again")
	}

	testURL, _ := row.Find(`form:has([data-testid="subscription-test"])`).Attr("action")
	if r := b.postForm(testURL, nil); r.status != http.StatusOK || !strings.Contains(r.body, "webhook.test") {
		t.Fatalf("send test: %d", r.status)
	}
	var failed *goquery.Selection
	rigtest.WaitFor(t, 30*time.Second, "the test delivery listed failed", func() bool {
		failed = page(t, b.get("/app/settings/webhooks")).Find(`[data-testid="delivery-row"][data-status="failed"]`)
		return failed.Length() == 1
	})
	if n := len(sink.all()); n != 2 {
		t.Fatalf("the receiver saw %d attempts, want 2", n)
	}
	if !strings.Contains(failed.Find(`[data-testid="delivery-error"]`).Text(), "500") {
		t.Errorf("failed row does not say why: %q", failed.Text())
	}
	deliveryID, _ := failed.Attr("data-id")
	resendURL, _ := failed.Find(`form:has([data-testid="delivery-resend"])`).Attr("action")

	// Another workspace cannot touch it.
	other, _ := e.tenantUser("other@example.com", "Other")
	if r := other.postForm(resendURL, nil); r.status != http.StatusNotFound {
		t.Errorf("another workspace's resend: %d", r.status)
	}
	if r := other.postForm("/app/settings/webhooks/"+subID+"/delete", nil); r.status != http.StatusNotFound {
		t.Errorf("another workspace's delete: %d", r.status)
	}
	if strings.Contains(other.get("/app/settings/webhooks").body, hook) {
		t.Error("another workspace lists the subscription")
	}

	sink.set(http.StatusOK)
	if r := b.postForm(resendURL, nil); r.status != http.StatusOK {
		t.Fatalf("send again: %d", r.status)
	}
	rigtest.WaitFor(t, 30*time.Second, "the delivery sent again to be delivered", func() bool {
		return page(t, b.get("/app/settings/webhooks")).Find(`[data-testid="delivery-row"][data-id="`+deliveryID+`"][data-status="delivered"]`).Length() == 1
	})
	got := sink.all()
	last := got[len(got)-1]
	var ev struct{ Type string }
	json.Unmarshal(last.body, &ev)
	if ev.Type != "webhook.test" || last.header.Get("X-Wabot-Delivery") != deliveryID || !signedBy(secret, last) {
		t.Fatalf("delivered %s with %v", last.body, last.header)
	}

	// Delete asks first, then removes it.
	deleteURL, _ := row.Find(`[data-testid="subscription-delete"]`).Attr("href")
	confirm := b.get(deleteURL)
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, hook) {
		t.Fatalf("delete confirmation: %d", confirm.status)
	}
	if r := b.postForm(deleteURL, nil); r.status != http.StatusOK || testidText(t, r.body, "subscriptions-empty") == "" {
		t.Fatalf("after delete: %d", r.status)
	}
}

// A URL whose host is not public is refused when subscribing, with the
// reason beside the field, and nothing is stored.
func TestWebhooksPageRefusesAPrivateURL(t *testing.T) {
	e := newEnv(t, nil)
	b, _ := e.tenantUser("ssrf-hooks@example.com", "Probe")
	r := b.postForm("/app/settings/webhooks", url.Values{"url": {"http://localhost:9/hook"}, "events": {"session.state"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(testidText(t, r.body, "error-url"), "public") {
		t.Fatalf("private URL: %d %q", r.status, testidText(t, r.body, "error-url"))
	}
	if strings.Contains(r.body, "127.0.0.1") {
		t.Fatal("the error names the resolved address")
	}
	if r := b.postForm("/app/settings/webhooks", url.Values{"url": {"https://example.com/hook"}}); r.status != http.StatusUnprocessableEntity || testidText(t, r.body, "error-events") == "" {
		t.Fatalf("no events: %d", r.status)
	}
	if testidText(t, b.get("/app/settings/webhooks").body, "subscriptions-empty") == "" {
		t.Fatal("a refused subscription is listed")
	}
}
