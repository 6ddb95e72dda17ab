package tenant

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRulesFirstMatchWinsIgnoringCase(t *testing.T) {
	cfg := BotConfig{Rules: []Rule{
		{Match: MatchExact, Pattern: "Hours", Reply: "9 to 5"},
		{Match: MatchPrefix, Pattern: "price", Reply: "see the list"},
		{Match: MatchContains, Pattern: "refund", Reply: "refunds: 14 days"},
		{Match: MatchRegex, Pattern: `order\s+#?(\d+)`, Reply: "looking up your order"},
		{Match: MatchContains, Pattern: "o", Reply: "catch-all o"},
	}}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rules, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ in, want string }{
		{"hours", "9 to 5"},
		{"  HOURS ", "9 to 5"},
		{"hours please", "catch-all o"},
		{"Price of tea", "see the list"},
		{"tea price today", "catch-all o"},
		{"I want a REFUND", "refunds: 14 days"},
		{"where is ORDER #42", "looking up your order"},
		{"xyz", ""},
	}
	for _, c := range cases {
		got, ok := rules.Match("text", c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// A rule narrowed to a kind answers only that kind, every such message
// when it has no pattern, or those whose caption matches; a rule for any
// message matches a media message's caption too.
func TestRulesMatchOnKindAndCaption(t *testing.T) {
	cfg := BotConfig{Rules: []Rule{
		{Kind: OnImage, Match: MatchContains, Pattern: "broken", Reply: "sorry about the damage"},
		{Kind: OnImage, Match: MatchContains, Reply: "thanks for the photo"},
		{Kind: "AUDIO ", Match: MatchContains, Reply: "we will listen"},
		{Match: MatchContains, Pattern: "price", Reply: "see the list"},
		{Kind: OnMedia, Match: MatchContains, Reply: "got your file"},
	}}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rules, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ kind, text, want string }{
		{"image", "it arrived BROKEN", "sorry about the damage"},
		{"image", "", "thanks for the photo"},
		{"image", "price?", "thanks for the photo"},
		{"voice", "", "we will listen"},
		{"audio", "", "we will listen"},
		{"document", "price list please", "see the list"},
		{"document", "invoice.pdf", "got your file"},
		{"location", "", "got your file"},
		{"text", "price", "see the list"},
		{"text", "hello", ""},
		{"reaction", "", ""},
	}
	for _, c := range cases {
		got, ok := rules.Match(c.kind, c.text)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Match(%s, %q) = %q, %v; want %q", c.kind, c.text, got, ok, c.want)
		}
	}

	bad := BotConfig{Rules: []Rule{{Kind: "gif", Match: MatchContains, Reply: "x"}, {Match: MatchContains, Reply: "y"}}}
	bad.Normalize()
	var ve *Error
	if err := bad.Validate(); !errors.As(err, &ve) || ve.Fields["rules[0].kind"] == "" || ve.Fields["rules[1].pattern"] == "" {
		t.Fatalf("an unknown kind and a rule without pattern or kind: %v", err)
	}
}

func TestFillIsPlainText(t *testing.T) {
	got := Fill("Hi {{name}} ({{phone}}), you said: {{text}}", "Ann", "+15550001111", "{{name}} {{.}}")
	if got != "Hi Ann (+15550001111), you said: {{name}} {{.}}" {
		t.Fatalf("got %q", got)
	}
	if Fill("Hi {{name}}", "", "+1555", "") != "Hi +1555" {
		t.Fatal("an empty name should fall back to the phone number")
	}
}

func TestValidateReportsEachField(t *testing.T) {
	cfg := BotConfig{
		Rules: []Rule{
			{Match: MatchRegex, Pattern: "(unclosed", Reply: "x"},
			{Match: "sounds-like", Pattern: "", Reply: ""},
		},
		Webhook: Webhook{URL: "ftp://example.com"},
		Limits:  Limits{QueuePerChat: 5000},
	}
	err := cfg.Validate()
	e, ok := err.(*Error)
	if !ok || e.Code != CodeInvalid {
		t.Fatalf("got %v", err)
	}
	for _, f := range []string{"rules[0].pattern", "rules[1].match", "rules[1].pattern", "rules[1].reply", "webhook.url", "limits.queue_per_chat"} {
		if e.Fields[f] == "" {
			t.Errorf("no error for %s in %v", f, e.Fields)
		}
	}
	if !strings.Contains(e.Fields["rules[0].pattern"], "regular expression") {
		t.Errorf("regex error %q should say what is wrong", e.Fields["rules[0].pattern"])
	}
}

// FuzzRulesAndFill: matching never panics, a matching plain rule always
// matches its own pattern in any case, and filling substitutes only the
// three placeholders.
func FuzzRulesAndFill(f *testing.F) {
	f.Add("hello", "contains", "HeLLo world", "Ann", "{{text}}!")
	f.Add("a.*b", "regex", "aXXb", "", "{{name}}{{phone}}")
	f.Add("ü", "prefix", "Ü", "Zoë", "{{{{name}}}}")
	f.Fuzz(func(t *testing.T, pattern, match, text, name, reply string) {
		cfg := BotConfig{Rules: []Rule{{Match: match, Pattern: pattern, Reply: "r"}}}
		cfg.Normalize()
		if cfg.Validate() != nil {
			return
		}
		rules, err := cfg.Compile()
		if err != nil {
			t.Fatalf("validated config does not compile: %v", err)
		}
		rules.Match("text", text)
		p := cfg.Rules[0].Pattern
		if cfg.Rules[0].Match != MatchRegex && utf8.ValidString(p) && strings.ToLower(p) == strings.ToLower(strings.ToUpper(p)) {
			if _, ok := rules.Match("text", strings.ToUpper(p)); !ok && strings.TrimSpace(strings.ToUpper(p)) == strings.ToUpper(p) {
				t.Fatalf("rule %s %q does not match its own pattern in upper case", cfg.Rules[0].Match, p)
			}
		}
		out := Fill(reply, name, "+1", text)
		if n := utf8.RuneCountInString(out); n > MaxReplyLength {
			t.Fatalf("Fill made a reply of %d characters", n)
		}
		if !strings.Contains(reply, "{{") && utf8.RuneCountInString(reply) <= MaxReplyLength && out != reply {
			t.Fatalf("Fill changed a reply without placeholders: %q -> %q", reply, out)
		}
	})
}

// evilPattern is the rule: 496 characters that compile to some
// 55,000 instructions, each of which a match walks for every byte.
var evilPattern = strings.Repeat(".{0,1000}", 55) + "Z"

func TestValidateRefusesCostlyRegex(t *testing.T) {
	cases := []struct{ name, pattern, want string }{
		{"the issue's rule", evilPattern, "Repeat counts"},
		{"nested repeats multiply", `(?:(?:ab){10}){11}`, "up to 110"},
		{"open-ended repeat", `x{101,}`, "up to 101"},
		{"program too large", strings.Repeat(`.{0,99}`, 6), "too complex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := BotConfig{Rules: []Rule{
				{Match: MatchContains, Pattern: "hi", Reply: "hello"},
				{Match: MatchRegex, Pattern: c.pattern, Reply: "x"},
			}, Limits: DefaultBotConfig().Limits}
			var e *Error
			if !errors.As(cfg.Validate(), &e) || e.Code != CodeInvalid {
				t.Fatalf("Validate accepted %q", c.pattern)
			}
			if got := e.Fields["rules[1].pattern"]; !strings.Contains(got, c.want) {
				t.Errorf("rules[1].pattern: %q, want it to say %q (all: %v)", got, c.want, e.Fields)
			}
			// A configuration stored before the budgets existed never runs
			// the rule either.
			if _, err := cfg.Compile(); err == nil || !strings.Contains(err.Error(), "rule 2") {
				t.Errorf("Compile: %v, want a refusal naming rule 2", err)
			}
		})
	}
}

func TestValidateAcceptsOrdinaryRegexes(t *testing.T) {
	cfg := BotConfig{Rules: []Rule{
		{Match: MatchRegex, Pattern: `^(hi|hello|hey)\b`, Reply: "x"},
		{Match: MatchRegex, Pattern: `order\s+#?(\d{1,10})`, Reply: "x"},
		{Match: MatchRegex, Pattern: strings.Repeat("a", MaxPatternLength), Reply: "x"},
		{Match: MatchRegex, Pattern: `\w{1,100}@\w{1,50}\.com`, Reply: "x"},
	}, Limits: DefaultBotConfig().Limits}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateRefusesRegexesOverTheTotalBudget(t *testing.T) {
	// Each rule is within its own budget (about 600 instructions); as many
	// as fit in the total are accepted, one more is not.
	one := strings.Repeat(`.{0,99}`, 3)
	size, problem := regexSize(one)
	if problem != "" || size > MaxRuleProgram {
		t.Fatalf("the test's rule compiles to %d instructions (%s): adjust it to the budget", size, problem)
	}
	fit := MaxRulesProgram / size
	cfg := BotConfig{Limits: DefaultBotConfig().Limits}
	for range fit + 1 {
		cfg.Rules = append(cfg.Rules, Rule{Match: MatchRegex, Pattern: one, Reply: "x"})
	}
	var e *Error
	if !errors.As(cfg.Validate(), &e) {
		t.Fatal("Validate accepted regexes over the total budget")
	}
	last := fmt.Sprintf("rules[%d].pattern", fit)
	if e.Fields[fmt.Sprintf("rules[%d].pattern", fit-1)] != "" || !strings.Contains(e.Fields[last], "together") || e.Fields["rules"] == "" {
		t.Errorf("want %s and the rules named, got %v", last, e.Fields)
	}
	if _, err := cfg.Compile(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("rule %d", fit+1)) {
		t.Errorf("Compile: %v, want a refusal naming rule %d", err, fit+1)
	}
	cfg.Rules = cfg.Rules[:fit]
	if err := cfg.Validate(); err != nil {
		t.Errorf("%d rules are within the budget: %v", fit, err)
	}
}

func TestRulesLookAtTheStartOfAMessageOnly(t *testing.T) {
	cfg := BotConfig{Rules: []Rule{
		{Match: MatchRegex, Pattern: `needle\d`, Reply: "regex"},
		{Match: MatchContains, Pattern: "haystack", Reply: "contains"},
		{Match: MatchExact, Pattern: "hello", Reply: "exact"},
	}, Limits: DefaultBotConfig().Limits}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rules, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	// "é" is two bytes: the window's edge falls inside one at odd offsets.
	filler := strings.Repeat("é", MatchWindow/2)
	cases := []struct{ text, want string }{
		{"needle1 " + filler, "regex"},
		{filler[:MatchWindow-20] + "needle2" + filler, "regex"},
		{filler + "needle3", ""},
		{filler[:MatchWindow-20] + "HAYSTACK" + filler, "contains"},
		{filler + "haystack", ""},
		{"hello", "exact"},
		{"hello" + strings.Repeat(" ", 2*MatchWindow), "exact"},
		{strings.Repeat(" ", 2*MatchWindow) + "hello", "exact"},
	}
	for i, c := range cases {
		if got, _ := rules.Match("text", c.text); got != c.want {
			t.Errorf("case %d (%d bytes): matched %q, want %q", i, len(c.text), got, c.want)
		}
	}
}

func TestFillCapsTheReply(t *testing.T) {
	text := strings.Repeat("abcdefgh", 1024) // 8 KB
	got := Fill(strings.Repeat("{{text}}", 512), "Ann", "+1555", text)
	if n := utf8.RuneCountInString(got); n > MaxReplyLength {
		t.Fatalf("the filled reply has %d characters, more than %d", n, MaxReplyLength)
	}
	if !strings.HasSuffix(got, "…") || !strings.HasPrefix(text, strings.TrimSuffix(got, "…")) {
		t.Errorf("want the start of the expansion ending in …, got …%q", got[len(got)-20:])
	}
	// Cut on a character, never inside one.
	got = Fill("{{text}}", "", "", strings.Repeat("€", 2*MaxReplyLength))
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) != MaxReplyLength {
		t.Errorf("a cut reply of %d characters, valid UTF-8: %v", utf8.RuneCountInString(got), utf8.ValidString(got))
	}
	if got := Fill("Hi {{name}}", "Ann", "", text); got != "Hi Ann" {
		t.Errorf("a short reply changed: %q", got)
	}
}

// BenchmarkWorstAcceptedRules matches the costliest configuration the
// budgets accept (every instruction live at every byte) against a 64 KB
// message that none of its rules matches: the time per message is
// bounded by MatchWindow × MaxRulesProgram, whatever the message's size.
func BenchmarkWorstAcceptedRules(b *testing.B) {
	cfg := BotConfig{Limits: DefaultBotConfig().Limits}
	one := strings.Repeat(`.{0,99}`, 5) + "Z"
	size, _ := regexSize(one)
	for range MaxRulesProgram / size {
		cfg.Rules = append(cfg.Rules, Rule{Match: MatchRegex, Pattern: one, Reply: "x"})
	}
	if err := cfg.Validate(); err != nil {
		b.Fatalf("the worst configuration should be accepted: %v", err)
	}
	rules, err := cfg.Compile()
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("a", 64<<10)
	b.ResetTimer()
	for b.Loop() {
		if _, ok := rules.Match("text", text); ok {
			b.Fatal("matched")
		}
	}
}
