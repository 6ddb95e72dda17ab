package session

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"wabot/tenant"
)

// DeviceStores is where the tenants' WhatsApp device stores (their keys,
// sessions and contacts) live: one SQLite file per tenant folder by
// default, or one PostgreSQL database for all (PostgresDevices).
type DeviceStores interface {
	// Open returns the tenant's device, a new unlinked one when it has
	// none, and what closes the store behind it.
	Open(ctx context.Context, tenantID, dir string, log waLog.Logger) (*store.Device, func(), error)
	// Linked records the device as the tenant's once pairing gave it a JID.
	Linked(ctx context.Context, tenantID string, dev *store.Device) error
	// Remove deletes the tenant's device store (reset, logout).
	Remove(ctx context.Context, tenantID, dir string) error
}

// Per-connection SQLite caches of a device store, kept small so idle
// tenants stay small: 64 KiB of pages and 24 prepared statements (enough
// for whatsmeow's per-message queries).
const (
	dsnCacheSize     = "-64"
	dsnStmtCacheSize = "24"
)

// SQLiteDevices keeps each tenant's device store in whatsmeow.db in the
// tenant's folder.
type SQLiteDevices struct{}

func (SQLiteDevices) Open(ctx context.Context, _, dir string, log waLog.Logger) (*store.Device, func(), error) {
	path := filepath.Join(dir, "whatsmeow.db")
	if err := privateStore(dir, path); err != nil {
		return nil, nil, fmt.Errorf("preparing device store: %w", err)
	}
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(path, "_cache_size", dsnCacheSize, "_stmt_cache_size", dsnStmtCacheSize))
	if err != nil {
		return nil, nil, err
	}
	// A busy tenant sends on up to 4 connections at once; reopening one
	// for each send cost 3% of the CPU under load. An idle tenant's
	// connections close after a minute, so idle memory stays as it was.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	container := sqlstore.NewWithDB(db, "sqlite3", log)
	if err := container.Upgrade(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("preparing device store: %w", err)
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("reading device store: %w", err)
	}
	return dev, func() { container.Close() }, nil
}

func (SQLiteDevices) Linked(context.Context, string, *store.Device) error { return nil }

func (SQLiteDevices) Remove(_ context.Context, _, dir string) error { return removeDir(dir) }

// PostgresDevices keeps every tenant's device in one PostgreSQL database,
// in whatsmeow's tables; the app database's tenant_devices row says which
// device is whose, so a tenant only ever opens its own.
type PostgresDevices struct {
	url       string
	st        *tenant.Store
	pool      *pgxpool.Pool
	db        *sql.DB // for the stores' schema and the command line
	container *sqlstore.Container
}

// devicePoolSize caps one instance's connections for device stores: a
// message holds one while whatsmeow decrypts and the bot stores it.
const devicePoolSize = 32

// NewPostgresDevices opens the device stores in the PostgreSQL database at
// databaseURL (the app's database) and brings whatsmeow's tables up to
// date.
func NewPostgresDevices(ctx context.Context, databaseURL string, st *tenant.Store, log *slog.Logger) (*PostgresDevices, error) {
	pool, err := tenant.PgxPool(ctx, databaseURL, devicePoolSize)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	container := sqlstore.NewWithDB(db, "pgx", newWALogger(log))
	if err := container.Upgrade(ctx); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("preparing the device stores in PostgreSQL: %w", err)
	}
	return &PostgresDevices{url: databaseURL, st: st, pool: pool, db: db, container: container}, nil
}

func (p *PostgresDevices) Open(ctx context.Context, tenantID, _ string, log waLog.Logger) (*store.Device, func(), error) {
	// Each client generation gets its own handle on the shared pool, as
	// with SQLite its own file handle: closing it at teardown makes a send
	// still running on the old client fail instead of writing the Signal
	// sessions behind the new client's back (two writers of one session
	// reuse a message counter, and the contact cannot decrypt). Its own
	// container also keeps whatsmeow's caches (the LID map) the tenant's.
	db := stdlib.OpenDBFromPool(p.pool)
	container := sqlstore.NewWithDB(db, "pgx", log)
	dev, err := p.deviceIn(ctx, container, tenantID)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if dev == nil {
		dev = container.NewDevice()
	}
	return dev, func() { container.Close() }, nil
}

func (p *PostgresDevices) device(ctx context.Context, tenantID string) (*store.Device, error) {
	return p.deviceIn(ctx, p.container, tenantID)
}

func (p *PostgresDevices) deviceIn(ctx context.Context, container *sqlstore.Container, tenantID string) (*store.Device, error) {
	jid, err := p.st.DeviceJID(ctx, tenantID)
	if err != nil || jid == "" {
		return nil, err
	}
	parsed, err := types.ParseJID(jid)
	if err != nil {
		return nil, fmt.Errorf("the device of tenant %s has a bad JID %q: %w", tenantID, jid, err)
	}
	dev, err := container.GetDevice(ctx, parsed)
	if err != nil {
		return nil, fmt.Errorf("reading device store: %w", err)
	}
	return dev, nil
}

func (p *PostgresDevices) Linked(ctx context.Context, tenantID string, dev *store.Device) error {
	if dev.ID == nil {
		return fmt.Errorf("the device of tenant %s has no JID after pairing", tenantID)
	}
	return p.st.SetDeviceJID(ctx, tenantID, dev.ID.String())
}

func (p *PostgresDevices) Remove(ctx context.Context, tenantID, dir string) error {
	dev, err := p.device(ctx, tenantID)
	if err != nil {
		return err
	}
	if dev != nil {
		if err := p.container.DeleteDevice(ctx, dev); err != nil {
			return fmt.Errorf("deleting the device store of tenant %s: %w", tenantID, err)
		}
	}
	if err := p.st.ForgetDevice(ctx, tenantID); err != nil {
		return err
	}
	return removeDir(dir) // media downloads in flight, files of an SQLite past
}

// Close closes the device stores' pool, after every client is gone.
func (p *PostgresDevices) Close() error {
	err := p.db.Close()
	p.pool.Close()
	return err
}

// SharedLIDTable is whatsmeow's map of linked ids to phone numbers: in a
// shared store, one table for all devices.
const SharedLIDTable = "whatsmeow_lid_map"

// CopySQLiteStore copies the device store file at path (wabot
// migrate-to-postgres) into PostgreSQL and records its device as the
// tenant's. It returns the device's JID ("" for a store never linked,
// which is left out) and the rows of each table in the file.
func (p *PostgresDevices) CopySQLiteStore(ctx context.Context, tenantID, path string) (string, []tenant.TableCount, error) {
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(path))
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	// The file may be from an older whatsmeow: same schema on both sides.
	container := sqlstore.NewWithDB(db, "sqlite3", waLog.Noop)
	if err := container.Upgrade(ctx); err != nil {
		return "", nil, fmt.Errorf("upgrading %s: %w", path, err)
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		return "", nil, err
	}
	if dev.ID == nil {
		return "", nil, nil
	}
	tables, err := tenant.SQLiteTables(ctx, db, "whatsmeow_")
	if err != nil {
		return "", nil, err
	}
	var own []string
	for _, t := range tables {
		if t != "whatsmeow_version" && t != SharedLIDTable {
			own = append(own, t)
		}
	}
	dst, err := tenant.PostgresDB(p.url, 2)
	if err != nil {
		return "", nil, err
	}
	defer dst.Close()
	counts, err := tenant.CopyTables(ctx, db, dst, own, false)
	if err != nil {
		return "", nil, err
	}
	lids, err := tenant.CopyTables(ctx, db, dst, []string{SharedLIDTable}, true)
	if err != nil {
		return "", nil, err
	}
	counts = append(counts, lids...)
	for i := range counts {
		counts[i].Target = 0 // whole-table counts; the caller counts once at the end
	}
	if err := p.Linked(ctx, tenantID, dev); err != nil {
		return "", nil, err
	}
	return dev.ID.String(), counts, nil
}

// Rows counts a device-store table's rows across every tenant.
func (p *PostgresDevices) Rows(ctx context.Context, table string) (int64, error) {
	var n int64
	err := p.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM "`+table+`"`).Scan(&n)
	return n, err
}
