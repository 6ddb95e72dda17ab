package tenant_test

import (
	"testing"

	"wabot/tenant"
)

// A linked id (…@lid) looks like digits but is no phone number: {{phone}},
// the webhook's "from" and the log must never show it as one.
func TestPhoneOfIsOnlyEverAPhoneNumber(t *testing.T) {
	for _, tc := range []struct{ jid, want string }{
		{"15550001111@s.whatsapp.net", "+15550001111"},
		{"15550001111:7@s.whatsapp.net", "+15550001111"},
		{"15550001111.0:7@s.whatsapp.net", "+15550001111"},
		{"123456789012345@lid", ""},
		{"123456789012345:3@lid", ""},
		{"120363000000000001@g.us", ""},
		{"status@broadcast", ""},
		{"@s.whatsapp.net", ""},
		{"15550001111", ""},
		{"", ""},
	} {
		if got := tenant.PhoneOf(tc.jid); got != tc.want {
			t.Errorf("PhoneOf(%q) = %q, want %q", tc.jid, got, tc.want)
		}
	}
}
