//go:build fakewa

package portal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"wabot/views"
)

// newBrowserIn is newBrowser whose Chromium asks for pages in lang, as a
// phone set to that language does.
func newBrowserIn(t *testing.T, lang string) context.Context {
	t.Helper()
	return startBrowser(t, chromedp.Flag("lang", lang), chromedp.Flag("accept-lang", lang))
}

// A Brazilian owner's browser gets the portal in Portuguese from the first
// page, the link page included; the header's menu switches to each other
// language, the page says which (<html lang>), and at 390 px nothing
// overflows, Hindi's and the long Portuguese and Spanish labels included.
// A screenshot of the link page is kept per language.
func TestBrowserLanguages(t *testing.T) {
	a, base := demoEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	ctx := newBrowserIn(t, "pt-BR")
	token, _ := a.Store().CreateLoginLink(context.Background(), "padaria@example.com", false)
	run(t, ctx,
		chromedp.Navigate(base+"/auth/link?token="+token),
		chromedp.WaitVisible(css(`[data-testid="link-signin"]`)),
	)
	if got := val(t, ctx, chromedp.Text(css(`[data-testid="link-signin"]`))); !strings.Contains(got, "Entrar") {
		t.Fatalf("the sign-in button of a pt-BR browser says %q", got)
	}
	run(t, ctx,
		chromedp.Click(css(`[data-testid="link-signin"]`)),
		chromedp.WaitVisible(css(`[data-testid="who"]`)),
		chromedp.Navigate(base+"/app"),
		chromedp.WaitVisible(css(`#name`)),
		chromedp.SendKeys(css(`#name`), "Padaria Pão Quente"),
		chromedp.Click(css(`[data-testid="create-tenant-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="link-panel"]`)),
	)
	if got := val(t, ctx, chromedp.Text(css(`main h1`))); got != "Conectar o WhatsApp" {
		t.Fatalf("the link page's heading in pt-BR is %q", got)
	}
	if got := val(t, ctx, chromedp.Text(css(`#how-h`))); got != "Como conectar" {
		t.Fatalf("the link page's how-to in pt-BR is headed %q", got)
	}
	if got := val(t, ctx, chromedp.Text(css(`[data-testid="flash"]`))); !strings.Contains(got, "Espaço de trabalho criado") {
		t.Fatalf("the flash after creating the workspace is %q", got)
	}
	run(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, l := range views.Languages {
		// The menu is a form per language; a click sends it.
		run(t, ctx,
			chromedp.Navigate(base+"/app/link"),
			chromedp.WaitVisible(css(`[data-testid="language-menu"] summary`)),
			chromedp.Click(css(`[data-testid="language-menu"] summary`)),
		)
		if val(t, ctx, chromedp.Evaluate[string](`document.documentElement.lang`)) != l.Code {
			run(t, ctx, chromedp.Click(css(`[data-testid="lang-`+l.Code+`"]`)), chromedp.WaitVisible(css(`html[lang="`+l.Code+`"] [data-testid="link-panel"]`)))
		}
		if got := val(t, ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); got != l.Code {
			t.Fatalf("after choosing %s the page declares lang=%q", l.Code, got)
		}
		if got, want := val(t, ctx, chromedp.Text(css(`#how-h`))), views.NewLocale(l.Code).T("HowToLink"); got != want {
			t.Errorf("%s: the how-to is headed %q, want %q", l.Code, got, want)
		}
		for _, page := range []string{"/app", "/app/link", "/app/bot", "/app/logs"} {
			run(t, ctx, chromedp.Navigate(base+page), chromedp.WaitVisible(css(`main`)))
			overflow := val(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
			// A button wider than the screen, or text spilling out of one
			// (a visually hidden one, such as the Bot form's default Save,
			// is nobody's to see).
			spill := val(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('.button, button')].filter(b => { const r = b.getBoundingClientRect(); return r.width > 0 && !b.closest('.visually-hidden') && (r.right > window.innerWidth + 1 || b.scrollWidth > b.clientWidth + 1); }).map(b => b.textContent.trim()).join(' | ')`))
			if overflow || spill != "" {
				screenshot(ctx, t, l.Code+strings.ReplaceAll(page, "/", "-"))
				t.Errorf("%s %s at 390 px: horizontal overflow %v; buttons that spill: %q", l.Code, page, overflow, spill)
			}
		}
		run(t, ctx, chromedp.Navigate(base+"/app/link"), chromedp.WaitVisible(css(`[data-testid="link-panel"]`)))
		screenshot(ctx, t, "link-"+l.Code)
	}
}
