package app

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"wabot/tenant"
)

// runTenants prints every tenant, one line each.
func runTenants(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	st, err := openExisting(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Overviews(ctx, "")
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSTATUS\tSESSION\tNUMBER\tLAST SEEN\tOWNER")
	for _, o := range list {
		number := tenant.PhoneOf(o.Link.JID)
		if number == "" {
			number = "-"
		}
		seen := "never"
		if !o.Worker.LastSeenAt.IsZero() {
			seen = o.Worker.LastSeenAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(o.Tenant.ID), cell(o.Tenant.Name), cell(string(o.Tenant.Status)),
			cell(string(o.Link.State)), cell(number), seen, cell(o.Owner))
	}
	return w.Flush()
}

// cell makes a stored value safe to print on the operator's terminal: one
// holding anything but printable text (escape sequences and other control
// characters, text-direction marks, invalid UTF-8 such as tabwriter's 0xff
// escape) is printed quoted with Go escapes, so nothing reaches the
// terminal raw and a tab cannot shift the columns.
func cell(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// runTenantAction asks the running instance to act on a tenant.
func runTenantAction(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, name, id string) error {
	action, err := tenant.ParseAction(name)
	if err != nil {
		return &UsageError{Msg: "usage: wabot tenant reset|restart|suspend|resume|approve TENANT_ID"}
	}
	if !tenant.ValidTenantID(id) {
		return &UsageError{Msg: fmt.Sprintf("%q is not a tenant id (see wabot tenants)", id)}
	}
	st, err := openExisting(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.TenantByID(ctx, id); err != nil {
		return &UsageError{Msg: fmt.Sprintf("no tenant %s (see wabot tenants)", id)}
	}
	result, err := requestControl(ctx, st, id, action, 30*time.Second)
	if errors.Is(err, errNotPickedUp) {
		fmt.Fprintln(stdout, "queued:", err)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s: %s\n", action, id, cell(result))
	if strings.HasPrefix(result, "failed") {
		return errors.New(result)
	}
	return nil
}

// runGrantAdmin makes a user an admin; the running instance reads users
// from the database on every request, so it applies at once.
func runGrantAdmin(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, email string) error {
	st, err := openExisting(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.GrantAdmin(ctx, email)
	if err != nil {
		if tenant.ErrorCode(err) == tenant.CodeInvalid {
			return &UsageError{Msg: err.Error()}
		}
		return err
	}
	if err := st.Audit(ctx, cliActor, "grant-admin", "", u.Email); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is an admin\n", cell(u.Email))
	return nil
}

// openExisting opens the database of an installed wabot, migrating it if
// this binary is newer, and refuses to create one.
func openExisting(ctx context.Context, cfg *Config, log *slog.Logger) (*tenant.Store, error) {
	path := filepath.Join(cfg.DataDir, "wabot.db")
	if _, err := os.Stat(path); err != nil {
		return nil, &UsageError{Msg: fmt.Sprintf("no wabot database at %s (set WABOT_DATA_DIR or --data-dir)", path)}
	}
	return openAndMigrate(ctx, cfg, log)
}

// Backups: one tar.gz holding consistent copies (VACUUM INTO, which reads
// one snapshot while wabot keeps writing) of the app database and of every
// tenant's device store.

const backupManifest = "wabot-backup.txt"

func runBackup(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, file string) error {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "wabot.db")); err != nil {
		return &UsageError{Msg: fmt.Sprintf("no wabot database in %s", cfg.DataDir)}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(file), ".wabot-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	copies := map[string]string{} // archive name -> snapshot file
	snap := func(src, name string) error {
		dst := filepath.Join(tmp, strings.ReplaceAll(name, "/", "_"))
		if err := vacuumInto(ctx, src, dst); err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		copies[name] = dst
		return nil
	}
	if err := snap(filepath.Join(cfg.DataDir, "wabot.db"), "data/wabot.db"); err != nil {
		return err
	}
	entries, _ := os.ReadDir(cfg.SessionsDir)
	tenants := 0
	for _, e := range entries {
		store := filepath.Join(cfg.SessionsDir, e.Name(), "whatsmeow.db")
		if !e.IsDir() || !tenant.ValidTenantID(e.Name()) {
			continue
		}
		if _, err := os.Stat(store); err != nil {
			continue
		}
		if err := snap(store, "sessions/"+e.Name()+"/whatsmeow.db"); err != nil {
			return err
		}
		tenants++
	}
	out, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", file, err)
	}
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	manifest := fmt.Sprintf("wabot backup\nversion: %s\nschema: %d\ncreated: %s\ntenant stores: %d\n",
		Version(), tenant.SchemaVersion(), time.Now().UTC().Format(time.RFC3339), tenants)
	err = addTarFile(tw, backupManifest, strings.NewReader(manifest), int64(len(manifest)))
	for name, path := range copies {
		if err != nil {
			break
		}
		err = addTarPath(tw, name, path)
	}
	err = errors.Join(err, tw.Close(), gz.Close(), out.Close())
	if err != nil {
		os.Remove(file)
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s: app database and %d tenant device stores\n", file, tenants)
	return nil
}

func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(src, "_query_only", "false"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", dst)
	return err
}

func addTarPath(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return addTarFile(tw, name, f, info.Size())
}

func addTarFile(tw *tar.Writer, name string, r io.Reader, size int64) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// runRestore unpacks a backup into empty data and sessions folders.
func runRestore(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, file string) error {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "wabot.db")); err == nil {
		return &UsageError{Msg: fmt.Sprintf("%s already holds a database; restore into an empty data folder (stop wabot and move the old one aside first)", cfg.DataDir)}
	}
	if err := ensureDirs(cfg.DataDir, cfg.SessionsDir); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s is not a wabot backup: %w", file, err)
	}
	tr := tar.NewReader(gz)
	sawManifest, restored := false, 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		var dst string
		switch {
		case h.Name == backupManifest:
			sawManifest = true
			continue
		case h.Name == "data/wabot.db":
			dst = filepath.Join(cfg.DataDir, "wabot.db")
		case strings.HasPrefix(h.Name, "sessions/") && strings.HasSuffix(h.Name, "/whatsmeow.db"):
			id := strings.TrimSuffix(strings.TrimPrefix(h.Name, "sessions/"), "/whatsmeow.db")
			if !tenant.ValidTenantID(id) {
				return fmt.Errorf("refusing the archive entry %q", h.Name)
			}
			if err := os.MkdirAll(filepath.Join(cfg.SessionsDir, id), 0o700); err != nil {
				return err
			}
			dst = filepath.Join(cfg.SessionsDir, id, "whatsmeow.db")
		default:
			return fmt.Errorf("refusing the archive entry %q", h.Name)
		}
		if err := writeFile(dst, tr); err != nil {
			return err
		}
		restored++
	}
	if !sawManifest {
		return fmt.Errorf("%s is not a wabot backup (no %s)", file, backupManifest)
	}
	db, err := openAndMigrate(ctx, cfg, log)
	if err != nil {
		return err
	}
	db.Close()
	fmt.Fprintf(stdout, "restored %d files from %s; start wabot now\n", restored, file)
	return nil
}

func writeFile(dst string, r io.Reader) error {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; restore into empty folders", dst)
		}
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
