package tenant

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMigrationsApplyOnceAndAreIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wabot.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || n == 0 {
		t.Fatalf("applied %d migrations, want %d", n, SchemaVersion())
	}
	if _, err := db.db.write.ExecContext(ctx, `INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('t1', 'Acme', 'ACTIVE', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err = db.Migrate(ctx)
	if err != nil || n != 0 {
		t.Fatalf("second start applied %d (err %v), want 0", n, err)
	}
	var name string
	if err := db.db.read.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = 't1'`).Scan(&name); err != nil || name != "Acme" {
		t.Fatalf("row lost across restart: %q %v", name, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", info.Mode().Perm())
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wabot.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.write.ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Migrate(ctx)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
}

func TestPragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "wabot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fk int
	var mode string
	if err := db.db.read.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("read pool foreign_keys=%d err=%v", fk, err)
	}
	if err := db.db.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode=%q err=%v", mode, err)
	}
	if _, err := db.db.read.ExecContext(ctx, "CREATE TABLE x (a)"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// A browser session written before migration 2 (expiry in SQLite julian
// days) keeps its expiry in Unix milliseconds after it.
func TestWebSessionExpiryMigratesToMilliseconds(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "wabot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := loadMigrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.write.ExecContext(ctx, ms[0].sql+"; PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	expiry := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	if _, err := st.db.write.ExecContext(ctx, `INSERT INTO web_sessions (token, data, expiry) VALUES ('h', x'01', julianday(?))`,
		expiry.Format("2006-01-02T15:04:05.999")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := st.db.read.QueryRowContext(ctx, `SELECT expiry FROM web_sessions WHERE token = 'h'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if d := time.UnixMilli(got).Sub(expiry).Abs(); d > time.Millisecond {
		t.Fatalf("expiry %v after migrating, want %v", time.UnixMilli(got).UTC(), expiry)
	}
	if _, found, err := st.WebSessions().FindCtx(ctx, "h"); err != nil || !found {
		t.Fatalf("the migrated session is not found: %v %v", found, err)
	}
}

func TestATenantsUserBecomesItsOwnerOnMigrating(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "wabot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := loadMigrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:9] {
		if _, err := st.db.write.ExecContext(ctx, m.sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.db.write.ExecContext(ctx, `PRAGMA user_version = 9;
		INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('t1', 'Acme', 'ACTIVE', 1, 1);
		INSERT INTO users (id, email, tenant_id, created_at) VALUES ('u1', 'owner@example.com', 't1', 1), ('u2', 'alone@example.com', NULL, 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := st.RoleOf(ctx, "t1", "u1"); err != nil || r != RoleOwner {
		t.Errorf("role %q, %v; want owner", r, err)
	}
	if u, err := st.UserByID(ctx, "u1"); err != nil || u.TenantID != "t1" {
		t.Errorf("user %+v, %v; want tenant t1", u, err)
	}
	if m, err := st.Memberships(ctx, "u2"); err != nil || len(m) != 0 {
		t.Errorf("a user without a tenant got %+v, %v", m, err)
	}
}
