//go:build fakewa

package portal_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"wabot/tenant"
)

// TestBrowserBotRuleAttachment: on the Bot page, a file chosen in a rule's
// file input is uploaded with the form (multipart, through the portal's
// cross-origin check), saved as the rule's attachment and shown beside
// the rule; saving again without choosing keeps it.
func TestBrowserBotRuleAttachment(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	st := a.Store()
	ctx := newBrowser(t)
	token, _ := st.CreateLoginLink(context.Background(), "menu@example.com", false)
	run(t, ctx,
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="create-tenant"]`)),
		chromedp.SendKeys(css(`#name`), "Menu Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="link-panel"]`)),
	)
	u, _ := st.UserByEmail(context.Background(), "menu@example.com")
	menu := testPNG(t, 32, 24)
	file := filepath.Join(t.TempDir(), "menu.png")
	if err := os.WriteFile(file, menu, 0o600); err != nil {
		t.Fatal(err)
	}

	run(t, ctx,
		chromedp.Navigate(base+"/app/bot"),
		chromedp.Click(css(`[data-testid="add-rule"]`)),
		chromedp.WaitVisible(css(`#rule-pattern-0`)),
		chromedp.SendKeys(css(`#rule-pattern-0`), "menu"),
		chromedp.SendKeys(css(`#rule-reply-0`), "Today's menu"),
		chromedp.SetUploadFiles(css(`#rule-file-0`), []string{file}),
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	want := tenant.RuleAttachment{UploadID: sha(menu), Kind: tenant.MediaImage, FileName: "menu.png"}
	cfg, _ := st.BotConfigOf(context.Background(), u.TenantID)
	if len(cfg.Rules) != 1 || cfg.Rules[0].Attachment == nil || *cfg.Rules[0].Attachment != want {
		t.Fatalf("saved rules %+v", cfg.Rules)
	}
	if shown := val(t, ctx, chromedp.Text(css(`[data-testid="rule-attachment-current"]`))); !strings.Contains(shown, "menu.png (image)") {
		t.Fatalf("the page shows %q beside the rule", shown)
	}

	run(t, ctx,
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	if cfg, _ := st.BotConfigOf(context.Background(), u.TenantID); cfg.Rules[0].Attachment == nil || *cfg.Rules[0].Attachment != want {
		t.Fatalf("saving again lost the attachment: %+v", cfg.Rules)
	}
}
