package session

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// Under a umask of 022, as when wabot is run by hand, a tenant's device
// store (the keys that act as its linked device) is still readable by
// wabot's user only: the folder 0700, the database and its WAL files
// 0600. A store an older version left readable is closed too.
//
// Not parallel: the umask is the process's.
func TestDeviceStoresArePrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)

	r := newRigOn(t, tenant.SQLite, fakewa.Options{}, nil) // files exist only with SQLite
	fresh, legacy := r.newTenant("Fresh"), r.newTenant("Legacy")
	legacyDir := filepath.Join(r.cfg.SessionsDir, legacy)
	if err := os.MkdirAll(legacyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacyDir, "whatsmeow.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	for _, id := range []string{fresh, legacy} {
		r.link(id)
		dir := filepath.Join(r.cfg.SessionsDir, id)
		want := map[string]fs.FileMode{dir: 0o700, filepath.Join(dir, "whatsmeow.db"): 0o600,
			filepath.Join(dir, "whatsmeow.db-wal"): 0o600, filepath.Join(dir, "whatsmeow.db-shm"): 0o600}
		for path, mode := range want {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != mode {
				t.Errorf("%s is %o, want %o", path, got, mode)
			}
		}
	}
}
