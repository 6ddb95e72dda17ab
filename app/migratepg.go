package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"wabot/session"
	"wabot/tenant"
)

// runMigrateToPostgres copies an SQLite installation (the app database and
// every tenant's device store) into an empty PostgreSQL database, so that
// linked tenants stay linked. The SQLite files are left as they were.
func runMigrateToPostgres(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.DatabaseURL == "" {
		return &UsageError{Msg: "usage: wabot migrate-to-postgres --database-url postgres://user:password@host/db (an empty database)"}
	}
	srcPath := filepath.Join(cfg.DataDir, "wabot.db")
	if _, err := os.Stat(srcPath); err != nil {
		return fmt.Errorf("no SQLite installation to copy at %s: %w", srcPath, err)
	}
	src, err := tenant.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := src.Migrate(ctx); err != nil {
		return fmt.Errorf("bringing %s up to this binary's schema: %w", srcPath, err)
	}
	if err := refuseWhileRunning(ctx, src, cfg.HeartbeatInterval); err != nil {
		return err
	}
	dst, err := tenant.OpenURL(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer dst.Close()
	empty, err := dst.PostgresIsEmpty(ctx)
	if err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("the PostgreSQL database %s is not empty; copy into a new database (CREATE DATABASE …) so nothing there is mixed or lost", dst.Path())
	}
	if _, err := dst.Migrate(ctx); err != nil {
		return err
	}
	devices, err := session.NewPostgresDevices(ctx, cfg.DatabaseURL, dst, log)
	if err != nil {
		return err
	}
	defer devices.Close()

	counts, err := tenant.CopyAppTables(ctx, src, dst)
	if err != nil {
		return err
	}
	linked, devCounts, err := copyDeviceStores(ctx, cfg.SessionsDir, src, dst, devices)
	if err != nil {
		return err
	}
	counts = append(counts, devCounts...)
	var bad []string
	for _, c := range counts {
		if c.Table == session.SharedLIDTable {
			// Tenants that talked to the same people knew the same
			// LIDs: the shared table holds each pair once.
			fmt.Fprintf(stdout, "%-36s %8d → %8d (merged)\n", c.Table, c.Source, c.Target)
			continue
		}
		fmt.Fprintf(stdout, "%-36s %8d → %8d\n", c.Table, c.Source, c.Target)
		if c.Source != c.Target {
			bad = append(bad, fmt.Sprintf("%s has %d rows in SQLite and %d in PostgreSQL", c.Table, c.Source, c.Target))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the copy is incomplete: %v; drop the PostgreSQL database and run this again", bad)
	}
	fmt.Fprintf(stdout, "copied %d tables and the device stores of %d linked tenants into %s\n", len(counts), linked, dst.Path())
	fmt.Fprintln(stdout, "next: start wabot with WABOT_DATABASE_URL set to that database; the SQLite files are left untouched")
	return nil
}

// refuseWhileRunning refuses to copy an installation whose sessions are
// running: rows written during the copy would be lost.
func refuseWhileRunning(ctx context.Context, st *tenant.Store, heartbeat time.Duration) error {
	last, err := st.LastHeartbeat(ctx)
	if err != nil {
		return err
	}
	if time.Since(last) < 3*heartbeat {
		return errors.New("wabot is running on this installation (a tenant's session was alive moments ago); stop it first (systemctl stop wabot), then copy")
	}
	return nil
}

// copyDeviceStores copies each linked tenant's whatsmeow.db into the
// shared device store and records the device as the tenant's. whatsmeow's
// LID map is shared in PostgreSQL, so its rows merge.
func copyDeviceStores(ctx context.Context, sessionsDir string, src, dst *tenant.Store, devices *session.PostgresDevices) (linked int, counts []tenant.TableCount, err error) {
	tenants, err := src.Tenants(ctx)
	if err != nil {
		return 0, nil, err
	}
	total := map[string]*tenant.TableCount{}
	var order []string
	for _, tn := range tenants {
		path := filepath.Join(sessionsDir, tn.ID, "whatsmeow.db")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		jid, tc, err := devices.CopySQLiteStore(ctx, tn.ID, path)
		if err != nil {
			return linked, nil, fmt.Errorf("copying the device store of tenant %s: %w", tn.ID, err)
		}
		if jid == "" {
			continue // never linked: nothing worth keeping
		}
		linked++
		for _, c := range tc {
			if total[c.Table] == nil {
				total[c.Table] = &tenant.TableCount{Table: c.Table}
				order = append(order, c.Table)
			}
			total[c.Table].Source += c.Source
		}
	}
	for _, table := range order {
		c := total[table]
		n, err := devices.Rows(ctx, table)
		if err != nil {
			return linked, nil, err
		}
		c.Target = n
		counts = append(counts, *c)
	}
	return linked, counts, nil
}
