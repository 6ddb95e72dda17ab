//go:build fakewa

package portal_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserBotAIAnswers: in a real browser the AI section is filled in,
// a knowledge file chosen and the form saved (nothing in the section's
// inputs stops the browser from submitting); the key is stored, and the
// page shows its field empty with the "a key is saved" placeholder.
func TestBrowserBotAIAnswers(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_AI_ALLOW_LOOPBACK": "true"})
	st := a.Store()
	ctx := newBrowser(t)
	token, _ := st.CreateLoginLink(context.Background(), "aibrowser@example.com", false)
	run(t, ctx,
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="create-tenant"]`)),
		chromedp.SendKeys(css(`#name`), "AI Browser Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="link-panel"]`)),
	)
	u, _ := st.UserByEmail(context.Background(), "aibrowser@example.com")
	faq := "Opening hours: 7:00 to 19:00, Monday to Saturday.\n"
	file := filepath.Join(t.TempDir(), "faq.txt")
	if err := os.WriteFile(file, []byte(faq), 0o600); err != nil {
		t.Fatal(err)
	}

	run(t, ctx,
		chromedp.Navigate(base+"/app/bot"),
		chromedp.Click(css(`[data-testid="ai-enabled"]`)),
		chromedp.SendKeys(css(`#ai_base_url`), "http://127.0.0.1:11434/v1"),
		chromedp.SendKeys(css(`#ai_model`), "llama3.2"),
		chromedp.SendKeys(css(`#ai_api_key`), aiSecret),
		// Not a multiple of 0.1: a stepped number input would stop the
		// browser from submitting the form at all.
		chromedp.SetValue(css(`#ai_temperature`), "0.25"),
		chromedp.SetValue(css(`#ai_on_failure`), "fallback"),
		chromedp.SetUploadFiles(css(`#ai_knowledge_file`), []string{file}),
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	cfg, _ := st.BotConfigOf(context.Background(), u.TenantID)
	if ai := cfg.AI; !ai.Enabled || ai.Model != "llama3.2" || ai.Knowledge != faq || ai.Temperature != 0.25 || ai.OnFailure != "fallback" || !ai.HasAPIKey {
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
	// Saving again with the key field empty keeps the key.
	run(t, ctx,
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	if key, _ := st.AIAPIKeyOf(context.Background(), u.TenantID); key != aiSecret {
		t.Fatalf("saving again changed the key to %q", key)
	}
}
