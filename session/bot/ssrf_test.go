package bot

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
)

// literalURL is a URL whose host is the address s.
func literalURL(a netip.Addr) string {
	if a.Is6() {
		return "http://[" + a.String() + "]/"
	}
	return "http://" + a.String() + "/"
}

// Every range of IANA's special-purpose registries is refused, mapped and
// NAT64 forms by the IPv4 address inside them; public addresses pass.
func TestWebhookAddressesOutsideThePublicInternetAreRefused(t *testing.T) {
	t.Parallel()
	blocked := []string{
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.100.100.200", "100.127.255.255",
		"127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255",
		"192.0.0.1", "192.0.0.170", "192.0.2.1", "192.31.196.1", "192.52.193.1", "192.88.99.1",
		"192.168.1.1", "192.175.48.1", "198.18.0.1", "198.19.255.255", "198.51.100.7",
		"203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "::10.0.0.1", "::8.8.8.8", "::ffff:127.0.0.1", "::ffff:100.100.100.200",
		"::ffff:0:8.8.8.8", "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::100.100.100.200",
		"64:ff9b:1::8.8.8.8", "100::1", "100:0:0:1::1", "2001::1", "2001:2::1", "2001:db8::1",
		"2002:0808:0808::1", "2002:7f00:1::1", "2620:4f:8000::1", "3fff::1", "5f00::1",
		"fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1", "4000::1",
	}
	// The save-time check reads a host as the resolver hands it over
	// (IPv4 in 16-byte form).
	b := New(Options{}, slog.New(slog.DiscardHandler), nil)
	ctx := context.Background()
	for _, s := range blocked {
		a := netip.MustParseAddr(s)
		if !nonPublic(a) {
			t.Errorf("%s is allowed", s)
		}
		if a.Zone() == "" && b.resolvesOnlyTo(ctx, literalURL(a), public(false)) {
			t.Errorf("%s is allowed in a URL", s)
		}
	}
	publics := []string{
		"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.0.1.1",
		"198.20.0.1", "223.255.255.254", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
		"2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
	}
	for _, s := range publics {
		a := netip.MustParseAddr(s)
		if nonPublic(a) {
			t.Errorf("%s is refused", s)
		}
		// The resolver hands IPv4 addresses over in 16-byte form.
		if !b.resolvesOnlyTo(ctx, literalURL(a), public(false)) {
			t.Errorf("%s is refused in a URL", s)
		}
	}
}
