package tenant

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
	"sync"
	"time"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver
)

// db is the app database with a single-writer discipline: every write goes
// through write, a pool of one connection, so SQLite never answers "database
// is locked"; reads use read, a small pool of query-only connections that
// WAL lets run beside the writer.
type db struct {
	write *sql.DB
	read  *sql.DB
	path  string
}

// SQLiteDSN returns a go-sqlite3 data source name for path with every
// pragma wabot relies on, so each pooled connection gets them. The device
// stores use it too; extra are more name/value pairs.
func SQLiteDSN(path string, extra ...string) string {
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

// writerDriver is go-sqlite3 with the pragmas its DSN cannot carry, run
// on every new connection of the writer pool.
const writerDriver = "sqlite3_wabot_writer"

// journalSizeLimit caps the WAL file left after a checkpoint: without it
// the file keeps the size of the largest burst of writes ever.
const journalSizeLimit = 64 << 20

var registerWriterDriver = sync.OnceFunc(func() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(fmt.Sprintf("PRAGMA journal_size_limit = %d", journalSizeLimit), nil)
		return err
	}})
})

// Open opens (creating if needed) the database file at path, without
// migrating it. The folder must exist. The file is created with mode 0600.
func Open(path string) (*Store, error) {
	d, err := openDB(path)
	if err != nil {
		return nil, err
	}
	return &Store{db: d, now: time.Now}, nil
}

func openDB(path string) (*db, error) {
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	} else {
		f.Close()
	}
	registerWriterDriver()
	w, err := sql.Open(writerDriver, SQLiteDSN(path))
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
	r, err := sql.Open("sqlite3", SQLiteDSN(path, "_query_only", "true"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &db{write: w, read: r, path: path}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.db.read.Close(), s.db.write.Close())
}

// Path is the database file.
func (s *Store) Path() string { return s.db.path }

// Ping checks that the database answers a query on both pools.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	return s.db.write.PingContext(ctx)
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it when
// fn returns nil.
func (db *db) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
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

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
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
func (s *Store) Migrate(ctx context.Context) (int, error) {
	db := s.db
	ms, err := loadMigrations()
	if err != nil {
		return 0, err
	}
	var current int
	if err := db.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("%w: %s is at version %d, this binary knows up to %d; run the newer wabot or restore a backup",
			ErrSchemaTooNew, filepath.Base(db.path), current, len(ms))
	}
	applied := 0
	for _, m := range ms[current:] {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
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

// StoredSchemaVersion returns the schema version of the database.
func (s *Store) StoredSchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.read.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
