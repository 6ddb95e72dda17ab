//go:build fakewa

package portal_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"wabot/app"
	"wabot/app/apptest"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
)

// A person takes over a chat in the browser: the bot answers until
// "Pause bot", then the customer's next message gets no bot reply and
// shows in the thread as skipped, the person's reply reaches the
// customer, and the bot resumes by itself after the idle time (a
// configured minute lasts a second here).
func TestBrowserPauseReplyAndResume(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	a := apptest.Start(t, apptest.Options{NoFake: true,
		Env: map[string]string{"WABOT_ADDR": addr, "WABOT_BASE_URL": base, "WABOT_APPROVAL": "auto", "WABOT_SEND_PACING": "false"},
		Config: func(c *app.Config) {
			c.HandoverResumeUnit = time.Second
			c.HandoverResumeCheck = 200 * time.Millisecond
		}})
	ctx := newBrowser(t)
	token, _ := a.Store().CreateLoginLink(context.Background(), "desk@example.com", false)
	run(t, ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`#name`)),
		chromedp.SendKeys(css(`#name`), "Desk Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="simulate-scan"]`)),
		chromedp.Click(css(`[data-testid="simulate-scan"]`)),
		chromedp.WaitVisible(css(`[data-testid="connected"]`)),
	)
	u, _ := a.Store().UserByEmail(context.Background(), "desk@example.com")
	saved := val(t, ctx, chromedp.Evaluate[string](`fetch("/api/portal/tenant/current/bot", {method: "PUT", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({enabled: true, rules: [{match: "contains", pattern: "hello", reply: "Hi from the bot"}],
			handover: {keywords: [], reply: "A person will answer.", resume_after_minutes: 1}})}).then(r => String(r.status))`, chromedp.EvalAwaitPromise))
	if saved != "200" {
		t.Fatalf("saving the bot: %s", saved)
	}
	const chat = "15550004444@s.whatsapp.net"
	contactWrites := func(text string) {
		t.Helper()
		sent := val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/messages", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({from: "+15550004444", name: "Cem", text: %q})}).then(r => String(r.status))`, u.TenantID, text), chromedp.EvalAwaitPromise))
		if sent != "202" {
			t.Fatalf("contact message: %s", sent)
		}
	}
	outboxHas := func(text string, n int) {
		t.Helper()
		val(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/outbox").then(r => r.json()).then(o => (o.messages || []).filter(m => m.text === %q).length === %d)`, u.TenantID, text, n),
			chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	}
	logged := func(text string) tenant.Message {
		t.Helper()
		var found tenant.Message
		rigtest.WaitFor(t, 30*time.Second, "the message "+text+" handled", func() bool {
			ms, _, _ := a.Store().Messages(context.Background(), u.TenantID, tenant.MessageQuery{Text: text})
			for _, m := range ms {
				if m.Direction == "in" && m.Body == text && m.Status != tenant.MsgReceived {
					found = m
					return true
				}
			}
			return false
		})
		return found
	}

	contactWrites("hello")
	outboxHas("Hi from the bot", 1)

	thread := base + "/app/chats/" + chat
	run(t, ctx, chromedp.Navigate(thread), chromedp.WaitVisible(css(`[data-testid="pause-bot"]`)),
		chromedp.Click(css(`[data-testid="pause-bot"]`)), chromedp.WaitVisible(css(`[data-testid="resume-bot"]`)))

	contactWrites("hello again")
	if m := logged("hello again"); m.Status != tenant.MsgIgnored {
		t.Fatalf("in a paused chat the message was %s (%s)", m.Status, m.Error)
	}
	outboxHas("Hi from the bot", 1)
	run(t, ctx, chromedp.Navigate(thread), chromedp.WaitVisible(css(`[data-testid="bubble-skipped"]`)))

	run(t, ctx,
		chromedp.SendKeys(css(`[data-testid="reply-text"]`), "A person here: how can I help?"),
		chromedp.Click(css(`[data-testid="reply-send"]`)),
	)
	// The form posts and the browser follows the redirect to the thread.
	rigtest.WaitFor(t, 30*time.Second, "the reply in the thread", func() bool {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(wctx, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll('[data-testid="bubble"][data-direction="out"]')).some(b => b.textContent.includes("A person here"))`))
		return err == nil && ok
	})
	outboxHas("A person here: how can I help?", 1)

	// Quiet for the idle time (one "minute"): the bot answers again.
	rigtest.WaitFor(t, 30*time.Second, "the bot resumed", func() bool {
		st, err := a.Store().ChatStateOf(context.Background(), u.TenantID, chat)
		return err == nil && !st.BotPaused
	})
	contactWrites("hello once more")
	outboxHas("Hi from the bot", 2)
	run(t, ctx, chromedp.Navigate(thread), chromedp.WaitVisible(css(`[data-testid="pause-bot"]`)))
}
