//go:build fakewa

package portal_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserTeamInviteAndLiveChat: the owner invites an agent on the
// Members page; the agent, in a browser of their own, opens the link,
// signs in with a login link and joins; the Bot page refuses them; and a
// customer's message arrives live in the chat both have open.
func TestBrowserTeamInviteAndLiveChat(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_SEND_PACING": "false"})
	owner := newBrowser(t)
	token, _ := a.Store().CreateLoginLink(context.Background(), "owner@team.example", false)
	run(t, owner,
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`#name`)),
		chromedp.SendKeys(css(`#name`), "Team Bakery"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="simulate-scan"]`)),
		chromedp.Click(css(`[data-testid="simulate-scan"]`)),
		chromedp.WaitVisible(css(`[data-testid="connected"]`)),
	)
	ou, _ := a.Store().UserByEmail(context.Background(), "owner@team.example")
	contactWrites := func(text string) {
		t.Helper()
		sent := val(t, owner, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/messages", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({from: "+15550004444", name: "Cleo", text: %q})}).then(r => String(r.status))`, ou.TenantID, text), chromedp.EvalAwaitPromise))
		if sent != "202" {
			t.Fatalf("contact message: %s", sent)
		}
	}
	contactWrites("Hello, do you deliver?")

	// The owner invites the agent.
	run(t, owner,
		chromedp.Navigate(base+"/app/settings/members"),
		chromedp.SendKeys(css(`[data-testid="invite-email"]`), "agent@team.example"),
		chromedp.SetValue(css(`[data-testid="invite-role"]`), "agent"),
		chromedp.Click(css(`[data-testid="invite-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="invite-url"]`)),
	)
	link := val(t, owner, chromedp.Evaluate[string](`document.querySelector('[data-testid="invite-url"]').value`))
	path := strings.TrimPrefix(link, base)
	if !strings.HasPrefix(path, "/invite/") {
		t.Fatalf("invitation link %q", link)
	}

	// The owner opens the chat.
	run(t, owner, chromedp.Navigate(base+"/app/chats"), chromedp.WaitVisible(css(`[data-testid="chat-row"]`)))
	chat := val(t, owner, chromedp.Evaluate[string](`document.querySelector('[data-testid="chat-row"]').href`))
	run(t, owner, chromedp.Navigate(chat), chromedp.WaitVisible(css(`[data-testid="reply-text"]`)))

	// The agent opens the link signed out: sign in first, then join.
	agent := newBrowser(t)
	run(t, agent, chromedp.Navigate(link), chromedp.WaitReady(css(`body`)))
	if u := val(t, agent, chromedp.Location()); !strings.Contains(u, "next="+url.QueryEscape(path)) {
		t.Fatalf("signed-out invitation went to %s, want sign-in and back", u)
	}
	agentToken, _ := a.Store().CreateLoginLink(context.Background(), "agent@team.example", false)
	run(t, agent,
		chromedp.Navigate(base+"/auth/link?token="+agentToken+"&next="+url.QueryEscape(path)),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="invitation-accept"]`)),
		chromedp.Click(css(`[data-testid="invitation-accept"]`)),
		chromedp.WaitVisible(css(`[data-testid="current-tenant"]`)),
	)
	if got := val(t, agent, chromedp.Text(css(`[data-testid="current-tenant"]`))); got != "Team Bakery" {
		t.Fatalf("the agent's workspace: %q", got)
	}

	// The Bot page is not the agent's; nor is it in their menu.
	run(t, agent, chromedp.Navigate(base+"/app/bot"), chromedp.WaitVisible(css(`[data-testid="error-page"]`)))
	if got := val(t, agent, chromedp.Text(css(`.status-code`))); got != "403" {
		t.Fatalf("the agent's Bot page: %q, want 403", got)
	}
	if val(t, agent, chromedp.Evaluate[bool](`!!document.querySelector('nav a[href="/app/bot"]')`)) {
		t.Error("the agent's menu offers the Bot page")
	}

	// Both have the chat open; the customer writes; both see it live.
	run(t, agent, chromedp.Navigate(chat), chromedp.WaitVisible(css(`[data-testid="reply-text"]`)))
	for _, ctx := range []context.Context{owner, agent} {
		val(t, ctx, chromedp.Evaluate[bool](`window.__stay = "same page"; true`))
	}
	contactWrites("Can I pick up at 5?")
	bubble := `Array.from(document.querySelectorAll('[data-testid="bubble"][data-direction="in"] [data-testid="bubble-body"]')).some(b => b.textContent.includes("Can I pick up at 5?"))`
	for name, ctx := range map[string]context.Context{"owner": owner, "agent": agent} {
		val(t, ctx, chromedp.Poll[bool](bubble, chromedp.WithPollingTimeout(30*time.Second)))
		if got := val(t, ctx, chromedp.Evaluate[string](`window.__stay || ""`)); got != "same page" {
			t.Errorf("the %s's thread reloaded instead of updating live", name)
		}
	}
	screenshot(agent, t, "agent-thread")
}
