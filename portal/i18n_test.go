package portal_test

import (
	"context"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/PuerkitoBio/goquery"

	"wabot/tenant"
	"wabot/views"
)

// i18nPages are the pages a workspace owner sees, each checked in every
// language.
var i18nPages = []string{
	"/app", "/app/link", "/app/logs", "/app/bot", "/app/session/reset", "/app/session/logout",
	"/app/tenant/new", "/app/no-such-page", "/app/chats", "/app/chats/" + inboxChat, "/app/settings/quick-replies",
	"/app/settings/keys", "/app/settings/webhooks", "/app/settings/members", "/docs/api",
}

// words is what a page says: its text and the attributes people read
// (labels of icons, placeholders, image descriptions), whitespace folded.
// Code samples, machine codes (translate="no"), what is declared English
// (the API reference, made from the OpenAPI document) and what people
// typed (names, emails) are not words of the portal.
func words(t *testing.T, html string) map[string]bool {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatal(err)
	}
	doc.Find("code, pre, script, style, bdi, .mono, [data-testid=who], [data-testid=current-tenant], [data-testid=switch-tenant], [data-testid=language-menu], [translate=no], body [lang=en], input, textarea").Remove()
	out := map[string]bool{}
	add := func(s string) {
		s = strings.Join(strings.Fields(s), " ")
		s = strings.Trim(count.ReplaceAllString(s, ""), "←→↑↓…·:() ")
		if s != "" {
			out[s] = true
		}
	}
	doc.Find("body *").Each(func(_ int, s *goquery.Selection) {
		for _, n := range s.Nodes {
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == 1 { // text
					add(c.Data)
				}
			}
		}
		for _, a := range []string{"title", "placeholder", "aria-label", "alt"} {
			if v, ok := s.Attr(a); ok {
				add(v)
			}
		}
	})
	doc.Find("title").Each(func(_ int, s *goquery.Selection) { add(s.Text()) })
	return out
}

// count is a number in brackets after a label: "Error (3)".
var count = regexp.MustCompile(`\s*\([0-9.,]+\)`)

// englishWord is a string with an English word in it: what a translation
// must not leave behind. Numbers, arrows, brand names and codes are not.
var englishWord = regexp.MustCompile(`[A-Za-z]{2,}`)

// sameInBoth are words a language writes as English does (brand names,
// "URL", "Status" in Indonesian): the message files say so by giving the
// same text, so they are read from there.
func sameInBoth(t *testing.T, code string) map[string]bool {
	t.Helper()
	raw, err := fs.ReadFile(views.LocaleFS(), "active.en.toml")
	if err != nil {
		t.Fatal(err)
	}
	var ids map[string]any
	if err := toml.Unmarshal(raw, &ids); err != nil {
		t.Fatal(err)
	}
	en, other := views.NewLocale("en"), views.NewLocale(code)
	same := map[string]bool{"wabot": true, "WhatsApp": true}
	for id, v := range ids {
		if _, plural := v.(map[string]any); plural {
			for n := range 3 {
				if en.N(id, n) == other.N(id, n) {
					same[en.N(id, n)] = true
				}
			}
		} else if en.T(id) == other.T(id) {
			same[en.T(id)] = true
		}
	}
	return same
}

// Every page, in every language, says nothing in English that the
// language's file translates: a string left out of the message files, or
// a component that forgot to look one up, fails here.
func TestEveryPageIsTranslated(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, tid := e.tenantUser("loja@example.com", "Loja da Ana")
	msg := customerWrites(t, e, tid, inboxChat, "Carla", "Oi, tem pão de queijo?")
	pages := append(slices.Clone(i18nPages), "/app/logs/"+strconv.FormatInt(msg, 10))
	token, err := e.app.Store().CreateLoginLink(context.Background(), "visitor@example.com", false)
	if err != nil {
		t.Fatal(err)
	}
	visitor := e.browser() // signed out: the sign-in pages
	signedOut := map[string]bool{"/": true, "/auth/link?token=" + url.QueryEscape(token): true}
	for path := range signedOut {
		pages = append(pages, path)
	}
	root := e.browser() // an admin: the admin pages
	root.loginLink("root@example.com", true)
	adminPages := map[string]bool{"/admin": true, "/admin/keys": true, "/admin/tenants/" + tid + "/suspend": true}
	for path := range adminPages {
		pages = append(pages, path)
	}
	get := func(path, lang string) resp {
		b := b
		if signedOut[path] {
			b = visitor
		} else if adminPages[path] {
			b = root
		}
		r := b.do(http.MethodGet, path, nil, map[string]string{"Accept-Language": lang})
		if r.status >= 500 {
			t.Fatalf("%s in %s: %d", path, lang, r.status)
		}
		return r
	}
	// What the user typed and sizes ("1 GB") are not the portal's words.
	data := map[string]bool{"visitor@example.com": true, "loja@example.com": true, "root@example.com": true, "Loja da Ana": true, "1 GB": true, "Carla": true, "Oi, tem pão de queijo?": true, "Carla +15557770001": true}
	english := map[string]map[string]bool{}
	for _, path := range pages {
		english[path] = map[string]bool{}
		for w := range words(t, get(path, "en").body) {
			english[path][strings.TrimSuffix(w, " · wabot")] = true
		}
	}
	for _, l := range views.Languages[1:] {
		same := sameInBoth(t, l.Code)
		for _, path := range pages {
			r := get(path, l.Code)
			if !strings.Contains(r.body, `<html lang="`+l.Code+`"`) {
				t.Errorf("%s in %s: the page does not declare its language", path, l.Code)
			}
			var left []string
			for w := range words(t, r.body) {
				w = strings.TrimSuffix(w, " · wabot") // the page's title
				if english[path][w] && englishWord.MatchString(w) && !same[w] && !data[w] {
					left = append(left, w)
				}
			}
			sort.Strings(left)
			if len(left) > 0 {
				t.Errorf("%s in %s still says in English: %q", path, l.Code, left)
			}
		}
	}
}

// The header's menu changes the language and keeps it with the user:
// another browser of the same user, with another Accept-Language, gets it.
func TestLanguageChoiceIsStoredWithTheUser(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("tienda@example.com", "Tienda")
	r := b.postForm("/language", url.Values{"lang": {"es"}, "next": {"/app/link"}})
	if r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app/link") {
		t.Fatalf("choosing Spanish: %d at %s", r.status, r.url)
	}
	if !strings.Contains(r.body, `<html lang="es"`) || !strings.Contains(r.body, "Cómo vincular") {
		t.Fatalf("the link page after choosing Spanish is not in Spanish")
	}
	other := e.browser()
	other.loginLink("tienda@example.com", false)
	r = other.do(http.MethodGet, "/app/link", nil, map[string]string{"Accept-Language": "hi"})
	if !strings.Contains(r.body, `<html lang="es"`) {
		t.Fatalf("another browser of the same user is not in Spanish: %.300s", r.body)
	}
	if r := b.postForm("/language", url.Values{"lang": {"xx"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown language: %d", r.status)
	}
	// Only a path on this site is a place to go back to.
	r = b.postForm("/language", url.Values{"lang": {"en"}, "next": {"//evil.example/"}})
	if !strings.HasPrefix(r.url, e.url) {
		t.Fatalf("the menu redirected off the site: %s", r.url)
	}
}

// A workspace created by a Brazilian owner has its bot's built-in replies
// in Portuguese; one created in English keeps English.
func TestNewWorkspaceBotDefaultsFollowTheOwnersLanguage(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b := e.browser()
	b.loginLink("padaria@example.com", false)
	r := b.do(http.MethodPost, "/app/tenant", strings.NewReader(url.Values{"name": {"Padaria"}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "pt-BR,pt;q=0.9"})
	if r.status != http.StatusOK {
		t.Fatalf("creating the workspace: %d", r.status)
	}
	r = b.do(http.MethodGet, "/app/bot", nil, map[string]string{"Accept-Language": "en"})
	busy, _ := views.BotDefaults("pt-BR")
	if !strings.Contains(r.body, busy) {
		t.Fatalf("the new workspace's busy reply is not Portuguese: want %q", busy)
	}
	en, _ := e.tenantUser("shop@example.com", "Shop")
	r = en.get("/app/bot")
	if !strings.Contains(r.body, "We are catching up") {
		t.Fatalf("an English workspace's busy reply is not English")
	}
}

// The store's field errors reach the forms in the reader's language, with
// their numbers: the workspace's name, the bot's limits.
func TestFormErrorsAreTranslated(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, _ := e.tenantUser("erros@example.com", "Erros")
	post := func(path string, form url.Values, lang string) resp {
		return b.do(http.MethodPost, path, strings.NewReader(form.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": lang})
	}
	r := post("/app/tenant", url.Values{"name": {"  "}}, "es")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Escribe un nombre para el espacio de trabajo.") {
		t.Errorf("an empty workspace name in Spanish: %d, %s", r.status, between(r.body, `data-testid="error-name"`, "</p>"))
	}
	r = post("/app/bot", url.Values{"op": {"save"}, "queue_per_chat": {"5000"}, "enabled": {"1"}}, "pt-BR")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Escolha de 1 a 1000.") {
		t.Errorf("a queue too long in Portuguese: %d, %s", r.status, between(r.body, `data-testid="error-limits.queue_per_chat"`, "</p>"))
	}
	r = post("/app/bot", url.Values{"op": {"save"}, "queue_per_chat": {"5000"}, "enabled": {"1"}}, "en")
	if !strings.Contains(r.body, "Choose 1 to 1000.") {
		t.Errorf("the English field error changed: %s", between(r.body, `data-testid="error-limits.queue_per_chat"`, "</p>"))
	}
}

// between is what s has after from, up to to: a part of a page to show.
func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(after, to)
	return before
}

// An API client that sends Accept-Language gets a 422's sentences in that
// language; the codes and field names, which programs read, do not change,
// and a client that sends none keeps English.
func TestAPIValidationSentencesFollowAcceptLanguage(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, _ := e.tenantUser("api@example.com", "API Shop")
	key := owner.createKey("/app/settings/keys", "reader", "messages:read")
	program := e.browser()
	get := func(lang string) map[string]any {
		hdr := map[string]string{"Authorization": "Bearer " + key}
		if lang != "" {
			hdr["Accept-Language"] = lang
		}
		r := program.do(http.MethodGet, "/api/v1/messages?limit=500", nil, hdr)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("limit=500 (%s): %d %s", lang, r.status, r.body)
		}
		return r.json(t)["error"].(map[string]any)
	}
	es := get("es-MX,es;q=0.9")
	if es["code"] != "validation_failed" || es["message"] != "Un parámetro de la consulta no es válido." {
		t.Errorf("in Spanish: %v", es)
	}
	if f, _ := es["fields"].(map[string]any); f["limit"] != "Usa un número entero de 1 a 200." {
		t.Errorf("the limit's sentence in Spanish: %v", es["fields"])
	}
	en := get("")
	if en["message"] != "A query parameter is not valid." {
		t.Errorf("without Accept-Language: %v", en)
	}
	if f, _ := en["fields"].(map[string]any); f["limit"] != "Use a whole number from 1 to 200." {
		t.Errorf("the limit's sentence without Accept-Language: %v", en["fields"])
	}
}

// A session's error is explained in the reader's language, by its code,
// with the session's own English sentence kept under "technical details".
func TestSessionErrorIsExplainedInTheReadersLanguage(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, tid := e.tenantUser("banido@example.com", "Banido")
	ctx := context.Background()
	english := "WhatsApp has temporarily banned this number (101) for a while. Wait until then and press Restart; sending fewer unsolicited messages avoids bans."
	if err := e.app.Store().SaveLink(ctx, tenant.Link{TenantID: tid, State: tenant.StateError, ErrorCode: tenant.ProblemTemporaryBan, LastError: english}); err != nil {
		t.Fatal(err)
	}
	r := b.do(http.MethodGet, "/app/link", nil, map[string]string{"Accept-Language": "pt-BR"})
	if got := between(r.body, `data-testid="error-text">`, "<"); got != views.NewLocale("pt-BR").T("ProblemTemporaryBan") {
		t.Errorf("the error in Portuguese: %q", got)
	}
	if !strings.Contains(between(r.body, `data-testid="error-detail"`, "</details>"), "(101)") {
		t.Error("the session's own sentence is not kept as the details")
	}
	r = b.do(http.MethodGet, "/app/link", nil, map[string]string{"Accept-Language": "en"})
	if got := between(r.body, `data-testid="error-text">`, "<"); got != english {
		t.Errorf("the error in English: %q", got)
	}
}
