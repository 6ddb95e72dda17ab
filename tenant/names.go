package tenant

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names people give (a workspace's, later an API key's) are shown to
// others: on the admin page and in the operator's terminal. A name is one
// line of visible text, so it can neither drive a terminal (escape
// sequences, tabwriter's 0xff) nor reorder the text around it (bidi
// overrides and isolates) nor hide characters (zero-width ones).

// ValidName reports whether s may be stored as a name: valid UTF-8 with
// no character nameRuneOK refuses.
func ValidName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !nameRuneOK(r) {
			return false
		}
	}
	return true
}

// nameRuneOK refuses control characters (Unicode Cc: C0, DEL, C1),
// format characters (Cf: bidi marks, embeddings, overrides and isolates,
// zero-width space, word joiner, BOM, soft hyphen, tags) and the line and
// paragraph separators. Zero-width non-joiner and joiner are format
// characters too, but Persian and Indic spelling and emoji sequences need
// them, and they neither reorder nor hide text.
func nameRuneOK(r rune) bool {
	switch {
	case r == '\u200c' || r == '\u200d':
		return true
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp):
		return false
	}
	return true
}

// ValidateName trims a name a user typed and checks it: present, at most
// max characters, and ValidName. what names the thing in the messages
// ("workspace"). The error's "name" field is a sentence for the form.
func ValidateName(s string, max int, what string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", &Error{Code: CodeInvalid, Msg: "name is required", Fields: map[string]string{"name": "Enter a name for the " + what + "."}}
	case !ValidName(s):
		return "", &Error{Code: CodeInvalid, Msg: "name has control or invisible characters",
			Fields: map[string]string{"name": "Use one line of visible text: control characters, text-direction marks and zero-width characters are not allowed."}}
	case utf8.RuneCountInString(s) > max:
		return "", &Error{Code: CodeInvalid, Msg: "name is too long", Fields: map[string]string{"name": fmt.Sprintf("Use at most %d characters.", max)}}
	}
	return s, nil
}

// maxDisplayName bounds a name taken from a sign-in provider.
const maxDisplayName = 200

// CleanName makes a name that arrives from elsewhere (a sign-in
// provider's display name) safe to store, instead of refusing it: invalid
// bytes and refused characters are dropped, line breaks and tabs become
// spaces, runs of spaces one, and it is cut to a bounded length.
func CleanName(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case !nameRuneOK(r):
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxDisplayName {
		s = string([]rune(s)[:maxDisplayName])
	}
	return s
}
