package tenant_test

import (
	"context"
	"strings"
	"testing"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// TestValidName: a name is one line of visible text; what could drive a
// terminal, reorder the text around it or hide characters is refused.
func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", "Acme Bakery", true},
		{"accents and punctuation", "Café Olé & Co. (Zürich)", true},
		{"other scripts", "مخبز العائلة · 家族のパン屋 · Пекарня", true},
		{"persian with zero-width non-joiner", "نان\u200cوایی", true},
		{"emoji sequence with joiner", "Family 👨\u200d👩\u200d👧 shop", true},
		{"emoji with variation selector", "Love ❤\ufe0f", true},
		{"NUL", "Acme\x00", false},
		{"ESC sequence", "Acme\x1b[2J", false},
		{"bell", "Acme\a", false},
		{"tab", "Acme\tBakery", false},
		{"line feed", "Acme\nBakery", false},
		{"carriage return", "Acme\rBakery", false},
		{"DEL", "Acme\x7f", false},
		{"C1 control (CSI)", "Acme\u009b2J", false},
		{"next line", "Acme\u0085Bakery", false},
		{"tabwriter escape byte", "Acme\xff", false},
		{"invalid UTF-8", "Acme\xc3\x28", false},
		{"truncated UTF-8", "Acme\xe2\x82", false},
		{"left-to-right mark", "Acme\u200e", false},
		{"right-to-left mark", "Acme\u200f", false},
		{"LRE", "Acme\u202a", false},
		{"RLE", "Acme\u202b", false},
		{"PDF", "Acme\u202c", false},
		{"LRO", "Acme\u202d", false},
		{"RLO", "Acme\u202egnp.exe", false},
		{"LRI", "Acme\u2066", false},
		{"RLI", "Acme\u2067", false},
		{"FSI", "Acme\u2068", false},
		{"PDI", "Acme\u2069", false},
		{"arabic letter mark", "Acme\u061c", false},
		{"zero-width space", "Ac\u200bme", false},
		{"word joiner", "Ac\u2060me", false},
		{"byte order mark", "\ufeffAcme", false},
		{"soft hyphen", "Ac\u00adme", false},
		{"tag character", "Acme\U000e0041", false},
		{"line separator", "Acme\u2028Bakery", false},
		{"paragraph separator", "Acme\u2029Bakery", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := tenant.ValidName(c.in); got != c.ok {
				t.Fatalf("ValidName(%q) = %v, want %v", c.in, got, c.ok)
			}
			_, err := tenant.ValidateTenantName(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("ValidateTenantName(%q): %v", c.in, err)
			}
			if err != nil {
				e, _ := err.(*tenant.Error)
				if e == nil || e.Code != tenant.CodeInvalid || !strings.Contains(e.Fields["name"], "control characters") {
					t.Fatalf("ValidateTenantName(%q): %#v, want an invalid-name error naming control characters", c.in, err)
				}
			}
		})
	}
}

// TestCleanName: a provider's display name is cleaned, not refused.
func TestCleanName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Ann Smith", "Ann Smith"},
		{"  Ann \t Smith\n", "Ann Smith"},
		{"Ann\u202eevil\u202c", "Annevil"},
		{"Ann\x1b[31mRed\x1b[0m", "Ann[31mRed[0m"},
		{"Ann\xff\xfe", "Ann"},
		{"Ann\u2028Smith", "Ann Smith"},
		{"Ann\u200bSmith", "AnnSmith"},
		{"نان\u200cوایی", "نان\u200cوایی"},
		{strings.Repeat("é", 300), strings.Repeat("é", 200)},
	}
	for _, c := range cases {
		if got := tenant.CleanName(c.in); got != c.want {
			t.Errorf("CleanName(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := tenant.CleanName(c.in); !tenant.ValidName(got) {
			t.Errorf("CleanName(%q) = %q is not a valid name", c.in, got)
		}
	}
}

// TestSignInCleansDisplayName: the name a sign-in provider sends is
// stored cleaned; the sign-in is not refused for it.
func TestSignInCleansDisplayName(t *testing.T) {
	st := tenanttest.Open(t)
	u, err := st.SignIn(context.Background(), tenant.Identity{Provider: "oidc", Subject: "s1", Email: "eve@example.com",
		Name: "Eve\u202e\x1b]0;pwned\a\xffAdmin"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "Eve]0;pwnedAdmin" {
		t.Fatalf("stored name %q", u.Name)
	}
}

// TestValidEmailRefusesControlCharacters: an email is shown like a name.
func TestValidEmailRefusesControlCharacters(t *testing.T) {
	for _, e := range []string{"ann\x1b[2J@example.com", "ann@exa\u202emple.com", "ann@example.com\xff"} {
		if tenant.ValidEmail(e) {
			t.Errorf("ValidEmail(%q) accepted", e)
		}
	}
	if !tenant.ValidEmail("ann@example.com") {
		t.Error("a plain email refused")
	}
}
