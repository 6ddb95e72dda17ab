package app

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"wabot/session"
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

// runInstances prints the live wabot instances sharing the database, one
// line each, with the tenants whose sessions each runs.
func runInstances(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	st, err := openExisting(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.LiveInstances(ctx, session.DefaultLeaseValid)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tHOST\tTENANTS\tSTARTED\tLAST BEAT\tSTATE")
	for _, in := range list {
		state := "running"
		if in.Draining {
			state = "draining"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", cell(in.ID), cell(in.Hostname), in.Tenants,
			in.StartedAt.UTC().Format(time.RFC3339), in.HeartbeatAt.UTC().Format(time.RFC3339), state)
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "(no running instance)")
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
// tenant's device store, the media files that database copy refers to,
// and the media link key.

const backupManifest = "wabot-backup.txt"

// errBackupPostgres: backups are of SQLite files; PostgreSQL has its own
// consistent dumps.
var errBackupPostgres = &UsageError{Msg: "wabot backup and restore work on SQLite installations; with WABOT_DATABASE_URL, back up the database with pg_dump (it holds every tenant's device store too) and the data folder (media, secrets) with your file backups"}

func runBackup(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, file string) error {
	if cfg.DatabaseURL != "" {
		return errBackupPostgres
	}
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
	var media mediaCopied
	write := func() error {
		for _, name := range slices.Sorted(maps.Keys(copies)) {
			if err := addTarPath(tw, name, copies[name]); err != nil {
				return err
			}
		}
		var err error
		if media, err = addMedia(ctx, tw, copies["data/wabot.db"], filepath.Join(cfg.DataDir, "media"), log); err != nil {
			return err
		}
		if err := addMediaLinkKey(tw, cfg.DataDir); err != nil {
			return err
		}
		// The manifest comes last: only then are the media files counted
		// that were still there to copy.
		manifest := fmt.Sprintf("wabot backup\nversion: %s\nschema: %d\ncreated: %s\ntenant stores: %d\nmedia files: %d (%d bytes)\n",
			Version(), tenant.SchemaVersion(), time.Now().UTC().Format(time.RFC3339), tenants, media.files, media.bytes)
		return addTarFile(tw, backupManifest, strings.NewReader(manifest), int64(len(manifest)))
	}
	err = errors.Join(write(), tw.Close(), gz.Close(), out.Close())
	if err != nil {
		os.Remove(file)
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s: app database, %d tenant device stores and %d media files (%s)\n",
		file, tenants, media.files, byteSize(media.bytes))
	if media.skipped > 0 {
		fmt.Fprintf(stdout, "%d media files the database lists were left out (missing or damaged; see the warnings above)\n", media.skipped)
	}
	return nil
}

// mediaCopied counts the media files a backup holds, and those it left out.
type mediaCopied struct {
	files, skipped int
	bytes          int64
}

// errMediaDamaged is a media file whose content no longer matches its name.
var errMediaDamaged = errors.New("its content does not match its name (SHA-256)")

// addMedia adds to the archive the media files the database snapshot at
// db lists, read from root, as data/media/<tenant>/<xx>/<sha256>. A file
// listed but gone (retention may remove it after the snapshot) or damaged
// is left out with a warning: a restore would refuse the whole archive
// over a damaged one, and the rest is still worth having.
func addMedia(ctx context.Context, tw *tar.Writer, db, root string, log *slog.Logger) (mediaCopied, error) {
	var c mediaCopied
	st, err := tenant.Open(db)
	if err != nil {
		return c, fmt.Errorf("reading the backup's list of media files: %w", err)
	}
	list, err := st.MediaFileList(ctx)
	if err = errors.Join(err, st.Close()); err != nil {
		return c, fmt.Errorf("reading the backup's list of media files: %w", err)
	}
	for _, f := range list {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		if !tenant.ValidTenantID(f.TenantID) || !tenant.ValidSHA256(f.SHA256) {
			log.Warn("media file row names no file; left out of the backup", "tenant", f.TenantID, "sha256", f.SHA256)
			c.skipped++
			continue
		}
		src := filepath.Join(root, f.TenantID, f.SHA256[:2], f.SHA256)
		n, err := addMediaFile(tw, path.Join("data/media", f.TenantID, f.SHA256[:2], f.SHA256), src, f.SHA256)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			log.Warn("media file missing on disk; left out of the backup", "tenant", f.TenantID, "sha256", f.SHA256, "path", src)
			c.skipped++
		case errors.Is(err, errMediaDamaged):
			log.Warn("media file damaged on disk: "+err.Error()+"; left out of the backup", "tenant", f.TenantID, "sha256", f.SHA256, "path", src)
			c.skipped++
		case err != nil:
			return c, fmt.Errorf("copying media file %s: %w", src, err)
		default:
			c.files++
			c.bytes += n
		}
	}
	return c, nil
}

// addMediaFile adds the media file at src as name, streaming it twice:
// once to check its content still hashes to sha, then into the archive.
// Media files never change in place, so both reads see the same bytes.
func addMediaFile(tw *tar.Writer, name, src, sha string) (int64, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !info.Mode().IsRegular() {
		return 0, fmt.Errorf("%w: not a regular file", errMediaDamaged)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, err
	}
	if n != info.Size() || hex.EncodeToString(h.Sum(nil)) != sha {
		return 0, errMediaDamaged
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return n, addTarFile(tw, name, f, n)
}

// addMediaLinkKey adds the key that signs media download links, so links
// already sent keep working after a restore; an installation that never
// made one has none to add.
func addMediaLinkKey(tw *tar.Writer, dataDir string) error {
	src := filepath.Join(dataDir, tenant.MediaLinkKeyFile)
	f, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() || info.Size() != tenant.MediaLinkKeySize {
		return fmt.Errorf("the media link key %s is not a file of %d bytes, which a restore would refuse; remove it and restart wabot to make a new one (links already sent stop working)", src, tenant.MediaLinkKeySize)
	}
	return addTarFile(tw, "data/"+tenant.MediaLinkKeyFile, f, info.Size())
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

// Restores are strict about what they unpack and all or nothing: an
// archive is read into staging folders beside the data and sessions
// folders, its database is opened and migrated there, and only then is
// everything moved into place. A refused or broken backup leaves both
// folders as they were.

const (
	maxManifest = 64 << 10 // the manifest is a few lines
	tarBlock    = 512      // each entry's header, counted against the total
)

// restoreLimits bound what one restore unpacks (a decompression bomb
// stops at them).
type restoreLimits struct{ file, total int64 }

// runRestore restores a backup into folders without a database.
func runRestore(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, file string) error {
	if cfg.DatabaseURL != "" {
		return errBackupPostgres
	}
	if _, err := os.Lstat(filepath.Join(cfg.DataDir, "wabot.db")); err == nil {
		return &UsageError{Msg: fmt.Sprintf("%s already holds a database; restore into an empty data folder (stop wabot and move the old one aside first)", cfg.DataDir)}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	dataStage, err := stageFor(cfg.DataDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataStage)
	sessionsStage, err := stageFor(cfg.SessionsDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(sessionsStage)

	restored, err := unpackBackup(f, file, dataStage, sessionsStage, restoreLimits{cfg.RestoreMaxFile, cfg.RestoreMaxTotal})
	if err != nil {
		return err
	}
	// Opening and migrating it where it is staged refuses a database that
	// is damaged or newer than this binary before anything is moved.
	staged := *cfg
	staged.DataDir = dataStage
	db, err := openAndMigrate(ctx, &staged, log)
	if err != nil {
		return fmt.Errorf("%s: its app database cannot be used: %w", file, err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := placeStaged([][2]string{{sessionsStage, cfg.SessionsDir}, {dataStage, cfg.DataDir}}); err != nil {
		return err
	}
	if err := ensureDirs(cfg.DataDir, cfg.SessionsDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %d files from %s (%d media files, %s); start wabot now\n",
		restored.files, file, restored.media, byteSize(restored.mediaBytes))
	return nil
}

// stageFor makes an empty staging folder beside dir, on its file system
// so that moving into place is a rename; inside dir when its parent is
// not writable.
func stageFor(dir string) (string, error) {
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err == nil {
		if stage, err := os.MkdirTemp(filepath.Dir(dir), ".wabot-restore-"); err == nil {
			return stage, nil
		}
	}
	if err := ensureDirs(dir); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(dir, ".wabot-restore-")
	if err != nil {
		return "", fmt.Errorf("creating a staging folder for %s: %w", dir, err)
	}
	return stage, nil
}

// unpacked counts what a restore unpacked: every file, and the media
// files among them.
type unpacked struct {
	files, media int
	mediaBytes   int64
}

// unpackBackup reads a backup into the staging folders: regular files
// (and their folders) only, each at a path the backup writes, each once,
// within the limits; media files only when their content hashes to
// their name. It returns what it unpacked.
func unpackBackup(r io.Reader, file, dataStage, sessionsStage string, lim restoreLimits) (unpacked, error) {
	var restored unpacked
	gz, err := gzip.NewReader(r)
	if err != nil {
		return restored, fmt.Errorf("%s is not a wabot backup: %w", file, err)
	}
	tr := tar.NewReader(gz)
	var total int64
	seen := map[string]bool{}
	sawManifest, sawDB := false, false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return restored, fmt.Errorf("reading %s: %w", file, err)
		}
		refuse := func(why string) error {
			return fmt.Errorf("%s: refusing the archive entry %q: %s", file, h.Name, why)
		}
		name := h.Name
		if !filepath.IsLocal(name) || strings.Contains(name, "\\") || slices.Contains(strings.Split(name, "/"), "..") {
			return restored, refuse("its path leads outside the restore folders")
		}
		if path.Clean(name) != strings.TrimSuffix(name, "/") {
			return restored, refuse("its path is not in plain form")
		}
		if seen[name] {
			return restored, refuse("it appears twice")
		}
		seen[name] = true
		if total += tarBlock; total > lim.total {
			return restored, fmt.Errorf("%s unpacks to more than %s (WABOT_RESTORE_MAX_TOTAL); refusing it", file, byteSize(lim.total))
		}
		switch h.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			dir := strings.TrimSuffix(name, "/")
			id, inSessions := strings.CutPrefix(dir, "sessions/")
			if dir != "data" && dir != "sessions" && !(inSessions && tenant.ValidTenantID(id)) && !mediaFolder(dir) {
				return restored, refuse("a wabot backup has no such folder")
			}
			continue
		case tar.TypeSymlink:
			return restored, refuse("it is a symbolic link; a wabot backup holds regular files only")
		case tar.TypeLink:
			return restored, refuse("it is a hard link; a wabot backup holds regular files only")
		case tar.TypeChar, tar.TypeBlock:
			return restored, refuse("it is a device; a wabot backup holds regular files only")
		case tar.TypeFifo:
			return restored, refuse("it is a named pipe; a wabot backup holds regular files only")
		default:
			return restored, refuse(fmt.Sprintf("it is not a regular file (tar type %q); a wabot backup holds regular files only", h.Typeflag))
		}
		max := lim.file
		if name == backupManifest {
			max = maxManifest
		}
		if h.Size > max {
			return restored, refuse(fmt.Sprintf("it unpacks to %s, more than the %s a file may (WABOT_RESTORE_MAX_FILE)", byteSize(h.Size), byteSize(max)))
		}
		if total += h.Size; total > lim.total {
			return restored, fmt.Errorf("%s unpacks to more than %s (WABOT_RESTORE_MAX_TOTAL); refusing it", file, byteSize(lim.total))
		}
		var dst string
		isMedia := strings.HasPrefix(name, "data/media/")
		switch {
		case name == backupManifest:
			head, err := io.ReadAll(tr)
			if err != nil {
				return restored, fmt.Errorf("reading %s: %w", file, err)
			}
			if !bytes.HasPrefix(head, []byte("wabot backup\n")) {
				return restored, refuse("it is not a wabot backup's manifest")
			}
			sawManifest = true
			continue
		case name == "data/wabot.db":
			dst, sawDB = filepath.Join(dataStage, "wabot.db"), true
		case strings.HasPrefix(name, "sessions/") && strings.HasSuffix(name, "/whatsmeow.db"):
			id := strings.TrimSuffix(strings.TrimPrefix(name, "sessions/"), "/whatsmeow.db")
			if !tenant.ValidTenantID(id) {
				return restored, refuse("a wabot backup has no such file")
			}
			if err := os.MkdirAll(filepath.Join(sessionsStage, id), 0o700); err != nil {
				return restored, err
			}
			dst = filepath.Join(sessionsStage, id, "whatsmeow.db")
		case name == "data/"+tenant.MediaLinkKeyFile:
			if h.Size != tenant.MediaLinkKeySize {
				return restored, refuse(fmt.Sprintf("the media link key is %d bytes, not %d", h.Size, tenant.MediaLinkKeySize))
			}
			if err := stageFile(filepath.Join(dataStage, tenant.MediaLinkKeyFile), tr, h.Size, nil); err != nil {
				return restored, refuse(err.Error())
			}
			restored.files++
			continue
		case isMedia:
			id, sha, why := mediaEntry(name)
			if why != "" {
				return restored, refuse(why)
			}
			dir := filepath.Join(dataStage, "media", id, sha[:2])
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return restored, err
			}
			// Hashed while written: a file that is not what its name says
			// would be served as another, so it refuses the archive.
			hash := sha256.New()
			if err := stageFile(filepath.Join(dir, sha), tr, h.Size, hash); err != nil {
				return restored, refuse(err.Error())
			}
			if got := hex.EncodeToString(hash.Sum(nil)); got != sha {
				return restored, refuse(fmt.Sprintf("its content does not match its name (its SHA-256 is %s); the file is damaged or was changed", got))
			}
			restored.files++
			restored.media++
			restored.mediaBytes += h.Size
			continue
		default:
			return restored, refuse("a wabot backup has no such file")
		}
		if err := writeStaged(dst, tr, h.Size); err != nil {
			return restored, refuse(err.Error())
		}
		restored.files++
	}
	if !sawManifest {
		return restored, fmt.Errorf("%s is not a wabot backup (no %s)", file, backupManifest)
	}
	if !sawDB {
		return restored, fmt.Errorf("%s holds no app database (data/wabot.db); it is not a complete wabot backup", file)
	}
	return restored, nil
}

// mediaEntry checks an archive path under data/media/: a media file is at
// data/media/<tenant id>/<first two digits of its SHA-256>/<its SHA-256>.
// why says what is wrong with any other path.
func mediaEntry(name string) (tenantID, sha, why string) {
	parts := strings.Split(name, "/")
	switch {
	case len(parts) != 5 || parts[0] != "data" || parts[1] != "media":
		return "", "", "a wabot backup has no such file (media files are data/media/<tenant id>/<xx>/<sha256>)"
	case !tenant.ValidTenantID(parts[2]):
		return "", "", fmt.Sprintf("%q is not a tenant id", parts[2])
	case !tenant.ValidSHA256(parts[4]) || parts[3] != parts[4][:2]:
		return "", "", "a media file's name is its SHA-256 (64 lower-case hex digits), in a folder named after its first two"
	}
	return parts[2], parts[4], ""
}

// mediaFolder reports whether dir is a folder on a media file's path:
// data/media, data/media/<tenant id> or data/media/<tenant id>/<xx>.
func mediaFolder(dir string) bool {
	parts := strings.Split(dir, "/")
	if len(parts) < 2 || len(parts) > 4 || parts[0] != "data" || parts[1] != "media" {
		return false
	}
	if len(parts) >= 3 && !tenant.ValidTenantID(parts[2]) {
		return false
	}
	return len(parts) < 4 || tenant.ValidSHA256(parts[3]+strings.Repeat("0", 62))
}

// stageFile writes size bytes from r to a new file dst (mode 0600),
// passing them to also (a hash) when it is not nil.
func stageFile(dst string, r io.Reader, size int64, also io.Writer) error {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var w io.Writer = out
	if also != nil {
		w = io.MultiWriter(out, also)
	}
	n, err := io.Copy(w, io.LimitReader(r, size))
	if err = errors.Join(err, out.Close()); err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("it ends after %d of its %d bytes", n, size)
	}
	return nil
}

// writeStaged writes one database file of size bytes from r, and checks
// it is one (a backup's other files are all SQLite databases).
func writeStaged(dst string, r io.Reader, size int64) error {
	if err := stageFile(dst, r, size, nil); err != nil {
		return err
	}
	head := make([]byte, 16)
	in, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := io.ReadFull(in, head); err != nil || string(head) != "SQLite format 3\x00" {
		return errors.New("it is not an SQLite database")
	}
	return nil
}

// placeStaged moves each staging folder's contents into its target
// without replacing anything, after checking nothing is in the way. On a
// failure midway it moves back what it moved.
func placeStaged(pairs [][2]string) error {
	for _, p := range pairs {
		if err := inTheWay(p[0], p[1]); err != nil {
			return err
		}
	}
	var done [][2]string
	for _, p := range pairs {
		if err := place(p[0], p[1], &done); err != nil {
			for i := len(done) - 1; i >= 0; i-- {
				os.Rename(done[i][1], done[i][0])
			}
			return err
		}
	}
	return nil
}

// inTheWay reports a file under target that a file under stage would
// replace.
func inTheWay(stage, target string) error {
	return filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(stage, p)
		if _, err := os.Lstat(filepath.Join(target, rel)); err == nil {
			return fmt.Errorf("%s exists; restore into empty folders", filepath.Join(target, rel))
		}
		return nil
	})
}

// place moves stage to target: the whole folder when target does not
// exist, else entry by entry. Each move is appended to done.
func place(stage, target string, done *[][2]string) error {
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(stage, target); err != nil {
			return err
		}
		*done = append(*done, [2]string{stage, target})
		return nil
	} else if err != nil {
		return err
	}
	entries, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(stage, e.Name()), filepath.Join(target, e.Name())
		if e.IsDir() {
			if err := place(from, to, done); err != nil {
				return err
			}
			continue
		}
		if _, err := os.Lstat(to); err == nil {
			return fmt.Errorf("%s exists; restore into empty folders", to)
		}
		if err := os.Rename(from, to); err != nil {
			return err
		}
		*done = append(*done, [2]string{from, to})
	}
	return nil
}

// byteSize writes n in the units the size settings take.
func byteSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
