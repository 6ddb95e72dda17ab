// Package database opens wabot's SQLite database and applies its migrations.
package database

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// DB is the app database with a single-writer discipline: every write goes
// through Write, a pool of one connection, so SQLite never answers "database
// is locked"; reads use Read, a small pool of query-only connections that
// WAL lets run beside the writer.
type DB struct {
	Write *sql.DB
	Read  *sql.DB
	Path  string
}

// DSN returns a go-sqlite3 data source name for path with every pragma wabot
// relies on, so each pooled connection gets them.
func DSN(path string, extra ...string) string {
	q := url.Values{}
	q.Set("_foreign_keys", "on")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	// Prepared statements are reused per connection instead of being
	// compiled anew for every query.
	q.Set("_stmt_cache_size", "64")
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path. The folder
// must exist. The file is created with mode 0600.
func Open(path string) (*DB, error) {
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	} else {
		f.Close()
	}
	w, err := sql.Open("sqlite3", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", DSN(path, "_query_only", "true"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &DB{Write: w, Read: r, Path: path}, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.Read.Close(), db.Write.Close())
}

// Ping checks that the database answers a query on both pools.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.Read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	return db.Write.PingContext(ctx)
}

// InTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it when
// fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return out, nil
}

// LatestVersion is the schema version this binary writes.
func LatestVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		panic(err) // embedded files are checked by tests
	}
	return len(ms)
}

// ErrSchemaTooNew means the database was migrated by a newer wabot.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Migrate applies every migration the database lacks, each in its own
// transaction together with the new PRAGMA user_version, and returns how
// many it applied. It refuses a database whose version is newer than the
// binary, which would otherwise be silently misread.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, err
	}
	var current int
	if err := db.Write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("%w: %s is at version %d, this binary knows up to %d; run the newer wabot or restore a backup",
			ErrSchemaTooNew, filepath.Base(db.Path), current, len(ms))
	}
	applied := 0
	for _, m := range ms[current:] {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("applying migration %s: %w", m.name, err)
		}
		applied++
	}
	return applied, nil
}

// Version returns the schema version stored in the database.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.Read.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
