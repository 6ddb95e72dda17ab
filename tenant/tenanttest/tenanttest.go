// Package tenanttest opens real, migrated app databases for tests: SQLite
// files in a test's temporary folder, or, when WABOT_TEST_BACKEND is
// "postgres", a new database on the PostgreSQL server WABOT_TEST_POSTGRES
// names (see postgres.go).
package tenanttest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"wabot/tenant"
)

// Open returns a store over a new, migrated database, closed (and, on
// PostgreSQL, dropped) when the test ends. The backend is SQLite unless
// WABOT_TEST_BACKEND=postgres.
func Open(t testing.TB) *tenant.Store {
	t.Helper()
	if Backend() == tenant.Postgres {
		return OpenPostgres(t)
	}
	return OpenAt(t, filepath.Join(t.TempDir(), "wabot.db"))
}

// OpenAt opens (creating if needed) and migrates the SQLite database at
// path, closed when the test ends.
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

// Raw opens a second connection to a store's database, for tests that
// must see or shape rows no store method exposes (an expired link, a row
// written behind the store's back). path is an SQLite file or a store's
// Path(); queries take `?` placeholders on both backends.
func Raw(t testing.TB, path string) *sql.DB {
	t.Helper()
	if tenant.IsPostgresURL(path) {
		return rawPostgres(t, path)
	}
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Reopen returns another store over st's database, with its own
// connections, as a second wabot instance has; closed when the test ends.
func Reopen(t testing.TB, st *tenant.Store) *tenant.Store {
	t.Helper()
	if st.Dialect() != tenant.Postgres {
		return OpenAt(t, st.Path())
	}
	other, err := tenant.OpenURL(context.Background(), URL(t, st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}
