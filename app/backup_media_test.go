package app

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// mediaSource is a data folder with two tenants' media, as a running
// wabot leaves it.
type mediaSource struct {
	data, sessions string
	a, b           string // tenant ids
	msgA           int64  // tenant a's inbound image message
	kept           []tenant.MediaFile
	// A listed file gone from disk, one whose content changed on disk, and
	// a file on disk no row lists.
	lost, damaged, orphan string
	token                 string // a media link made before the backup
}

func randomBytes(t *testing.T, prefix string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return append([]byte(prefix), b...)
}

func newMediaSource(t *testing.T) *mediaSource {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	s := &mediaSource{data: filepath.Join(root, "data"), sessions: filepath.Join(root, "sessions")}
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		t.Fatal(err)
	}
	st := tenanttest.OpenAt(t, filepath.Join(s.data, "wabot.db"))
	u, err := st.EnsureUser(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ta, err := st.CreateTenant(ctx, u.ID, "Shop A", true)
	if err != nil {
		t.Fatal(err)
	}
	u2, err := st.EnsureUser(ctx, "other@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := st.CreateTenant(ctx, u2.ID, "Shop B", true)
	if err != nil {
		t.Fatal(err)
	}
	s.a, s.b = ta.ID, tb.ID
	media, err := tenant.NewMediaStore(st, filepath.Join(s.data, "media"), tenant.DefaultMediaLimits())
	if err != nil {
		t.Fatal(err)
	}
	img := randomBytes(t, "\x89PNG\r\n\x1a\n", 2000)
	s.msgA, _, err = st.StoreInbound(ctx, s.a, tenant.Inbound{Chat: "1555@s.whatsapp.net", WAID: "W1", Kind: "image", Body: "broken",
		Status: tenant.MsgReceived, Media: &tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/png", Caption: "broken"}})
	if err != nil {
		t.Fatal(err)
	}
	put := func(f tenant.MediaFile, err error) tenant.MediaFile {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	s.kept = []tenant.MediaFile{
		put(media.SaveMessageFile(ctx, s.a, s.msgA, tenant.MediaInput{Kind: tenant.MediaImage, MIME: "image/png", Body: bytes.NewReader(img)})),
		// Several megabytes: more than any one buffer of the copy.
		put(media.Put(ctx, s.b, tenant.MediaInput{Kind: tenant.MediaDocument, MIME: "application/pdf", Body: bytes.NewReader(randomBytes(t, "%PDF-1.4\n", 3<<20))}, time.Hour)),
		// The same content in the other tenant is that tenant's own file.
		put(media.Put(ctx, s.b, tenant.MediaInput{Kind: tenant.MediaImage, MIME: "image/png", Body: bytes.NewReader(img)}, time.Hour)),
	}
	lost := put(media.Put(ctx, s.b, tenant.MediaInput{Kind: tenant.MediaDocument, Body: strings.NewReader("lost")}, time.Hour))
	s.lost = lost.SHA256
	if err := os.Remove(filepath.Join(s.data, "media", s.b, s.lost[:2], s.lost)); err != nil {
		t.Fatal(err)
	}
	damaged := put(media.Put(ctx, s.a, tenant.MediaInput{Kind: tenant.MediaDocument, Body: strings.NewReader("damaged")}, time.Hour))
	s.damaged = damaged.SHA256
	if err := os.WriteFile(filepath.Join(s.data, "media", s.a, s.damaged[:2], s.damaged), []byte("bit rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.orphan = s.kept[0].SHA256[:2] + strings.Repeat("0", 62)
	if err := os.WriteFile(filepath.Join(s.data, "media", s.a, s.orphan[:2], s.orphan), []byte("no row"), 0o600); err != nil {
		t.Fatal(err)
	}
	links, err := tenant.OpenMediaLinks(s.data)
	if err != nil {
		t.Fatal(err)
	}
	s.token = links.Token(s.a, s.msgA, time.Now().Add(time.Hour))
	if err := os.MkdirAll(filepath.Join(s.sessions, s.a), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.sessions, s.a, "whatsmeow.db"), sqliteFile(t, false, false), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *mediaSource) path(f tenant.MediaFile) string {
	return filepath.Join(s.data, "media", f.TenantID, f.SHA256[:2], f.SHA256)
}

// readArchive returns every entry of a backup with its content.
func readArchive(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
	}
}

// TestBackupRestoreCarriesMedia: a backup holds the media files its
// database lists (not one it lost, which it warns about, nor a stray file
// on disk) and the link key; restored into empty folders they are the
// same bytes with private modes, the restored app serves them, and a link
// made before the backup still works.
func TestBackupRestoreCarriesMedia(t *testing.T) {
	ctx := context.Background()
	s := newMediaSource(t)
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	var out, errOut bytes.Buffer
	if err := Run(ctx, []string{"backup", file}, envFrom(map[string]string{"WABOT_DATA_DIR": s.data, "WABOT_SESSIONS_DIR": s.sessions}), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range s.kept {
		total += f.Size
	}
	if !strings.Contains(out.String(), "1 tenant device stores and 3 media files ("+byteSize(total)+")") ||
		!strings.Contains(out.String(), "2 media files the database lists were left out") {
		t.Fatalf("backup said: %s", out.String())
	}
	if !strings.Contains(errOut.String(), "missing on disk") || !strings.Contains(errOut.String(), s.lost) {
		t.Fatalf("no warning about the lost file %s: %s", s.lost, errOut.String())
	}
	if !strings.Contains(errOut.String(), "damaged on disk") || !strings.Contains(errOut.String(), s.damaged) {
		t.Fatalf("no warning about the damaged file %s: %s", s.damaged, errOut.String())
	}

	entries := readArchive(t, file)
	want := []string{backupManifest, "data/wabot.db", "sessions/" + s.a + "/whatsmeow.db", "data/media-links.key"}
	for _, f := range s.kept {
		want = append(want, "data/media/"+f.TenantID+"/"+f.SHA256[:2]+"/"+f.SHA256)
	}
	if got := keys(entries); !equalSets(got, want) {
		t.Fatalf("archive holds %q, want %q", got, want)
	}
	if m := string(entries[backupManifest]); !strings.Contains(m, "media files: 3 ("+strconv.FormatInt(total, 10)+" bytes)\n") {
		t.Fatalf("manifest:\n%s", m)
	}

	dst := t.TempDir()
	data, sessions := filepath.Join(dst, "data"), filepath.Join(dst, "sessions")
	out.Reset()
	if err := Run(ctx, []string{"restore", file}, envFrom(map[string]string{"WABOT_DATA_DIR": data, "WABOT_SESSIONS_DIR": sessions}), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "restored 6 files") || !strings.Contains(out.String(), "(3 media files, "+byteSize(total)+")") {
		t.Fatalf("restore said: %s", out.String())
	}
	restoredRoot := &mediaSource{data: data}
	for _, f := range s.kept {
		orig, _ := os.ReadFile(s.path(f))
		got, err := os.ReadFile(restoredRoot.path(f))
		if err != nil || !bytes.Equal(got, orig) {
			t.Fatalf("restored %s/%s: %d bytes, %v; want the %d bytes backed up", f.TenantID, f.SHA256, len(got), err, len(orig))
		}
		wantMode(t, restoredRoot.path(f), 0o600)
		for dir := filepath.Dir(restoredRoot.path(f)); dir != data; dir = filepath.Dir(dir) {
			wantMode(t, dir, 0o700)
		}
	}
	for _, gone := range []string{filepath.Join(data, "media", s.b, s.lost[:2], s.lost), filepath.Join(data, "media", s.a, s.damaged[:2], s.damaged),
		filepath.Join(data, "media", s.a, s.orphan[:2], s.orphan)} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was restored (%v)", gone, err)
		}
	}
	origKey, _ := os.ReadFile(filepath.Join(s.data, "media-links.key"))
	if key, err := os.ReadFile(filepath.Join(data, "media-links.key")); err != nil || !bytes.Equal(key, origKey) {
		t.Fatalf("restored key %x %v, want %x", key, err, origKey)
	}
	wantMode(t, filepath.Join(data, "media-links.key"), 0o600)
	links, err := tenant.OpenMediaLinks(data)
	if err != nil {
		t.Fatal(err)
	}
	if id, msg, err := links.Check(s.token, time.Now()); err != nil || id != s.a || msg != s.msgA {
		t.Fatalf("a link made before the backup checks as %s %d %v after the restore", id, msg, err)
	}

	// The restored app's media store serves the files by their rows.
	st := tenanttest.OpenAt(t, filepath.Join(data, "wabot.db"))
	media, err := tenant.NewMediaStore(st, filepath.Join(data, "media"), tenant.DefaultMediaLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.kept {
		mf, fh, err := media.Open(ctx, f.TenantID, f.SHA256)
		if err != nil {
			t.Fatalf("opening restored %s/%s: %v", f.TenantID, f.SHA256, err)
		}
		h := sha256.New()
		io.Copy(h, fh)
		fh.Close()
		if hex.EncodeToString(h.Sum(nil)) != f.SHA256 || mf.Size != f.Size {
			t.Fatalf("restored store serves %+v with other content", mf)
		}
	}
	md, err := st.MessageMediaOf(ctx, s.a, s.msgA)
	if err != nil || md.Status != tenant.MediaStored || md.SHA256 != s.kept[0].SHA256 {
		t.Fatalf("restored message media %+v %v", md, err)
	}
}

// TestBackupBeforeMediaRestores: a database from before media existed
// (schema 6, no media folder, no link key) backs up and restores, and is
// migrated on the way.
func TestBackupBeforeMediaRestores(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	srcData := filepath.Join(src, "data")
	os.MkdirAll(srcData, 0o700)
	// Schema 6 as a release before media made it: its own migrations,
	// read from the source tree, so later migrations need no undoing here.
	raw := tenanttest.Raw(t, filepath.Join(srcData, "wabot.db"))
	for v := 1; v <= 6; v++ {
		files, _ := filepath.Glob(filepath.Join("..", "tenant", "migrations", fmt.Sprintf("%04d_*.sql", v)))
		if len(files) != 1 {
			t.Fatalf("migration %d: %v", v, files)
		}
		body, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", files[0], err)
		}
	}
	if _, err := raw.Exec(`PRAGMA user_version = 6`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	var out bytes.Buffer
	if err := Run(ctx, []string{"backup", file}, envFrom(map[string]string{"WABOT_DATA_DIR": srcData, "WABOT_SESSIONS_DIR": filepath.Join(src, "sessions")}), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 media files") {
		t.Fatalf("backup said: %s", out.String())
	}
	if got := keys(readArchive(t, file)); !equalSets(got, []string{backupManifest, "data/wabot.db"}) {
		t.Fatalf("archive holds %q", got)
	}
	data := filepath.Join(t.TempDir(), "data")
	if err := Run(ctx, []string{"restore", file}, envFrom(map[string]string{"WABOT_DATA_DIR": data, "WABOT_SESSIONS_DIR": filepath.Join(filepath.Dir(data), "sessions")}), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	st := tenanttest.OpenAt(t, filepath.Join(data, "wabot.db"))
	if u, err := st.MediaUsageByTenant(ctx); err != nil || len(u) != 0 {
		t.Fatalf("restored media usage %v %v", u, err)
	}
}

// TestRestoreRefusesBadMedia: an archive whose media entries are not what
// wabot backup writes is refused with a sentence naming the entry, and
// leaves the folders exactly as they were, even when good media files
// were unpacked before the bad one.
func TestRestoreRefusesBadMedia(t *testing.T) {
	manifest := tarEntry{name: backupManifest, body: []byte("wabot backup\nversion: test\n")}
	db := tarEntry{name: "data/wabot.db", body: sqliteFile(t, true, false)}
	id := tenant.NewID("t")
	file := func(tenantID string, body []byte) tarEntry {
		sum := sha256.Sum256(body)
		sha := hex.EncodeToString(sum[:])
		return tarEntry{name: "data/media/" + tenantID + "/" + sha[:2] + "/" + sha, body: body}
	}
	good := file(id, []byte("a good file"))
	swapped := file(id, []byte("what the name says"))
	swapped.body = []byte("something else")
	// at puts body under the folder and name given.
	at := func(folder, name string, body []byte) tarEntry {
		return tarEntry{name: "data/media/" + id + "/" + folder + "/" + name, body: body}
	}
	sumX := sha256.Sum256([]byte("x"))
	shaX := hex.EncodeToString(sumX[:])
	upperX := strings.ToUpper(shaX)
	cases := []struct {
		name    string
		env     map[string]string
		entries []tarEntry
		want    string
		whole   bool // the error is about the archive or the folders, not the last entry
	}{
		{"content not its name", nil, []tarEntry{manifest, db, good, swapped}, "does not match its name", false},
		{"parent path", nil, []tarEntry{manifest, db, good, {name: "data/media/../x", body: []byte("x")}}, "leads outside", false},
		{"tenant id leading out", nil, []tarEntry{manifest, db, file("../../etc", []byte("z"))}, "leads outside", false},
		{"not a tenant id", nil, []tarEntry{manifest, db, good, file("Not-A-Tenant", []byte("z"))}, `"Not-A-Tenant" is not a tenant id`, false},
		{"wrong folder", nil, []tarEntry{manifest, db, at("zz", shaX, []byte("x"))}, "in a folder named after its first two", false},
		{"upper-case name", nil, []tarEntry{manifest, db, at(upperX[:2], upperX, []byte("x"))}, "64 lower-case hex digits", false},
		{"short name", nil, []tarEntry{manifest, db, at(shaX[:2], shaX[:63], []byte("x"))}, "64 lower-case hex digits", false},
		{"too deep", nil, []tarEntry{manifest, db, {name: good.name + "/x", body: []byte("x")}}, "no such file", false},
		{"folder of no tenant", nil, []tarEntry{manifest, db, {name: "data/media/nope/", typ: tar.TypeDir}}, "no such folder", false},
		{"symbolic link", nil, []tarEntry{manifest, db, {name: good.name, typ: tar.TypeSymlink, link: "/etc/passwd"}}, "symbolic link", false},
		{"short key", nil, []tarEntry{manifest, db, good, {name: "data/media-links.key", body: make([]byte, 31)}}, "media link key is 31 bytes", false},
		{"long key", nil, []tarEntry{manifest, db, {name: "data/media-links.key", body: make([]byte, 33)}}, "media link key is 33 bytes", false},
		{"media file over the cap", map[string]string{"WABOT_RESTORE_MAX_FILE": "1M"},
			[]tarEntry{manifest, db, file(id, make([]byte, 2<<20))}, "more than the 1M a file may", false},
		{"media over the total", map[string]string{"WABOT_RESTORE_MAX_FILE": "1M", "WABOT_RESTORE_MAX_TOTAL": "1M"},
			[]tarEntry{manifest, db, file(id, make([]byte, 600<<10)), file(id, make([]byte, 600<<10+1))}, "more than 1M", true},
		{"key already there", nil, []tarEntry{manifest, db, good, {name: "data/media-links.key", body: make([]byte, 32)}}, "exists; restore into empty folders", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			data, sessions := filepath.Join(root, "data"), filepath.Join(root, "sessions")
			os.MkdirAll(filepath.Join(data, "media"), 0o700)
			os.MkdirAll(sessions, 0o700)
			if c.name == "key already there" {
				os.WriteFile(filepath.Join(data, "media-links.key"), []byte("the key in use"), 0o600)
			}
			before := snapshot(t, root)
			vars := map[string]string{"WABOT_DATA_DIR": data, "WABOT_SESSIONS_DIR": sessions}
			maps.Copy(vars, c.env)
			archive := writeArchive(t, c.entries)
			err := Run(context.Background(), []string{"restore", archive}, envFrom(vars), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore: %v, want an error saying %q", err, c.want)
			}
			if last := c.entries[len(c.entries)-1]; !c.whole && !strings.Contains(err.Error(), `"`+last.name+`"`) {
				t.Fatalf("the error does not name the entry %q: %v", last.name, err)
			}
			if after := snapshot(t, root); !maps.Equal(before, after) {
				t.Fatalf("a refused restore changed the folders:\nbefore %q\nafter  %q", before, after)
			}
		})
	}

	// The same entries, well formed, restore: the cases fail for the
	// reason they name.
	root := t.TempDir()
	vars := map[string]string{"WABOT_DATA_DIR": filepath.Join(root, "data"), "WABOT_SESSIONS_DIR": filepath.Join(root, "sessions")}
	archive := writeArchive(t, []tarEntry{manifest, db, {name: "data/media/", typ: tar.TypeDir}, {name: "data/media/" + id + "/", typ: tar.TypeDir},
		good, file(id, []byte("what the name says")), {name: "data/media-links.key", body: make([]byte, 32)}})
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"restore", archive}, envFrom(vars), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "restored 4 files") || !strings.Contains(out.String(), "(2 media files, ") {
		t.Fatalf("restore said: %s", out.String())
	}
}

func wantMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != mode {
		t.Fatalf("%s: mode %v, want %v", path, info.Mode().Perm(), mode)
	}
}

func keys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

func equalSets(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
