//go:build fakewa

package portal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
)

// TestBrowserBotAIAnswers: a new user of the demo build points AI answers
// at the demo's fake model, as the Bot page shows it, in a real browser:
// the section is filled in, a knowledge file chosen and the form saved
// (nothing in the section's inputs stops the browser from submitting);
// the key is stored but the page shows its field empty. A customer's
// question then gets the model's answer from the knowledge, which the
// log labels as an AI answer, and the dashboard counts.
func TestBrowserBotAIAnswers(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	st := a.Store()
	ctx := newBrowser(t)
	token, _ := st.CreateLoginLink(context.Background(), "aibrowser@example.com", false)
	run(t, ctx,
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="create-tenant"]`)),
		chromedp.SendKeys(css(`#name`), "AI Browser Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="simulate-scan"]`)),
		chromedp.Click(css(`[data-testid="simulate-scan"]`)),
		chromedp.WaitVisible(css(`[data-testid="connected"]`)),
	)
	u, _ := st.UserByEmail(context.Background(), "aibrowser@example.com")
	faq := "Opening hours: 7:00 to 19:00, Monday to Saturday.\nDelivery: within 5 km, free over 20 EUR.\n"
	file := filepath.Join(t.TempDir(), "faq.txt")
	if err := os.WriteFile(file, []byte(faq), 0o600); err != nil {
		t.Fatal(err)
	}

	run(t, ctx, chromedp.Navigate(base+"/app/bot"), chromedp.WaitVisible(css(`[data-testid="ai-demo-model"]`)))
	modelURL := val(t, ctx, chromedp.Text(css(`[data-testid="ai-demo-model"] code`)))
	if modelURL != base+"/dev/fake/model/v1" {
		t.Fatalf("the demo model's address shown: %q", modelURL)
	}
	run(t, ctx,
		chromedp.Click(css(`[data-testid="ai-enabled"]`)),
		chromedp.SendKeys(css(`#ai_base_url`), modelURL),
		chromedp.SendKeys(css(`#ai_model`), "demo"),
		chromedp.SendKeys(css(`#ai_api_key`), aiSecret),
		// Not a multiple of 0.1: a stepped number input would stop the
		// browser from submitting the form at all.
		chromedp.SetValue(css(`#ai_temperature`), "0.25"),
		chromedp.SetUploadFiles(css(`#ai_knowledge_file`), []string{file}),
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	cfg, _ := st.BotConfigOf(context.Background(), u.TenantID)
	if ai := cfg.AI; !ai.Enabled || ai.Model != "demo" || ai.Knowledge != faq || ai.Temperature != 0.25 || ai.OnFailure != tenant.AIHandOver || !ai.HasAPIKey {
		t.Fatalf("saved %+v", cfg.AI)
	}
	if key, _ := st.AIAPIKeyOf(context.Background(), u.TenantID); key != aiSecret {
		t.Fatalf("the key stored is %q", key)
	}
	if v := val(t, ctx, chromedp.Value(css(`#ai_api_key`))); v != "" {
		t.Fatalf("the key field holds %q after saving", v)
	}
	if html := val(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, aiSecret) {
		t.Fatal("the page holds the key")
	}

	sent := val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/messages", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({from: "+15550006666", name: "Dora", text: "What are your opening hours on Saturday?"})}).then(r => String(r.status))`, u.TenantID), chromedp.EvalAwaitPromise))
	if sent != "202" {
		t.Fatalf("the customer's message: %s", sent)
	}
	rigtest.WaitFor(t, 30*time.Second, "the model's answer logged", func() bool {
		ms, _, _ := st.Messages(context.Background(), u.TenantID, tenant.MessageQuery{Direction: "out"})
		for _, m := range ms {
			if m.Origin == tenant.OriginAI && strings.Contains(m.Body, "Opening hours: 7:00 to 19:00") {
				return true
			}
		}
		return false
	})
	run(t, ctx, chromedp.Navigate(base+"/app/logs"), chromedp.WaitVisible(css(`[data-testid="message-origin"]`)))
	if got := val(t, ctx, chromedp.Text(css(`[data-testid="message-origin"]`))); got != "bot · AI answer" {
		t.Errorf("the log labels the answer %q", got)
	}
	run(t, ctx, chromedp.Navigate(base+"/app"), chromedp.WaitVisible(css(`[data-testid="dashboard-ai"]`)))
	if got := val(t, ctx, chromedp.Text(css(`[data-testid="ai-usage-answers"]`))); got != "1" {
		t.Errorf("the dashboard counts %q answers", got)
	}

	// Ask the model on the Bot page: the demo model answers from the
	// saved knowledge, and nothing is sent or saved.
	run(t, ctx, chromedp.Navigate(base+"/app/bot"), chromedp.WaitVisible(css(`#ai_try_question`)),
		// Enter in the question asks the model (not the form's first
		// button, which would add, remove or move a rule).
		chromedp.SendKeys(css(`#ai_try_question`), "Is delivery free?\r"),
		chromedp.WaitVisible(css(`[data-testid="ai-trial-answer"]`)))
	if got := val(t, ctx, chromedp.Text(css(`[data-testid="ai-trial-answer"]`))); got != "Delivery: within 5 km, free over 20 EUR." {
		t.Errorf("the test question's answer: %q", got)
	}

	// A question the knowledge cannot answer: the model hands the chat
	// to a person, who finds it waiting in the inbox.
	sent = val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/messages", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({from: "+15550006666", name: "Dora", text: "Can you bake a wedding cake?"})}).then(r => String(r.status))`, u.TenantID), chromedp.EvalAwaitPromise))
	if sent != "202" {
		t.Fatalf("the customer's message: %s", sent)
	}
	handover := cfg.Handover.Reply
	val(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/outbox").then(r => r.json()).then(o => (o.messages || []).some(m => m.text === %q))`, u.TenantID, handover),
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	run(t, ctx, chromedp.Navigate(base+"/app/chats/15550006666@s.whatsapp.net"), chromedp.WaitVisible(css(`[data-testid="paused-by-model"]`)))
}
