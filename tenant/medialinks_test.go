package tenant_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

// A link works for its message until it expires, survives a restart (the
// key is kept), and any change to it, or another installation's key,
// makes it unknown.
func TestMediaLinksSignedExpiringAndKept(t *testing.T) {
	dir := t.TempDir()
	links, err := tenant.OpenMediaLinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "media-links.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	now := time.Now()
	tid := "t" + strings.Repeat("a", 16)
	tok := links.Token(tid, 42, now.Add(time.Hour))

	again, err := tenant.OpenMediaLinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if gotT, gotID, err := again.Check(tok, now); err != nil || gotT != tid || gotID != 42 {
		t.Fatalf("after a restart: %q %d %v", gotT, gotID, err)
	}
	if _, _, err := again.Check(tok, now.Add(2*time.Hour)); !errors.Is(err, tenant.ErrMediaLinkExpired) {
		t.Fatalf("an expired link: %v", err)
	}
	forged := strings.Replace(tok, ".42.", ".43.", 1)
	other, _ := tenant.OpenMediaLinks(t.TempDir())
	for name, bad := range map[string]string{"another message": forged, "truncated": tok[:len(tok)-2], "empty": "",
		"path": "../../etc.1.2.x"} {
		if _, _, err := again.Check(bad, now); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	if _, _, err := other.Check(tok, now); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("another installation's key accepted the link: %v", err)
	}
}
