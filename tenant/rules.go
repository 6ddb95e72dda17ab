package tenant

import (
	"fmt"
	"io"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// Budgets of a configuration's regular expressions. RE2 never backtracks,
// but a match still costs the text's length times the compiled program's
// size, so the program is what is bounded, per rule and over all rules,
// and rules only ever see the start of a message.
const (
	// MaxRuleProgram is the most instructions one regex rule compiles to:
	// room for a 500-character literal or a few dozen alternatives.
	MaxRuleProgram = 1000
	// MaxRulesProgram is the most instructions all regex rules of one
	// configuration compile to together.
	MaxRulesProgram = 2000
	// MaxRuleRepeat is the largest counted repetition ({n,m}) a rule may
	// use, nested ones multiplied: each count copies the program.
	MaxRuleRepeat = 100
	// MatchWindow is how many bytes from the start of a message the rules
	// look at.
	MatchWindow = 2048
)

// CompiledRules is a configuration's rules ready to match, built once per
// saved configuration.
type CompiledRules struct {
	rules []compiledRule
}

type compiledRule struct {
	kind    string // "" or one of RuleKinds
	match   string
	pattern string // lower-cased for the plain kinds
	re      *regexp.Regexp
	reply   string
	attach  *RuleAttachment
}

// Compile prepares the rules. A configuration stored before the regex
// budgets existed may break them: it is refused here as well, so such a
// rule never runs.
func (c *BotConfig) Compile() (*CompiledRules, error) {
	out := &CompiledRules{}
	total := 0
	for i, r := range c.Rules {
		cr := compiledRule{kind: r.Kind, match: r.Match, pattern: strings.ToLower(r.Pattern), reply: r.Reply, attach: r.Attachment}
		if r.Match == MatchRegex && r.Pattern != "" {
			size, problem := regexSize(r.Pattern)
			if problem != "" {
				return nil, fmt.Errorf("rule %d: %s", i+1, problem)
			}
			if total += size; total > MaxRulesProgram {
				return nil, fmt.Errorf("rule %d: the regular expressions together compile to more than %d instructions", i+1, MaxRulesProgram)
			}
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

// regexSize parses a regex rule's pattern as Compile does and returns how
// many instructions its program has, or a sentence saying why it is
// refused. Counted repetitions are checked on the parse tree, before the
// program they would blow up is built.
func regexSize(pattern string) (int, string) {
	re, err := syntax.Parse("(?i)"+pattern, syntax.Perl)
	if err != nil {
		return 0, "Not a valid regular expression: " + regexMessage(err)
	}
	if n := repeatCount(re); n > MaxRuleRepeat {
		return 0, fmt.Sprintf("Repeat counts such as {n,m} may go up to %d, nested ones multiplied; this one goes up to %d.", MaxRuleRepeat, n)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, "Not a valid regular expression: " + regexMessage(err)
	}
	if n := len(prog.Inst); n > MaxRuleProgram {
		return n, fmt.Sprintf("This regular expression is too complex: it compiles to %d instructions, at most %d are allowed. Use fewer or shorter alternatives and repeats.", n, MaxRuleProgram)
	}
	return len(prog.Inst), ""
}

// repeatCount is the largest count of a counted repetition in re, nested
// counts multiplied ({2}{3} inside each other counts 6). It saturates
// instead of overflowing.
func repeatCount(re *syntax.Regexp) int {
	n := 1
	for _, sub := range re.Sub {
		n = max(n, repeatCount(sub))
	}
	if re.Op == syntax.OpRepeat {
		k := re.Max
		if k < 0 {
			k = re.Min // {n,}
		}
		n = min(n*max(k, 1), 1<<30)
	}
	return n
}

// Match returns the reply of the first rule that matches a message of
// kind (text, image, voice… as the log stores it) with text (its text or
// caption), ignoring case, and whether one matched. Only the first
// MatchWindow bytes are looked at: an exact rule never matches a longer
// message.
func (c *CompiledRules) Match(kind, text string) (string, bool) {
	reply, _, ok := c.MatchRule(kind, text)
	return reply, ok
}

// MatchRule is Match that also returns the matching rule's attachment
// (nil for none).
func (c *CompiledRules) MatchRule(kind, text string) (string, *RuleAttachment, bool) {
	i := c.MatchAt(kind, text)
	if i < 0 {
		return "", nil, false
	}
	return c.rules[i].reply, c.rules[i].attach, true
}

// MatchAt returns the index of the first rule that matches, as Match
// decides, or -1: a reply records which rule wrote it.
func (c *CompiledRules) MatchAt(kind, text string) int {
	head := cutUTF8(text, MatchWindow)
	trimmed := strings.TrimSpace(text)
	whole := len(trimmed) <= MatchWindow
	lower := strings.ToLower(cutUTF8(trimmed, MatchWindow))
	for i, r := range c.rules {
		if !KindMatches(r.kind, kind) {
			continue
		}
		if r.kind != "" && r.pattern == "" {
			return i // every message of the kind
		}
		var ok bool
		switch r.match {
		case MatchExact:
			ok = whole && lower == r.pattern
		case MatchContains:
			ok = strings.Contains(lower, r.pattern)
		case MatchPrefix:
			ok = strings.HasPrefix(lower, r.pattern)
		case MatchRegex:
			ok = r.re.MatchString(head)
		}
		if ok {
			return i
		}
	}
	return -1
}

// cutUTF8 returns s cut to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Back up over at most one character's continuation bytes, so invalid
	// UTF-8 cannot make the cut much shorter than n.
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// Fill substitutes {{name}}, {{phone}} and {{text}} in a reply, as plain
// text: the values are never parsed as a template themselves. The result
// is cut to MaxReplyLength characters, ending in "…" when cut: a template
// repeating {{text}} must not turn one long message into megabytes.
func Fill(reply, name, phone, text string) string {
	if name == "" {
		name = phone
	}
	// The expansion is written into a bounded buffer that refuses more, so
	// it stops early instead of building the whole text first.
	w := &cappedWriter{limit: MaxReplyLength * utf8.UTFMax}
	w.buf.Grow(min(len(reply)+len(text), w.limit))
	// One pass over the reply, without building a strings.Replacer per
	// message (its trie was most of a reply's allocations).
	for rest := reply; rest != "" && !w.full; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			w.WriteString(rest)
			break
		}
		w.WriteString(rest[:i])
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, "{{name}}"):
			w.WriteString(name)
			rest = rest[len("{{name}}"):]
		case strings.HasPrefix(rest, "{{phone}}"):
			w.WriteString(phone)
			rest = rest[len("{{phone}}"):]
		case strings.HasPrefix(rest, "{{text}}"):
			w.WriteString(text)
			rest = rest[len("{{text}}"):]
		default: // not a placeholder here; one may start at the next brace
			w.WriteString("{")
			rest = rest[1:]
		}
	}
	out := w.buf.String()
	if !w.full && utf8.RuneCountInString(out) <= MaxReplyLength {
		return out
	}
	i, n := 0, 0
	for i < len(out) && n < MaxReplyLength-1 {
		_, size := utf8.DecodeRuneInString(out[i:])
		i += size
		n++
	}
	return out[:i] + "…"
}

// cappedWriter keeps at most limit bytes and then fails every write.
type cappedWriter struct {
	buf   strings.Builder
	limit int
	full  bool
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if room := w.limit - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:room])
		w.full = true
		return room, io.ErrShortWrite
	}
	return w.buf.Write(p)
}

func (w *cappedWriter) WriteString(s string) (int, error) {
	if room := w.limit - w.buf.Len(); len(s) > room {
		w.buf.WriteString(s[:room])
		w.full = true
		return room, io.ErrShortWrite
	}
	return w.buf.WriteString(s)
}
