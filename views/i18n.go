package views

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
)

// The portal's words live in locales/active.<lang>.toml, one file per
// language, so a translator edits text, not Go. English is the source:
// every id in code has its English text there first.
//
//go:embed locales/*.toml
var localeFiles embed.FS

// LocaleFS is the message files, for checks that compare them with the code.
func LocaleFS() fs.FS { sub, _ := fs.Sub(localeFiles, "locales"); return sub }

// Language is one language the portal speaks, named in itself for the menu.
type Language struct {
	Code string // BCP 47: "en", "pt-BR"
	Name string // "Português (Brasil)"
}

// Languages lists what the portal speaks, English (the source) first.
var Languages = []Language{
	{"en", "English"},
	{"pt-BR", "Português (Brasil)"},
	{"es", "Español"},
	{"id", "Bahasa Indonesia"},
	{"hi", "हिन्दी"},
}

var (
	bundleOnce sync.Once
	bundle     *i18n.Bundle
	matcher    language.Matcher
	tags       []language.Tag
)

// loadBundle parses the embedded files once; a broken file is a build
// mistake, which the tests catch, so it panics.
func loadBundle() *i18n.Bundle {
	bundleOnce.Do(func() {
		b := i18n.NewBundle(language.English)
		b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
		for _, l := range Languages {
			name := "locales/active." + l.Code + ".toml"
			if _, err := b.LoadMessageFileFS(localeFiles, name); err != nil {
				panic(fmt.Sprintf("views: %s: %v", name, err))
			}
			tags = append(tags, language.MustParse(l.Code))
		}
		matcher = language.NewMatcher(tags)
		bundle = b
	})
	return bundle
}

// Supported reports whether code is one of Languages, exactly.
func Supported(code string) bool {
	for _, l := range Languages {
		if l.Code == code {
			return true
		}
	}
	return false
}

// Negotiate picks the language for an Accept-Language header: the best of
// Languages, English when nothing fits. Portuguese from Portugal gets
// Brazil's, Spanish from Mexico gets Spanish.
func Negotiate(accept string) string {
	loadBundle()
	prefs, _, err := language.ParseAcceptLanguage(accept)
	if err != nil || len(prefs) == 0 {
		return "en"
	}
	_, i, conf := matcher.Match(prefs...)
	if conf == language.No {
		return "en"
	}
	return Languages[i].Code
}

// Locale speaks one language: messages, plurals, numbers and dates.
type Locale struct {
	code string
	loc  *i18n.Localizer
	en   *i18n.Localizer
	num  *message.Printer
}

var (
	localesMu sync.Mutex
	locales   = map[string]*Locale{}
)

// NewLocale returns the locale for a code of Languages (English for any
// other). Locales are kept: they hold no request state.
func NewLocale(code string) *Locale {
	if !Supported(code) {
		code = "en"
	}
	localesMu.Lock()
	defer localesMu.Unlock()
	if l, ok := locales[code]; ok {
		return l
	}
	b := loadBundle()
	l := &Locale{code: code, loc: i18n.NewLocalizer(b, code), en: i18n.NewLocalizer(b, "en"),
		num: message.NewPrinter(language.MustParse(code))}
	locales[code] = l
	return l
}

// Code is the locale's BCP 47 code, for <html lang>.
func (l *Locale) Code() string { return l.code }

func pairs(kv []any) map[string]any {
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]any, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return m
}

// T is the message id in the locale's language; kv are the template's
// fields as name, value pairs ("Name", "Ana"). A message missing from a
// translation falls back to English, and a missing id shows itself (the
// tests keep both from happening).
func (l *Locale) T(id string, kv ...any) string {
	return l.localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: pairs(kv)})
}

// N is the message id in the plural form count takes in the locale's
// language; the template sees count as {{.Count}}, written as the locale
// writes numbers.
func (l *Locale) N(id string, count int, kv ...any) string {
	data := pairs(kv)
	if data == nil {
		data = map[string]any{}
	}
	data["Count"] = l.Int(count)
	return l.localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: count, TemplateData: data})
}

func (l *Locale) localize(lc *i18n.LocalizeConfig) string {
	if s, err := l.loc.Localize(lc); err == nil {
		return s
	}
	if s, err := l.en.Localize(lc); err == nil {
		return s
	}
	return lc.MessageID
}

// Int writes n as the locale groups digits: 12,345 or 12.345.
func (l *Locale) Int(n int) string { return l.num.Sprintf("%d", n) }

// Decimal writes f with the given decimals in the locale's way: 1.5 or 1,5.
func (l *Locale) Decimal(f float64, decimals int) string {
	return l.num.Sprint(number.Decimal(f, number.Scale(decimals)))
}

// DateTime writes t (in UTC) as the locale writes a date and time; the
// layout is a message, so a translator sets the order.
func (l *Locale) DateTime(t time.Time) string {
	return t.UTC().Format(l.T("LayoutDateTime"))
}

// DateTimeSeconds writes t (in UTC) as a date and a time with seconds.
func (l *Locale) DateTimeSeconds(t time.Time) string {
	return t.UTC().Format(l.T("LayoutDateTimeSeconds"))
}

// DayTime writes t (in UTC) as a day of this year and a time.
func (l *Locale) DayTime(t time.Time) string { return t.UTC().Format(l.T("LayoutDayTime")) }

// Day writes t (in UTC) as a day of this year.
func (l *Locale) Day(t time.Time) string { return t.UTC().Format(l.T("LayoutDay")) }

// Stamp writes t (in UTC) as a log's short date with seconds.
func (l *Locale) Stamp(t time.Time) string {
	return t.UTC().Format(l.T("LayoutStamp"))
}

// Ago says how long before now t was, in the largest unit that fits.
func (l *Locale) Ago(t, now time.Time) string {
	if t.IsZero() {
		return l.T("AgoNever")
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return l.T("AgoJustNow")
	case d < time.Minute:
		return l.N("AgoSeconds", int(d.Seconds()))
	case d < time.Hour:
		return l.N("AgoMinutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return l.N("AgoHours", int(d.Hours()))
	}
	return l.N("AgoDays", int(d.Hours()/24))
}

type localeKey struct{}

// WithLocale gives the components rendered under ctx their language.
func WithLocale(ctx context.Context, l *Locale) context.Context {
	return context.WithValue(ctx, localeKey{}, l)
}

// LocaleOf is ctx's locale, English when none was set.
func LocaleOf(ctx context.Context) *Locale {
	if l, ok := ctx.Value(localeKey{}).(*Locale); ok && l != nil {
		return l
	}
	return NewLocale("en")
}

// T is LocaleOf(ctx).T: a component's words.
func T(ctx context.Context, id string, kv ...any) string { return LocaleOf(ctx).T(id, kv...) }

// N is LocaleOf(ctx).N: a component's words that depend on a count.
func N(ctx context.Context, id string, count int, kv ...any) string {
	return LocaleOf(ctx).N(id, count, kv...)
}

// langOf is the <html lang> of ctx.
func langOf(ctx context.Context) string { return LocaleOf(ctx).Code() }

// BotDefaults are the bot's built-in replies in a language, for a new
// workspace's configuration (the busy and the hand-over reply).
func BotDefaults(lang string) (busy, handover string) {
	l := NewLocale(lang)
	return l.T("BotDefaultBusyReply"), l.T("BotDefaultHandoverReply")
}
