package tenant

// Copying an SQLite installation into PostgreSQL (wabot
// migrate-to-postgres): table by table, in an order that satisfies every
// foreign key, each value shaped for its PostgreSQL column, then counted
// on both sides.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// TableCount is how many rows a table has in the source and, after the
// copy, in the target.
type TableCount struct {
	Table          string
	Source, Target int64
}

// PostgresIsEmpty reports whether the database holds no tables at all,
// the only target a copy accepts.
func (s *Store) PostgresIsEmpty(ctx context.Context) (bool, error) {
	if s.db.dialect != Postgres {
		return false, fmt.Errorf("%s is not a PostgreSQL database", s.db.path)
	}
	var n int
	err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&n)
	return n == 0, err
}

// CopyAppTables copies every row of the app database src (SQLite) into
// dst (PostgreSQL, migrated to the same version, empty), in one
// transaction, and returns the row counts of both. Identity columns go on
// numbering after the highest copied id.
func CopyAppTables(ctx context.Context, src, dst *Store) ([]TableCount, error) {
	if src.db.dialect != SQLite || dst.db.dialect != Postgres {
		return nil, fmt.Errorf("copying needs an SQLite source and a PostgreSQL target")
	}
	sv, err := src.StoredSchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	dv, err := dst.StoredSchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if sv != dv {
		return nil, fmt.Errorf("the SQLite database is at schema version %d and PostgreSQL at %d; migrate both with this binary first", sv, dv)
	}
	tables, err := sqliteTablesInFKOrder(ctx, src.db.write, "")
	if err != nil {
		return nil, err
	}
	return CopyTables(ctx, src.db.write, dst.db.write, tables, false)
}

// CopyTables copies the rows of tables from the SQLite database src into
// the PostgreSQL database dst (same tables, same column names) in one
// transaction. With skipExisting, a row that collides with one already
// there is left out (tables shared by several sources). Counts are of the
// whole table on each side.
func CopyTables(ctx context.Context, src, dst *sql.DB, tables []string, skipExisting bool) ([]TableCount, error) {
	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var counts []TableCount
	for _, table := range tables {
		if err := copyTable(ctx, src, tx, table, skipExisting); err != nil {
			return nil, fmt.Errorf("copying table %s: %w", table, err)
		}
		if err := restartIdentity(ctx, tx, table); err != nil {
			return nil, fmt.Errorf("numbering table %s: %w", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	for _, table := range tables {
		c := TableCount{Table: table}
		if err := src.QueryRowContext(ctx, `SELECT COUNT(*) FROM "`+table+`"`).Scan(&c.Source); err != nil {
			return nil, err
		}
		if err := dst.QueryRowContext(ctx, `SELECT COUNT(*) FROM "`+table+`"`).Scan(&c.Target); err != nil {
			return nil, err
		}
		counts = append(counts, c)
	}
	return counts, nil
}

// SQLiteTables lists the tables of an SQLite database whose names start
// with prefix, parents before the tables whose foreign keys point at them.
func SQLiteTables(ctx context.Context, db *sql.DB, prefix string) ([]string, error) {
	return sqliteTablesInFKOrder(ctx, db, prefix)
}

func sqliteTablesInFKOrder(ctx context.Context, db *sql.DB, prefix string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	for _, n := range names {
		fk, err := db.QueryContext(ctx, `SELECT "table" FROM pragma_foreign_key_list(?)`, n)
		if err != nil {
			return nil, err
		}
		for fk.Next() {
			var p string
			if err := fk.Scan(&p); err != nil {
				fk.Close()
				return nil, err
			}
			if p != n {
				parents[n] = append(parents[n], p)
			}
		}
		fk.Close()
	}
	var order []string
	done := map[string]bool{}
	var visit func(n string, depth int) error
	visit = func(n string, depth int) error {
		if done[n] {
			return nil
		}
		if depth > len(names) {
			return fmt.Errorf("foreign keys form a cycle through %s", n)
		}
		sort.Strings(parents[n])
		for _, p := range parents[n] {
			if err := visit(p, depth+1); err != nil {
				return err
			}
		}
		done[n] = true
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// copyBatch rows go in one INSERT: few round trips, well under
// PostgreSQL's 65,535 parameters.
const copyBatch = 200

func copyTable(ctx context.Context, src *sql.DB, tx *sql.Tx, table string, skipExisting bool) error {
	types, err := postgresColumnTypes(ctx, tx, table)
	if err != nil {
		return err
	}
	if len(types) == 0 {
		return fmt.Errorf("PostgreSQL has no table %s", table)
	}
	rows, err := src.QueryContext(ctx, `SELECT * FROM "`+table+`" ORDER BY rowid`)
	if err != nil {
		// WITHOUT ROWID tables have no rowid; their primary key orders them.
		rows, err = src.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			return err
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for _, c := range cols {
		if _, ok := types[c]; !ok {
			return fmt.Errorf("PostgreSQL's %s has no column %s", table, c)
		}
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	head := `INSERT INTO "` + table + `" (` + strings.Join(quoted, ", ") + `) OVERRIDING SYSTEM VALUE VALUES `
	tail := ""
	if skipExisting {
		tail = ` ON CONFLICT DO NOTHING`
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	var args []any
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := head + strings.TrimSuffix(strings.Repeat(one+", ", n), ", ") + tail
		_, err := tx.ExecContext(ctx, q, args...)
		args, n = args[:0], 0
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, c := range cols {
			v, err := toPostgres(vals[i], types[c])
			if err != nil {
				return fmt.Errorf("column %s: %w", c, err)
			}
			args = append(args, v)
		}
		n++
		if n == copyBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

func postgresColumnTypes(ctx context.Context, tx *sql.Tx, table string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ?`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			return nil, err
		}
		out[c] = t
	}
	return out, rows.Err()
}

// toPostgres shapes an SQLite value for a PostgreSQL column of type
// pgType: SQLite keeps booleans as integers, text and blobs loosely, and
// whatsmeow's UUIDs as 16 bytes.
func toPostgres(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "boolean":
		switch x := v.(type) {
		case int64:
			return postgresBool(x != 0), nil
		case bool:
			return postgresBool(x), nil
		}
	case "bytea":
		switch x := v.(type) {
		case string:
			return []byte(x), nil
		case []byte:
			return x, nil
		}
	case "text", "character varying":
		switch x := v.(type) {
		case []byte:
			return string(x), nil
		case string:
			return x, nil
		}
	case "uuid":
		switch x := v.(type) {
		case []byte:
			if len(x) == 16 {
				u, err := uuid.FromBytes(x)
				return u.String(), err
			}
			return string(x), nil
		case string:
			return x, nil
		}
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case "double precision", "real", "numeric":
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	}
	return nil, fmt.Errorf("cannot store %T in a %s column", v, pgType)
}

// postgresBool reaches a boolean column as a boolean: the connection
// turns plain Go bools into 0/1 for wabot's integer flags.
type postgresBool bool

// restartIdentity makes an identity column go on after the highest id
// copied into it.
func restartIdentity(ctx context.Context, tx *sql.Tx, table string) error {
	var seq sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT pg_get_serial_sequence(?, 'id') FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? AND column_name = 'id' AND is_identity = 'YES'`,
		`"`+table+`"`, table).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !seq.Valid {
		return nil // no identity column
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `SELECT setval(?, GREATEST((SELECT COALESCE(MAX(id), 0) FROM "`+table+`"), 1), (SELECT COUNT(*) > 0 FROM "`+table+`"))`, seq.String)
	return err
}
