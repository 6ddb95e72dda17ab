package tenant

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
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
//
// On PostgreSQL both are the same pool: the server runs writers side by
// side, and path is the URL without its password.
type db struct {
	write   *sql.DB
	read    *sql.DB
	path    string
	dialect Dialect
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
	return &db{write: w, read: r, path: path, dialect: SQLite}, nil
}

// postgresPoolSize caps one instance's connections to PostgreSQL for the
// app's rows; writers run side by side there, unlike SQLite's one.
const postgresPoolSize = 16

// OpenURL opens the database named by a WABOT_DATABASE_URL value: a
// postgres:// URL, or else the path of an SQLite file.
func OpenURL(ctx context.Context, databaseURL string) (*Store, error) {
	if !IsPostgresURL(databaseURL) {
		return Open(databaseURL)
	}
	pool, err := PostgresDB(databaseURL, postgresPoolSize)
	if err != nil {
		return nil, err
	}
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", RedactURL(databaseURL), err)
	}
	d := &db{write: pool, read: pool, path: RedactURL(databaseURL), dialect: Postgres}
	return &Store{db: d, now: time.Now}, nil
}

// Dialect is the engine behind the store.
func (s *Store) Dialect() Dialect { return s.db.dialect }

// Close closes the database.
func (s *Store) Close() error {
	if s.db.read == s.db.write {
		return s.db.write.Close()
	}
	return errors.Join(s.db.read.Close(), s.db.write.Close())
}

// Path is the database file (for PostgreSQL, its URL without the
// password).
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
	dialect Dialect // "" when written for both
}

// loadMigrations returns the migrations for dialect in order. A migration
// is written once, NNNN_name.sql, in the SQL both engines take (SQLite's
// types, which postgresDDL maps); where the engines need different
// statements, NNNN_name.sqlite.sql and NNNN_name.postgres.sql replace it.
func loadMigrations(dialect Dialect) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]migration{}
	for _, e := range entries {
		num, rest, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", e.Name())
		}
		base := strings.TrimSuffix(rest, ".sql")
		own := Dialect("")
		for _, d := range []Dialect{SQLite, Postgres} {
			if strings.HasSuffix(base, "."+string(d)) {
				own = d
			}
		}
		if own != "" && own != dialect {
			continue
		}
		if prev, dup := byVersion[v]; dup && (own == "") == (prev.dialect == "") {
			return nil, fmt.Errorf("migration %s: number %d is taken by %s", e.Name(), v, prev.name)
		} else if dup && own == "" {
			continue // the dialect's own file wins
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		text := string(b)
		if dialect == Postgres && own == "" {
			text = postgresDDL(text)
		}
		byVersion[v] = migration{version: v, name: e.Name(), sql: text, dialect: own}
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, m)
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
	ms, err := loadMigrations(SQLite)
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
	ms, err := loadMigrations(db.dialect)
	if err != nil {
		return 0, err
	}
	applied := 0
	for {
		// Each migration reads the version again inside its transaction:
		// instances starting together on one PostgreSQL database wait for
		// each other on the advisory lock and apply each migration once.
		done := false
		var name string
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			if db.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7726102)`); err != nil {
					return err
				}
				// Under the lock: instances creating it at once would collide.
				if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS wabot_schema (version BIGINT NOT NULL)`); err != nil {
					return fmt.Errorf("preparing the schema version table: %w", err)
				}
			}
			current, err := schemaVersion(ctx, tx, db.dialect)
			if err != nil {
				return fmt.Errorf("reading schema version: %w", err)
			}
			if current > len(ms) {
				return fmt.Errorf("%w: %s is at version %d, this binary knows up to %d; run the newer wabot or restore a backup",
					ErrSchemaTooNew, filepath.Base(db.path), current, len(ms))
			}
			if current == len(ms) {
				done = true
				return nil
			}
			m := ms[current]
			name = m.name
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			return setSchemaVersion(ctx, tx, db.dialect, m.version)
		})
		if err != nil {
			if name != "" {
				err = fmt.Errorf("applying migration %s: %w", name, err)
			}
			return applied, err
		}
		if done {
			return applied, nil
		}
		applied++
	}
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func schemaVersion(ctx context.Context, q queryer, dialect Dialect) (int, error) {
	var v int
	if dialect == Postgres {
		err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM wabot_schema`).Scan(&v)
		return v, err
	}
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func setSchemaVersion(ctx context.Context, q queryer, dialect Dialect, v int) error {
	if dialect == Postgres {
		if _, err := q.ExecContext(ctx, `DELETE FROM wabot_schema`); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO wabot_schema (version) VALUES (?)`, v)
		return err
	}
	_, err := q.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}

// StoredSchemaVersion returns the schema version of the database.
func (s *Store) StoredSchemaVersion(ctx context.Context) (int, error) {
	if s.db.dialect == Postgres {
		var n int
		if err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name = 'wabot_schema'`).Scan(&n); err != nil || n == 0 {
			return 0, err // never migrated
		}
	}
	return schemaVersion(ctx, s.db.read, s.db.dialect)
}

// MigrationsDigest is a digest of every migration this binary carries,
// which names test template databases.
func MigrationsDigest() string {
	h := sha256.New()
	for _, d := range []Dialect{SQLite, Postgres} {
		ms, err := loadMigrations(d)
		if err != nil {
			panic(err)
		}
		for _, m := range ms {
			fmt.Fprintf(h, "%s %d %s\n", d, m.version, m.sql)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
