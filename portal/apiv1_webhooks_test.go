package portal_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"wabot/session/fakewa/rigtest"
)

// waitDelivery polls a subscription's deliveries through the API until
// one has status, and returns it.
func waitDelivery(t *testing.T, a *apiClient, subID, status string) map[string]any {
	t.Helper()
	var found map[string]any
	rigtest.WaitFor(t, 30*time.Second, "a "+status+" delivery", func() bool {
		r := a.call(http.MethodGet, "/api/v1/webhooks/"+subID+"/deliveries", nil)
		for _, d := range r.json(t)["deliveries"].([]any) {
			if m := d.(map[string]any); m["status"] == status {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// TestAPIV1WebhooksSubscribeTestRetryRotate: with a bot:manage key a
// program subscribes a URL (the secret is in that answer only), sends a
// test event that fails against a broken receiver, rotates the secret,
// retries the failed delivery once the receiver works and gets it signed
// with the new secret; bad input is 422 naming the field, a delivery that
// is not failed cannot be retried, and a deleted subscription is gone.
func TestAPIV1WebhooksSubscribeTestRetryRotate(t *testing.T) {
	sink, hook := newEventSink(t, http.StatusInternalServerError)
	e := newEnv(t, map[string]string{
		"WABOT_APPROVAL":              "auto",
		"WABOT_WEBHOOK_ALLOW_PRIVATE": "true",
		"WABOT_WEBHOOK_MAX_ATTEMPTS":  "2",
		"WABOT_WEBHOOK_RETRY_DELAY":   "10ms",
	})
	b, _ := e.tenantUser("api-hooks@example.com", "Hooks API")
	api := e.api(b.createKey("/app/settings/keys", "crm", "bot:manage"))

	r := api.call(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": hook, "events": []string{"message.status", "message.sent", "message.status"}})
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	created := r.json(t)
	id, secret := created["id"].(string), created["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || created["url"] != hook || strings.Join(toStrings(created["events"]), ",") != "message.sent,message.status" {
		t.Fatalf("created %s", r.body)
	}
	mine := api.call(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": hook, "events": []string{"session.state"}, "secret": "my-own-secret-of-32-characters!!"})
	if mine.status != http.StatusCreated || mine.json(t)["secret"] != "my-own-secret-of-32-characters!!" {
		t.Fatalf("subscribe with a secret: %d %s", mine.status, mine.body)
	}
	list := api.call(http.MethodGet, "/api/v1/webhooks", nil)
	if hooks := list.json(t)["webhooks"].([]any); len(hooks) != 2 || hooks[0].(map[string]any)["id"] != id {
		t.Fatalf("list %s", list.body)
	}
	one := api.call(http.MethodGet, "/api/v1/webhooks/"+id, nil)
	for _, r := range []resp{list, one} {
		if strings.Contains(r.body, secret) || strings.Contains(r.body, "my-own-secret") || strings.Contains(r.body, `"secret"`) {
			t.Fatalf("a later answer shows a secret: %s", r.body)
		}
	}
	if one.status != http.StatusOK || one.json(t)["url"] != hook {
		t.Fatalf("get one: %d %s", one.status, one.body)
	}

	// Bad input names the field.
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"unknown event", map[string]any{"url": hook, "events": []string{"message.deleted"}}, "events"},
		{"no events", map[string]any{"url": hook, "events": []string{}}, "events"},
		{"not http", map[string]any{"url": "ftp://example.com/x", "events": []string{"session.state"}}, "url"},
		{"short secret", map[string]any{"url": hook, "events": []string{"session.state"}, "secret": "short"}, "secret"},
		{"unknown field", map[string]any{"url": hook, "events": []string{"session.state"}, "active": true}, "active"},
		{"events as a string", `{"url": "https://example.com/x", "events": "session.state"}`, "events"},
	} {
		r := api.call(http.MethodPost, "/api/v1/webhooks", c.body)
		wantErr(t, c.name, r, http.StatusUnprocessableEntity, "validation_failed")
		if _, f := apiErr(t, r); f[c.field] == nil {
			t.Fatalf("%s: field %s not named: %s", c.name, c.field, r.body)
		}
	}
	wantErr(t, "bad limit", api.call(http.MethodGet, "/api/v1/webhooks/"+id+"/deliveries?limit=0", nil), http.StatusUnprocessableEntity, "validation_failed")

	// A test event fails against the broken receiver after the retries.
	if r := api.call(http.MethodPost, "/api/v1/webhooks/"+id+"/test", nil); r.status != http.StatusAccepted {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	failed := waitDelivery(t, api, id, "failed")
	if failed["event_type"] != "webhook.test" || failed["attempts"] != 2.0 || !strings.Contains(failed["last_error"].(string), "500") || failed["next_attempt_at"] != nil {
		t.Fatalf("failed delivery %v", failed)
	}
	for _, got := range sink.all() {
		if !signedBy(secret, got) {
			t.Fatalf("an attempt is not signed with the secret: %v", got.header)
		}
	}

	// Rotate, mend the receiver, retry: delivered, signed with the new secret.
	r = api.call(http.MethodPost, "/api/v1/webhooks/"+id+"/secret", nil)
	rotated, _ := r.json(t)["secret"].(string)
	if r.status != http.StatusOK || rotated == secret || !strings.HasPrefix(rotated, "whsec_") {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	sink.set(http.StatusOK)
	did := failed["id"].(string)
	r = api.call(http.MethodPost, "/api/v1/webhooks/deliveries/"+did+"/retry", nil)
	if r.status != http.StatusAccepted || r.json(t)["status"] != "pending" || r.json(t)["attempts"] != 0.0 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	delivered := waitDelivery(t, api, id, "delivered")
	if delivered["id"] != did || delivered["event_id"] != failed["event_id"] {
		t.Fatalf("delivered %v, was %v", delivered, failed)
	}
	got := sink.all()
	last := got[len(got)-1]
	var ev struct{ ID, Type string }
	json.Unmarshal(last.body, &ev)
	if ev.Type != "webhook.test" || ev.ID != failed["event_id"] || !signedBy(rotated, last) || signedBy(secret, last) {
		t.Fatalf("the retried delivery %s, %v", last.body, last.header)
	}
	wantErr(t, "retry a delivered one", api.call(http.MethodPost, "/api/v1/webhooks/deliveries/"+did+"/retry", nil), http.StatusConflict, "conflict")
	wantErr(t, "retry an unknown one", api.call(http.MethodPost, "/api/v1/webhooks/deliveries/dzzzzzzzzzzzzzzzz/retry", nil), http.StatusNotFound, "not_found")

	// Another scope is refused; a deleted subscription is gone.
	sender := e.api(b.createKey("/app/settings/keys", "sender", "messages:send"))
	wantErr(t, "no bot scope", sender.call(http.MethodGet, "/api/v1/webhooks", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "no bot scope", sender.call(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": hook, "events": []string{"session.state"}}), http.StatusForbidden, "forbidden")
	if r := api.call(http.MethodDelete, "/api/v1/webhooks/"+id, nil); r.status != http.StatusOK || r.json(t)["deleted"] != true {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantErr(t, "deleted", api.call(http.MethodGet, "/api/v1/webhooks/"+id, nil), http.StatusNotFound, "not_found")
	wantErr(t, "deleted's deliveries", api.call(http.MethodGet, "/api/v1/webhooks/"+id+"/deliveries", nil), http.StatusNotFound, "not_found")
	wantErr(t, "delete twice", api.call(http.MethodDelete, "/api/v1/webhooks/"+id, nil), http.StatusNotFound, "not_found")
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// A URL whose host resolves to an internal address is refused with 422
// on url, without naming the address, and nothing is stored.
func TestAPIV1WebhookRefusesAPrivateURL(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("api-ssrf@example.com", "Probe")
	api := e.api(b.createKey("/app/settings/keys", "probe", "bot:manage"))
	for _, u := range []string{"http://localhost:9/hook", "http://127.0.0.1:8080/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data"} {
		r := api.call(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": u, "events": []string{"session.state"}})
		wantErr(t, u, r, http.StatusUnprocessableEntity, "validation_failed")
		_, f := apiErr(t, r)
		msg, _ := f["url"].(string)
		if !strings.Contains(msg, "public") {
			t.Fatalf("%s: url error %q does not say the address is not public", u, msg)
		}
		if u == "http://localhost:9/hook" && (strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "::1")) {
			t.Fatalf("the error names the resolved address: %s", r.body)
		}
	}
	if r := api.call(http.MethodGet, "/api/v1/webhooks", nil); len(r.json(t)["webhooks"].([]any)) != 0 {
		t.Fatalf("a refused subscription is listed: %s", r.body)
	}
}
