package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"wabot/tenant"
)

// verifyWebhook is what the README tells receivers to do: recompute the
// HMAC-SHA256 of X-Wabot-Timestamp + "." + body with the secret, compare
// it in constant time, and refuse timestamps more than 5 minutes away.
func verifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	ts := h.Get("X-Wabot-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("stale timestamp")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	if !hmac.Equal([]byte(h.Get("X-Wabot-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
		return errors.New("bad signature")
	}
	return nil
}

// A delivery's signature covers the time it was sent: the receiver checks
// it fresh, a replay with the timestamp changed no longer verifies, and
// the original is refused once it is old.
func TestWebhookSignatureCoversAFreshTimestamp(t *testing.T) {
	t.Parallel()
	type request struct {
		header http.Header
		body   []byte
		at     time.Time
	}
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		got = append(got, request{req.Header.Clone(), body, time.Now()})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	r := newRig(t, Options{AllowPrivateWebhooks: true})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"})
	cfg.Webhook = tenant.Webhook{URL: srv.URL, Secret: "s3cret"}
	_, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	ann.Send("hi there")
	expect(t, ann, "hello")
	waitFor(t, "the delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })
	mu.Lock()
	d := got[0]
	mu.Unlock()

	if err := verifyWebhook("s3cret", d.header, d.body, d.at); err != nil {
		t.Fatalf("the delivery does not verify: %v (headers %v)", err, d.header)
	}
	if err := verifyWebhook("other", d.header, d.body, d.at); err == nil {
		t.Fatal("the delivery verifies with another secret")
	}
	replay := d.header.Clone()
	sent, _ := strconv.ParseInt(d.header.Get("X-Wabot-Timestamp"), 10, 64)
	replay.Set("X-Wabot-Timestamp", strconv.FormatInt(sent+600, 10))
	if err := verifyWebhook("s3cret", replay, d.body, d.at.Add(10*time.Minute)); err == nil {
		t.Fatal("a replay with a new timestamp verifies: the signature does not cover it")
	}
	if err := verifyWebhook("s3cret", d.header, d.body, d.at.Add(10*time.Minute)); err == nil {
		t.Fatal("the delivery still verifies ten minutes later")
	}
}
