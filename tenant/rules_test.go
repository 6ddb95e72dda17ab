package tenant

import (
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
		got, ok := rules.Match(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
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
		rules.Match(text)
		p := cfg.Rules[0].Pattern
		if cfg.Rules[0].Match != MatchRegex && utf8.ValidString(p) && strings.ToLower(p) == strings.ToLower(strings.ToUpper(p)) {
			if _, ok := rules.Match(strings.ToUpper(p)); !ok && strings.TrimSpace(strings.ToUpper(p)) == strings.ToUpper(p) {
				t.Fatalf("rule %s %q does not match its own pattern in upper case", cfg.Rules[0].Match, p)
			}
		}
		out := Fill(reply, name, "+1", text)
		if !strings.Contains(reply, "{{") && out != reply {
			t.Fatalf("Fill changed a reply without placeholders: %q -> %q", reply, out)
		}
	})
}
