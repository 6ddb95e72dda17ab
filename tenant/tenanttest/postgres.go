package tenanttest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"wabot/tenant"
)

// Backend is the engine the store's tests run on: WABOT_TEST_BACKEND,
// "sqlite" (the default) or "postgres".
func Backend() tenant.Dialect {
	if os.Getenv("WABOT_TEST_BACKEND") == string(tenant.Postgres) {
		return tenant.Postgres
	}
	return tenant.SQLite
}

// PostgresURL is the server tests make their databases on: a role that
// may create databases, given as WABOT_TEST_POSTGRES
// (postgres://user:password@127.0.0.1:5432/postgres). A test that needs it
// fails when it is not set: .ci/run starts the server and sets it.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("WABOT_TEST_POSTGRES")
	if u == "" {
		t.Fatal("this test needs PostgreSQL: set WABOT_TEST_POSTGRES to a server's URL with a role that may create databases (go tool task test starts one with .ci/postgres)")
	}
	return u
}

// NewPostgresDatabase creates an empty database for the test and returns
// its URL; it is dropped when the test ends.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "")
}

// OpenPostgres returns a store over a new, migrated PostgreSQL database,
// copied from a template migrated once per schema, dropped when the test
// ends.
func OpenPostgres(t testing.TB) *tenant.Store {
	t.Helper()
	tpl := template(t)
	dbURL := newDatabase(t, tpl)
	st, err := tenant.OpenURL(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	realURLs.Store(st.Path(), dbURL)
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// URL is the address of the database behind st, password included: a
// store's Path() leaves the password out.
func URL(t testing.TB, st *tenant.Store) string {
	t.Helper()
	if st.Dialect() != tenant.Postgres {
		return st.Path()
	}
	u, ok := realURLs.Load(st.Path())
	if !ok {
		t.Fatalf("no test database behind %s", st.Path())
	}
	return u.(string)
}

// realURLs maps a store's Path() (the URL without its password) back to
// the URL Raw connects with.
var realURLs sync.Map

func rawPostgres(t testing.TB, path string) *sql.DB {
	t.Helper()
	u, ok := realURLs.Load(path)
	if !ok {
		u = path
	}
	db, err := tenant.PostgresDB(u.(string), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func withDatabase(server, name string) string {
	u, err := url.Parse(server)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func admin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := tenant.PostgresDB(PostgresURL(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newDatabase(t testing.TB, template string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "wabot_test_" + hex.EncodeToString(b)
	db := admin(t)
	defer db.Close()
	stmt := `CREATE DATABASE ` + name
	if template != "" {
		stmt += ` TEMPLATE ` + template
	}
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		db := admin(t)
		defer db.Close()
		if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	u := withDatabase(PostgresURL(t), name)
	realURLs.Store(tenant.RedactURL(u), u) // what a store's Path() shows
	return u
}

var templates sync.Map // schema hash → template name, made in this process

// template returns a database migrated to this binary's schema, kept on
// the server between runs under a name derived from the migrations, so
// most tests pay for a copy, not a migration.
func template(t testing.TB) string {
	t.Helper()
	name := "wabot_tpl_" + schemaHash()
	if _, ok := templates.Load(name); ok {
		return name
	}
	db := admin(t)
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Test processes of several packages may start together.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7726103)`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock(7726103)`)
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		build := name + "_build"
		conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+build+` WITH (FORCE)`)
		if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+build); err != nil {
			t.Fatalf("creating template database: %v", err)
		}
		st, err := tenant.OpenURL(ctx, withDatabase(PostgresURL(t), build))
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Migrate(ctx)
		st.Close()
		if err != nil {
			t.Fatalf("migrating template database: %v", err)
		}
		if _, err := conn.ExecContext(ctx, `ALTER DATABASE `+build+` RENAME TO `+name); err != nil {
			t.Fatalf("naming template database: %v", err)
		}
	}
	templates.Store(name, true)
	return name
}

func schemaHash() string {
	h := sha256.New()
	fmt.Fprint(h, tenant.MigrationsDigest())
	return hex.EncodeToString(h.Sum(nil))[:12]
}
