package portal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A workspace awaiting approval links its number and sees its traffic,
// but not the text, and its pages say why; after approval the text is
// kept and the note is gone.
func TestPendingWorkspaceSeesMessagesWithoutTheirText(t *testing.T) {
	e := newEnv(t, nil) // manual approval
	owner, id := e.tenantUser("waiting@example.com", "Waiting Shop")
	if r := owner.postJSON(http.MethodPost, "/api/portal/tenant/current/link", nil); r.status != http.StatusOK {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	qr := waitJSON(t, owner, "/api/portal/tenant/current/qr", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), qr["qr_code"].(string)); err != nil {
		t.Fatal(err)
	}
	waitJSON(t, owner, "/api/portal/tenant/current/status", func(m map[string]any) bool {
		return m["session"].(map[string]any)["state"] == "CONNECTED"
	})
	ann := phone.NewContact("", "Ann")
	ann.Send("my card number is 4111 1111")
	waitJSON(t, owner, "/api/portal/tenant/current/logs", func(m map[string]any) bool { return len(m["logs"].([]any)) == 1 })

	for _, path := range []string{"/app", "/app/logs"} {
		page := owner.get(path)
		if page.status != http.StatusOK || !strings.Contains(page.body, `data-testid="bodies-withheld"`) {
			t.Fatalf("%s: %d, no note that messages are kept without their text", path, page.status)
		}
		if !strings.Contains(page.body, `data-testid="message-row"`) || strings.Contains(page.body, "4111") {
			t.Fatalf("%s should list the message without its text", path)
		}
	}

	admin := e.browser()
	admin.loginLink("root@example.com", true)
	if r := admin.postForm("/admin/tenants/"+id+"/approve", nil); r.status != http.StatusOK {
		t.Fatalf("approve: %d", r.status)
	}
	ann.Send("second message")
	deadline := time.Now().Add(20 * time.Second)
	for {
		page := owner.get("/app/logs")
		if strings.Contains(page.body, "second message") {
			if strings.Contains(page.body, `data-testid="bodies-withheld"`) || strings.Contains(page.body, "4111") {
				t.Fatal("after approval: the note stays, or the earlier text appeared")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message after approval is not logged with its text")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(owner.get("/app").body, `data-testid="bodies-withheld"`) {
		t.Fatal("the dashboard still has the note after approval")
	}
}
