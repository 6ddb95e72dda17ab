package tenant

import (
	"regexp"
	"strings"
)

// CompiledRules is a configuration's rules ready to match, built once per
// saved configuration.
type CompiledRules struct {
	rules []compiledRule
}

type compiledRule struct {
	match   string
	pattern string // lower-cased for the plain kinds
	re      *regexp.Regexp
	reply   string
}

// Compile prepares the rules; the configuration must have passed Validate.
func (c *BotConfig) Compile() (*CompiledRules, error) {
	out := &CompiledRules{}
	for _, r := range c.Rules {
		cr := compiledRule{match: r.Match, pattern: strings.ToLower(r.Pattern), reply: r.Reply}
		if r.Match == MatchRegex {
			re, err := regexp.Compile("(?i)" + r.Pattern)
			if err != nil {
				return nil, err
			}
			cr.re = re
		}
		out.rules = append(out.rules, cr)
	}
	return out, nil
}

// Match returns the reply of the first rule that matches text, ignoring
// case, and whether one matched.
func (c *CompiledRules) Match(text string) (string, bool) {
	lower := strings.ToLower(strings.TrimSpace(text))
	for _, r := range c.rules {
		var ok bool
		switch r.match {
		case MatchExact:
			ok = lower == r.pattern
		case MatchContains:
			ok = strings.Contains(lower, r.pattern)
		case MatchPrefix:
			ok = strings.HasPrefix(lower, r.pattern)
		case MatchRegex:
			ok = r.re.MatchString(text)
		}
		if ok {
			return r.reply, true
		}
	}
	return "", false
}

// Fill substitutes {{name}}, {{phone}} and {{text}} in a reply, as plain
// text: the values are never parsed as a template themselves.
func Fill(reply, name, phone, text string) string {
	if name == "" {
		name = phone
	}
	return strings.NewReplacer("{{name}}", name, "{{phone}}", phone, "{{text}}", text).Replace(reply)
}
