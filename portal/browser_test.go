//go:build fakewa

package portal_test

// Browser tests: headless Chromium (Debian's chromium package) driven
// through chromedp against the demo build, whose fake WhatsApp runs in
// process. They run in the test task's fakewa pass.

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"wabot/app"
	"wabot/app/apptest"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
)

// demoEnv starts the demo build's wabot on a free loopback port, so the
// browser and the base URL agree. Its tenants use the demo's own fake
// WhatsApp, which the page's "Simulate scan" and /dev/fake drive.
func demoEnv(t *testing.T, vars map[string]string) (*app.App, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vals := map[string]string{"WABOT_ADDR": addr, "WABOT_BASE_URL": "http://" + addr}
	maps.Copy(vals, vars)
	a := apptest.Start(t, apptest.Options{Env: vals, NoFake: true})
	return a.App, "http://" + addr
}

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("Chromium is not installed: apt-get install chromium (.ci/run does)")
	return ""
}

// newBrowser starts headless Chromium with the flags this workplace
// needs; each call is a separate browser (separate cookies).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return startBrowser(t)
}

// startBrowser is newBrowser with more options (a language, say).
func startBrowser(t *testing.T, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}, more...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		if t.Failed() {
			screenshot(ctx, t, "failure")
		}
		cancelC()
		cancelA()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// screenshot keeps a full-page PNG under testdata/screenshots/ (ignored by
// git) for the developer.
func screenshot(ctx context.Context, t *testing.T, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := filepath.Join("testdata", "screenshots")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.png", t.Name(), name))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// run runs steps with a time limit; val runs one step and returns its
// value.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func val[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type css = chromedp.CSS

func TestBrowserLinkChatBotAndAdmin(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "manual"})
	st := a.Store()
	ctx := newBrowser(t)

	// Sign in with a one-time link and create the workspace.
	token, _ := st.CreateLoginLink(context.Background(), "shop@example.com", false)
	run(t, ctx,
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="create-tenant"]`)),
		chromedp.SendKeys(css(`#name`), "Corner Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="link-panel"]`)),
	)
	u, _ := st.UserByEmail(context.Background(), "shop@example.com")
	tenantID := u.TenantID

	// The QR image came in the page itself and the browser decoded it.
	run(t, ctx, chromedp.WaitVisible(css(`[data-testid="qr-image"]`)))
	natural := val(t, ctx, chromedp.Poll[int](`document.querySelector('[data-testid="qr-image"]').naturalWidth`, chromedp.WithPollingTimeout(20*time.Second)))
	if natural < 300 {
		t.Fatalf("QR image naturalWidth %d", natural)
	}
	screenshot(ctx, t, "link-qr-ready")

	// Simulate the scan: "Connected" appears without a navigation.
	val(t, ctx, chromedp.Evaluate[bool](`window.__stay = "same page"; true`))
	run(t, ctx,
		chromedp.Click(css(`[data-testid="simulate-scan"]`)),
		chromedp.WaitVisible(css(`[data-testid="connected"]`)),
	)
	marker := val(t, ctx, chromedp.Evaluate[string](`window.__stay || ""`))
	if marker != "same page" {
		t.Fatal("the page navigated instead of updating live")
	}
	number := val(t, ctx, chromedp.Text(css(`[data-testid="linked-number"]`)))
	if !strings.HasPrefix(number, "+1555") {
		t.Fatalf("linked number %q", number)
	}
	screenshot(ctx, t, "link-connected")

	// A contact writes; while the workspace awaits approval, the message
	// shows on the logs page without its text, and the page says why.
	contactWrites := func(text string) {
		t.Helper()
		sent := val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/messages", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({from: "+15550002222", name: "Ann", text: %q})}).then(r => String(r.status))`, tenantID, text), chromedp.EvalAwaitPromise))
		if sent != "202" {
			t.Fatalf("contact message: %s", sent)
		}
	}
	logsShow := func(what string, cond func(body string) bool) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			run(t, ctx, chromedp.Navigate(base+"/app/logs"))
			body := val(t, ctx, chromedp.OuterHTML(css(`main`)))
			if cond(body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("the logs page never showed %s:\n%s", what, body)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	contactWrites("Do you deliver on Sundays?")
	body := logsShow("the message", func(body string) bool { return strings.Contains(body, `data-testid="message-row"`) })
	if strings.Contains(body, "Sundays") || !strings.Contains(body, `data-testid="bodies-withheld"`) {
		t.Fatalf("a pending workspace's logs page:\n%s", body)
	}

	// A rule with a broken regex is refused beside its field; nothing saved.
	run(t, ctx,
		chromedp.Navigate(base+"/app/bot"),
		chromedp.Click(css(`[data-testid="add-rule"]`)),
		chromedp.WaitVisible(css(`#rule-pattern-0`)),
		chromedp.SetValue(css(`#rule-match-0`), "regex"),
		chromedp.SendKeys(css(`#rule-pattern-0`), "deliver(y"),
		chromedp.SendKeys(css(`#rule-reply-0`), "We deliver every day."),
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="error-rules[0].pattern"]`)),
	)
	fieldErr := val(t, ctx, chromedp.Text(css(`[data-testid="error-rules[0].pattern"]`)))
	if !strings.Contains(fieldErr, "regular expression") {
		t.Fatalf("field error %q", fieldErr)
	}
	cfg, _ := st.BotConfigOf(context.Background(), tenantID)
	if len(cfg.Rules) != 0 {
		t.Fatal("an invalid configuration was saved")
	}
	// Fixed, it saves.
	run(t, ctx,
		chromedp.SetValue(css(`#rule-pattern-0`), "deliver(y)?"),
		chromedp.Click(css(`[data-testid="save-bot"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	if cfg, _ := st.BotConfigOf(context.Background(), tenantID); len(cfg.Rules) != 1 || cfg.Rules[0].Pattern != "deliver(y)?" {
		t.Fatalf("saved rules %+v", cfg.Rules)
	}

	// An admin, in another browser, approves the pending workspace.
	admin := newBrowser(t)
	adminToken, _ := st.CreateLoginLink(context.Background(), "root@example.com", true)
	run(t, admin,
		chromedp.Navigate(base+"/auth/link?token="+adminToken),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="admin-tenants"]`)),
	)
	screenshot(admin, t, "admin")
	run(t, admin,
		chromedp.Click(css(`tr[data-tenant="`+tenantID+`"] [data-testid="action-approve"]`)),
		chromedp.WaitVisible(css(`[data-testid="confirm"]`)),
		chromedp.Click(css(`[data-testid="confirm-button"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"]`)),
	)
	status := val(t, admin, chromedp.Text(css(`tr[data-tenant="`+tenantID+`"] [data-testid="admin-status"]`)))
	if status != "ACTIVE" {
		t.Fatalf("after approval the admin page shows %q", status)
	}

	// Approved, the next message shows with its text.
	contactWrites("And on Mondays?")
	logsShow("the message's text", func(body string) bool { return strings.Contains(body, "And on Mondays?") })
}

func TestBrowserUsableAt390px(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	ctx := newBrowser(t)
	token, _ := a.Store().CreateLoginLink(context.Background(), "phone@example.com", true)
	run(t, ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="who"]`)),
		chromedp.Navigate(base+"/app"),
		chromedp.WaitVisible(css(`#name`)),
		chromedp.SendKeys(css(`#name`), "Tiny Screen Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="link-panel"]`)),
	)
	for _, page := range []string{"/app", "/app/link", "/app/logs", "/app/bot", "/app/settings/keys", "/app/settings/webhooks", "/admin", "/admin/keys", "/docs/api"} {
		run(t, ctx, chromedp.Navigate(base+page), chromedp.WaitVisible(css(`main`)))
		overflow := val(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		navVisible := val(t, ctx, chromedp.Evaluate[bool](`(() => { const r = document.querySelector('header nav').getBoundingClientRect(); return r.width > 0 && r.right <= window.innerWidth + 1; })()`))
		if overflow || !navVisible {
			screenshot(ctx, t, strings.ReplaceAll(strings.Trim(page, "/"), "/", "-"))
			t.Errorf("%s at 390 px: horizontal overflow %v, navigation visible %v", page, overflow, navVisible)
		}
		if os.Getenv("WABOT_SCREENSHOTS") != "" {
			screenshot(ctx, t, strings.ReplaceAll(strings.Trim(page, "/"), "/", "-"))
		}
	}
	screenshot(ctx, t, "dashboard-390")
}

// TestBrowserLogShowsMedia: a contact's photo in the log is a thumbnail
// the browser really loads (through the portal's CSP, from /app/media),
// beside a voice note's player, a document and a location, and the log
// still fits a 390 px phone.
func TestBrowserLogShowsMedia(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	ctx := newBrowser(t)
	token, _ := a.Store().CreateLoginLink(context.Background(), "photos@example.com", false)
	run(t, ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`#name`)),
		chromedp.SendKeys(css(`#name`), "Photo Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="link-panel"]`)),
	)
	u, _ := a.Store().UserByEmail(context.Background(), "photos@example.com")
	// The photo comes the whole way: the simulated phone links, a contact
	// sends it through the fake WhatsApp, wabot downloads and stores it.
	run(t, ctx,
		chromedp.Click(css(`[data-testid="simulate-scan"]`)),
		chromedp.WaitVisible(css(`[data-testid="connected"]`)),
	)
	sent := val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/media", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({from: "+15550002222", name: "Ann", kind: "image", mime: "image/jpeg", caption: "The box arrived broken", data: %q})}).then(r => String(r.status))`,
		u.TenantID, base64.StdEncoding.EncodeToString(testPNG(t, 1200, 900))), chromedp.EvalAwaitPromise))
	if sent != "202" {
		t.Fatalf("the contact's photo: %s", sent)
	}
	var photo int64
	rigtest.WaitFor(t, 30*time.Second, "the photo stored", func() bool {
		ms, _, err := a.Store().Messages(context.Background(), u.TenantID, tenant.MessageQuery{})
		for _, m := range ms {
			if err == nil && m.Kind == "image" {
				md, err := a.Store().MessageMediaOf(context.Background(), u.TenantID, m.ID)
				photo = m.ID
				return err == nil && md.Status == tenant.MediaStored
			}
		}
		return false
	})
	logMedia(t, a, u.TenantID, "", tenant.MessageMedia{Kind: tenant.MediaVoice, MIME: "audio/ogg; codecs=opus"},
		append([]byte("OggS\x00\x02"), append(make([]byte, 22), []byte("OpusHead")...)...))
	logMedia(t, a, u.TenantID, "", tenant.MessageMedia{Kind: tenant.MediaDocument, MIME: "application/pdf",
		FileName: "a-very-long-invoice-file-name-that-must-wrap-on-a-phone-2025-03-01.pdf"}, []byte("%PDF-1.4\n"))
	logMedia(t, a, u.TenantID, "", tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 52.52, Longitude: 13.405, PlaceName: "Depot"}, nil)

	for _, path := range []string{"/app/logs", "/app/logs/" + strconv.FormatInt(photo, 10), "/app"} {
		img := `document.querySelector('img[data-testid="media-image"]')`
		run(t, ctx,
			chromedp.Navigate(base+path),
			chromedp.WaitVisible(css(`img[data-testid="media-image"]`)),
			chromedp.ScrollIntoView(css(`img[data-testid="media-image"]`)),
		)
		natural := val(t, ctx, chromedp.Poll[int](img+`.complete ? `+img+`.naturalWidth : 0`, chromedp.WithPollingTimeout(20*time.Second)))
		if natural != 1200 {
			t.Fatalf("%s: the photo's naturalWidth is %d, want 1200", path, natural)
		}
		shown := val(t, ctx, chromedp.Evaluate[float64](img+`.getBoundingClientRect().width`))
		overflow := val(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if shown <= 0 || shown > 390 || overflow {
			screenshot(ctx, t, "media-"+strings.ReplaceAll(strings.Trim(path, "/"), "/", "-"))
			t.Fatalf("%s at 390 px: photo %.0f px wide, horizontal overflow %v", path, shown, overflow)
		}
	}
	run(t, ctx, chromedp.Navigate(base+"/app/logs"), chromedp.WaitVisible(css(`audio[data-testid="media-audio"]`)),
		chromedp.WaitVisible(css(`a[data-testid="media-map"]`)))
	screenshot(ctx, t, "logs-media-390")
}

// TestBrowserInboxLiveAndReply: on a 390 px phone, a contact's message
// appears in the chats list and then in the open thread without a
// reload; the reply typed in the box reaches the contact through the
// fake WhatsApp; list and thread are two views that fit the screen.
func TestBrowserInboxLiveAndReply(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_SEND_PACING": "false"})
	ctx := newBrowser(t)
	token, _ := a.Store().CreateLoginLink(context.Background(), "inbox@example.com", false)
	run(t, ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`#name`)),
		chromedp.SendKeys(css(`#name`), "Inbox Shop"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="simulate-scan"]`)),
		chromedp.Click(css(`[data-testid="simulate-scan"]`)),
		chromedp.WaitVisible(css(`[data-testid="connected"]`)),
	)
	u, _ := a.Store().UserByEmail(context.Background(), "inbox@example.com")
	contactWrites := func(text string) {
		t.Helper()
		sent := val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/messages", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({from: "+15550003333", name: "Bea", text: %q})}).then(r => String(r.status))`, u.TenantID, text), chromedp.EvalAwaitPromise))
		if sent != "202" {
			t.Fatalf("contact message: %s", sent)
		}
	}
	fits := func(what string) {
		t.Helper()
		if val(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
			screenshot(ctx, t, what)
			t.Fatalf("%s at 390 px overflows sideways", what)
		}
	}

	// The list is open when the first message comes: it appears there live.
	run(t, ctx, chromedp.Navigate(base+"/app/chats"), chromedp.WaitVisible(css(`[data-testid="chats-empty"]`)))
	val(t, ctx, chromedp.Evaluate[bool](`window.__stay = "same page"; true`))
	contactWrites("Hi, are you open today?")
	run(t, ctx, chromedp.WaitVisible(css(`[data-testid="chat-row"][data-chat="15550003333@s.whatsapp.net"]`)))
	if got := val(t, ctx, chromedp.Evaluate[string](`window.__stay || ""`)); got != "same page" {
		t.Fatal("the list reloaded instead of updating live")
	}
	if title := val(t, ctx, chromedp.Evaluate[string](`document.title`)); !strings.HasPrefix(title, "(1) Chats") {
		t.Fatalf("title %q, want the unread count", title)
	}
	fits("chats")
	screenshot(ctx, t, "inbox-list-390")

	// Open the chat: on a phone the thread replaces the list.
	href := val(t, ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="chat-row"]').href`))
	run(t, ctx, chromedp.Navigate(href), chromedp.WaitVisible(css(`[data-testid="reply-text"]`)))
	if val(t, ctx, chromedp.Evaluate[bool](`document.querySelector('.inbox-list').getBoundingClientRect().width > 0`)) {
		t.Fatal("at 390 px the list still shows beside the thread")
	}
	fits("thread")
	val(t, ctx, chromedp.Evaluate[bool](`window.__stay = "same page"; true`))
	contactWrites("I need two loaves.")
	hasBubble := func(dir, text string) string {
		return fmt.Sprintf(`Array.from(document.querySelectorAll('[data-testid="bubble"][data-direction=%q] [data-testid="bubble-body"]')).some(b => b.textContent.includes(%q))`, dir, text)
	}
	val(t, ctx, chromedp.Poll[bool](hasBubble("in", "I need two loaves."), chromedp.WithPollingTimeout(30*time.Second)))
	if got := val(t, ctx, chromedp.Evaluate[string](`window.__stay || ""`)); got != "same page" {
		t.Fatal("the thread reloaded instead of updating live")
	}

	// The reply goes out from the box and reaches the contact.
	run(t, ctx,
		chromedp.SendKeys(css(`[data-testid="reply-text"]`), "Yes, until 6 pm. Two loaves are set aside."),
		chromedp.Click(css(`[data-testid="reply-send"]`)),
	)
	// The form posts and the browser follows the redirect to the thread.
	rigtest.WaitFor(t, 30*time.Second, "the reply in the thread", func() bool {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(wctx, chromedp.Evaluate[bool](hasBubble("out", "Two loaves are set aside.")))
		return err == nil && ok
	})
	by := val(t, ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('[data-testid="bubble"][data-direction="out"]'))
		.filter(b => b.textContent.includes("Two loaves are set aside.")).map(b => b.querySelector('[data-testid="bubble-by"]').textContent).join()`))
	if by != "inbox@example.com" {
		t.Fatalf("the reply's author shows as %q", by)
	}
	val(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/outbox").then(r => r.json()).then(o => (o.messages || []).filter(m => m.text.includes("Two loaves are set aside.")).length === 1)`, u.TenantID),
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(300*time.Millisecond)))
	fits("thread after the reply")
	screenshot(ctx, t, "inbox-thread-390")

	// A quick reply, inserted by typing "/" and its start, is sent while
	// the connection is cut: it reaches the contact once, after the
	// reconnect.
	run(t, ctx,
		chromedp.Navigate(base+"/app/settings/quick-replies"),
		chromedp.SendKeys(css(`#qr-shortcut`), "hours"),
		chromedp.SendKeys(css(`#qr-body`), "We bake from 7 am to 6 pm."),
		chromedp.Click(css(`[data-testid="quick-save"]`)),
		chromedp.WaitVisible(css(`[data-testid="quick-row"]`)),
		chromedp.Navigate(href),
		chromedp.WaitVisible(css(`[data-testid="reply-text"]`)),
		chromedp.SendKeys(css(`[data-testid="reply-text"]`), "Hours: /ho"),
		chromedp.WaitVisible(css(`[data-testid="quick-suggest"] li`)),
		chromedp.SendKeys(css(`[data-testid="reply-text"]`), "\t"), // Tab takes the first offer
	)
	if got := val(t, ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="reply-text"]').value`)); got != "Hours: We bake from 7 am to 6 pm." {
		t.Fatalf("after choosing the quick reply the box holds %q", got)
	}
	dropped := val(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/drop", {method: "POST"}).then(r => String(r.status))`, u.TenantID), chromedp.EvalAwaitPromise))
	if dropped != "204" {
		t.Fatalf("drop: %s", dropped)
	}
	run(t, ctx, chromedp.Click(css(`[data-testid="reply-send"]`)))
	// The browser follows the post to the thread meanwhile: each check
	// runs on whichever page is there.
	rigtest.WaitFor(t, 45*time.Second, "the quick reply in the contact's outbox", func() bool {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(wctx, chromedp.Evaluate[bool](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/outbox").then(r => r.json())
			.then(o => (o.messages || []).filter(m => m.text === "Hours: We bake from 7 am to 6 pm.").length === 1)`, u.TenantID), chromedp.EvalAwaitPromise))
		return err == nil && ok
	})
	// Once, even after the redirect's page re-read and a while longer.
	run(t, ctx, chromedp.Navigate(href), chromedp.WaitVisible(css(`[data-testid="reply-text"]`)))
	n := val(t, ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch("/dev/fake/tenants/%s/outbox").then(r => r.json())
		.then(o => (o.messages || []).filter(m => m.text.startsWith("Hours:") || m.text.includes("Two loaves")).length)`, u.TenantID), chromedp.EvalAwaitPromise))
	if n != 2 {
		t.Fatalf("the contact got %d of the 2 replies", n)
	}
}
