package tenant

// The one place where SQLite and PostgreSQL differ. SQL in this package is
// written once, in the form both accept, with `?` placeholders; for
// PostgreSQL the connection rewrites placeholders to $n and Go bools to
// 0/1 (flags are integer columns on both), and migrations written in
// SQLite's spelling get PostgreSQL's types (see postgresDDL).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is the database engine behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// keyShareLock ends a fence check: the lease row may not change hands
// until the write that checked it ends, yet its owner's renewals (which
// only move expires_at) go on, so a steady stream of fenced writes never
// starves them. SQLite's writer holds the whole database and needs none.
func (d Dialect) keyShareLock() string {
	if d == Postgres {
		return " FOR KEY SHARE"
	}
	return ""
}

// updateLock ends the SELECT that picks rows to change hands: the
// exclusive lock that waits for every keyShareLock on them. A row locked
// now is skipped, left for a later round: a frozen instance's open
// transaction must not hold up every other instance's claims (and with
// them their renewals) until its connection is ended.
func (d Dialect) updateLock() string {
	if d == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// idleInTransaction ends a session that holds a transaction open without
// a statement this long (a frozen or stuck instance), releasing its row
// locks: well within a lease's default 15 s, far beyond any pause between
// the statements of a live transaction.
const idleInTransaction = "5s"

// IsPostgresURL reports whether s names a PostgreSQL database
// (postgres://… or postgresql://…) rather than a file.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactURL returns a database URL without its password, for logs and
// errors.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// PostgresDB opens a pool on the PostgreSQL database at databaseURL whose
// connections take wabot's `?` placeholders and Go bools; maxConns caps
// the pool.
func PostgresDB(databaseURL string, maxConns int) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, fmt.Errorf("the database URL %s does not parse", RedactURL(databaseURL))
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "wabot"
	}
	// A write that waits this long for a lock fails, as SQLite's busy
	// timeout makes it: the bot's retries and redelivery take over rather
	// than a message hanging on a stuck transaction elsewhere.
	if cfg.RuntimeParams["lock_timeout"] == "" {
		cfg.RuntimeParams["lock_timeout"] = "10s"
	}
	if cfg.RuntimeParams["idle_in_transaction_session_timeout"] == "" {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = idleInTransaction
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, nil
}

// PgxPool opens a pgx pool ($n placeholders, pgx's own) of at most
// maxConns connections: whatsmeow's device stores speak PostgreSQL's own
// form, and each tenant's store takes its connections from this pool
// through a database/sql handle of its own (stdlib.OpenDBFromPool), which
// it can close without closing the pool.
func PgxPool(ctx context.Context, databaseURL string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("the database URL %s does not parse", RedactURL(databaseURL))
	}
	rp := cfg.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = "wabot-devices"
	}
	// As SQLite's busy timeout bounds a device store's waits: a write
	// that needs rows another transaction holds fails and is retried
	// rather than waiting forever.
	if rp["lock_timeout"] == "" {
		rp["lock_timeout"] = "10s"
	}
	if rp["idle_in_transaction_session_timeout"] == "" {
		rp["idle_in_transaction_session_timeout"] = idleInTransaction
	}
	cfg.MaxConns = int32(maxConns)
	return pgxpool.NewWithConfig(ctx, cfg)
}

type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(*stdlib.Conn)}, nil
}

// rebindConn is pgx's database/sql connection with every query's
// placeholders rewritten; everything else passes through.
type rebindConn struct{ c *stdlib.Conn }

func (r rebindConn) Prepare(q string) (driver.Stmt, error) { return r.c.Prepare(rebind(q)) }
func (r rebindConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return r.c.PrepareContext(ctx, rebind(q))
}
func (r rebindConn) Close() error              { return r.c.Close() }
func (r rebindConn) Begin() (driver.Tx, error) { return r.c.Begin() } //nolint:staticcheck // the interface requires it
func (r rebindConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return r.c.BeginTx(ctx, o)
}
func (r rebindConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return r.c.ExecContext(ctx, rebind(q), args)
}
func (r rebindConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return r.c.QueryContext(ctx, rebind(q), args)
}
func (r rebindConn) Ping(ctx context.Context) error         { return r.c.Ping(ctx) }
func (r rebindConn) ResetSession(ctx context.Context) error { return r.c.ResetSession(ctx) }

// CheckNamedValue stores Go bools as 0/1: flags are integer columns, as
// SQLite has no boolean type.
func (r rebindConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		if b {
			nv.Value = int64(1)
		} else {
			nv.Value = int64(0)
		}
	}
	return nil
}

var rebound sync.Map // query → rewritten query; wabot's queries are a fixed set

// rebind turns each `?` outside quotes and comments into $1, $2, …, and
// LIKE into ILIKE: SQLite's LIKE ignores case, and wabot's searches are
// written for that.
func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(q[i+1:], ch)
			if end < 0 {
				b.WriteString(q[i:])
				i = len(q)
				continue
			}
			b.WriteString(q[i : i+end+2])
			i += end + 1
		case ch == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i
			}
			b.WriteString(q[i : i+end])
			i += end - 1
		case ch == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		case isWordByte(ch) && (i == 0 || !isWordByte(q[i-1])):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			if strings.EqualFold(q[i:j], "LIKE") {
				b.WriteString("ILIKE")
			} else {
				b.WriteString(q[i:j])
			}
			i = j - 1
		default:
			b.WriteByte(ch)
		}
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// postgresDDL turns a migration written in SQLite's spelling into
// PostgreSQL's: integers are 64-bit (times are Unix milliseconds), an `id
// INTEGER PRIMARY KEY` numbers itself as SQLite's rowid does, BLOB is
// BYTEA and REAL is DOUBLE PRECISION.
func postgresDDL(sqliteDDL string) string {
	s := idColumn.ReplaceAllString(sqliteDDL, "${1} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
	s = integerType.ReplaceAllString(s, "BIGINT")
	s = blobType.ReplaceAllString(s, "BYTEA")
	s = realType.ReplaceAllString(s, "DOUBLE PRECISION")
	return s
}

var (
	idColumn    = regexp.MustCompile(`(?m)^(\s*id)\s+INTEGER\s+PRIMARY\s+KEY\b`)
	integerType = regexp.MustCompile(`\bINTEGER\b`)
	blobType    = regexp.MustCompile(`\bBLOB\b`)
	realType    = regexp.MustCompile(`\bREAL\b`)
)
