package views_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"wabot/views"
)

// messageUse finds a message id in code: T(ctx, "Id"), l.T("Id"),
// N(ctx, "Id", n), loc(c).N("Id", n), and a row of a table of sentences,
// {regexp.MustCompile(`…`), "Id", …}. Ids are always literals, so this
// finds every one.
var messageUse = regexp.MustCompile(`\b[TN]\((?:[A-Za-z_][A-Za-z0-9_.()]*, )?"([A-Z][A-Za-z0-9]*)"|regexp\.MustCompile\(.*\), "([A-Z][A-Za-z0-9]*)"`)

// usedIDs is every message id the portal's code and templates use.
func usedIDs(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for _, pattern := range []string{"*.templ", "*.go", "../portal/*.go"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "_templ.go") {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range messageUse.FindAllStringSubmatch(string(raw), -1) {
				id := m[1] + m[2]
				used[id] = append(used[id], f)
			}
		}
	}
	if len(used) < 100 {
		t.Fatalf("found only %d message ids in the code: is the pattern still right?", len(used))
	}
	return used
}

// messages is one language file: id → text, or id → plural forms.
func messages(t *testing.T, code string) map[string]any {
	t.Helper()
	raw, err := fs.ReadFile(views.LocaleFS(), "active."+code+".toml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := toml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("active.%s.toml: %v", code, err)
	}
	return m
}

// Every id the code uses is in every language's file, and every id of
// every file is used: a new string cannot ship untranslated, and a
// removed one does not linger for translators.
func TestEveryMessageIDIsTranslatedAndUsed(t *testing.T) {
	used := usedIDs(t)
	for _, l := range views.Languages {
		file := messages(t, l.Code)
		var missing, unused []string
		for id, where := range used {
			if _, ok := file[id]; !ok {
				missing = append(missing, id+" ("+where[0]+")")
			}
		}
		for id := range file {
			if _, ok := used[id]; !ok {
				unused = append(unused, id)
			}
		}
		sort.Strings(missing)
		sort.Strings(unused)
		if len(missing) > 0 {
			t.Errorf("active.%s.toml lacks %d ids the code uses: %s", l.Code, len(missing), strings.Join(missing, ", "))
		}
		if len(unused) > 0 {
			t.Errorf("active.%s.toml has %d ids nothing uses: %s", l.Code, len(unused), strings.Join(unused, ", "))
		}
	}
}

var placeholder = regexp.MustCompile(`\{\{\s*\.([A-Za-z]+)\s*\}\}`)

func placeholders(v any) []string {
	var s []string
	switch v := v.(type) {
	case string:
		for _, m := range placeholder.FindAllStringSubmatch(v, -1) {
			s = append(s, m[1])
		}
	case map[string]any:
		for _, f := range v {
			s = append(s, placeholders(f)...)
		}
	}
	sort.Strings(s)
	return slices.Compact(s)
}

// A translation keeps the fields the English text fills in, is never
// empty, and a plural has the forms its language needs for any count.
func TestTranslationsAreComplete(t *testing.T) {
	en := messages(t, "en")
	for _, l := range views.Languages {
		file := messages(t, l.Code)
		loc := views.NewLocale(l.Code)
		for id, v := range file {
			if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
				t.Errorf("%s: %s is empty", l.Code, id)
			}
			if want, got := placeholders(en[id]), placeholders(v); !slices.Equal(want, got) {
				t.Errorf("%s: %s fills in %v, English fills in %v", l.Code, id, got, want)
			}
			if forms, ok := v.(map[string]any); ok {
				if _, ok := forms["other"]; !ok {
					t.Errorf("%s: %s has no other form", l.Code, id)
				}
				for _, n := range []int{0, 1, 2, 5, 21, 1000000} {
					if got := loc.N(id, n); got == id || strings.Contains(got, "<no value>") {
						t.Errorf("%s: %s for %d gives %q", l.Code, id, n, got)
					}
				}
			}
		}
	}
}

// Accept-Language picks the closest language the portal speaks.
func TestNegotiate(t *testing.T) {
	for accept, want := range map[string]string{
		"":                                 "en",
		"pt-BR,pt;q=0.9,en;q=0.8":          "pt-BR",
		"pt-PT":                            "pt-BR",
		"es-MX,es;q=0.9":                   "es",
		"id-ID":                            "id",
		"hi-IN,hi;q=0.9,en-IN;q=0.8":       "hi",
		"de-DE,fr;q=0.8":                   "en",
		"fr;q=0.9,es;q=0.8":                "es",
		"en-GB,en;q=0.9,pt-BR;q=0.5":       "en",
		"garbage;;;":                       "en",
		"zh-CN,zh;q=0.9,id;q=0.5,en;q=0.1": "id",
	} {
		if got := views.Negotiate(accept); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", accept, got, want)
		}
	}
}

// Relative times, sizes and numbers follow each language's rules.
func TestPluralsAndNumbers(t *testing.T) {
	en, pt, hi, id := views.NewLocale("en"), views.NewLocale("pt-BR"), views.NewLocale("hi"), views.NewLocale("id")
	for _, c := range []struct{ got, want string }{
		{en.N("AgoDays", 1), "1 day ago"},
		{en.N("AgoDays", 3), "3 days ago"},
		{pt.N("AgoDays", 1), "há 1 dia"},
		{pt.N("AgoDays", 3), "há 3 dias"},
		{id.N("AgoDays", 3), "3 hari lalu"},
		{hi.N("AgoSeconds", 12), "12 सेकंड पहले"},
		{en.N("SizeBytes", 1), "1 byte"},
		{en.Int(12345), "12,345"},
		{pt.Int(12345), "12.345"},
		{pt.Decimal(1.5, 1), "1,5"},
		{en.Decimal(1.5, 1), "1.5"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
