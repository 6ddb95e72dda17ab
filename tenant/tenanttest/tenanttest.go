// Package tenanttest opens real, migrated app databases for tests, in a
// test's temporary folder.
package tenanttest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"wabot/tenant"
)

// Open returns a store over a new, migrated database in a temporary
// folder, closed when the test ends.
func Open(t testing.TB) *tenant.Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "wabot.db"))
}

// OpenAt opens (creating if needed) and migrates the database at path,
// closed when the test ends.
func OpenAt(t testing.TB, path string) *tenant.Store {
	t.Helper()
	st, err := tenant.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Raw opens a second connection to the database file at path, for tests
// that must see or shape rows no store method exposes (an expired link,
// a row written behind the store's back).
func Raw(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
