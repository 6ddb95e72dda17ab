package database

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
	if n != LatestVersion() || n == 0 {
		t.Fatalf("applied %d migrations, want %d", n, LatestVersion())
	}
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('t1', 'Acme', 'ACTIVE', 0, 0)`); err != nil {
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
	if err := db.Read.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = 't1'`).Scan(&name); err != nil || name != "Acme" {
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
	if _, err := db.Write.ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
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
	if err := db.Read.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("read pool foreign_keys=%d err=%v", fk, err)
	}
	if err := db.Write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode=%q err=%v", mode, err)
	}
	if _, err := db.Read.ExecContext(ctx, "CREATE TABLE x (a)"); err == nil {
		t.Error("the read pool accepted a write")
	}
}
