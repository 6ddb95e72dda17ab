package tenant_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// mediaRig is a store with a media store over real folders.
type mediaRig struct {
	st    *tenant.Store
	clock *clock
	media *tenant.MediaStore
	root  string
}

func newMediaRig(t *testing.T, limits tenant.MediaLimits) *mediaRig {
	t.Helper()
	st, c := openStore(t)
	root := filepath.Join(t.TempDir(), "media")
	m, err := tenant.NewMediaStore(st, root, limits)
	if err != nil {
		t.Fatal(err)
	}
	return &mediaRig{st: st, clock: c, media: m, root: root}
}

// imageMessage stores an inbound image message from chat with its media
// row pending, as the bot's inbound path will.
func (r *mediaRig) imageMessage(t *testing.T, tenantID, waID string) int64 {
	t.Helper()
	return storeIn(t, r.st, tenantID, tenant.Inbound{Chat: "1555@s.whatsapp.net", WAID: waID, Kind: "image", Body: "broken",
		Media: &tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/png", Caption: "broken", Width: 4, Height: 3}})
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pngBytes(t *testing.T, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.RGBA{R: seed, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readAll(t *testing.T, m *tenant.MediaStore, tenantID, sha string) []byte {
	t.Helper()
	_, f, err := m.Open(context.Background(), tenantID, sha)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMediaSentTwiceIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	content := pngBytes(t, 1)
	first := r.imageMessage(t, tn.ID, "w1")
	second := r.imageMessage(t, tn.ID, "w2")
	for _, id := range []int64{first, second} {
		f, err := r.media.SaveMessageFile(ctx, tn.ID, id, tenant.MediaInput{Kind: tenant.MediaImage, MIME: "image/png", Size: int64(len(content)), Body: bytes.NewReader(content)})
		if err != nil {
			t.Fatal(err)
		}
		if f.SHA256 != shaOf(content) || f.Size != int64(len(content)) || f.MIME != "image/png" {
			t.Fatalf("stored %+v, want the PNG's hash, size and type", f)
		}
	}

	sha := shaOf(content)
	want := filepath.Join(tn.ID, sha[:2], sha)
	if got := files(t, r.root); !slices.Equal(got, []string{want}) {
		t.Fatalf("files on disk %v, want only %s", got, want)
	}
	for path, mode := range map[string]fs.FileMode{
		filepath.Join(r.root, want):           0o600,
		filepath.Join(r.root, tn.ID):          fs.ModeDir | 0o700,
		filepath.Join(r.root, tn.ID, sha[:2]): fs.ModeDir | 0o700,
		r.root:                                fs.ModeDir | 0o700,
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", path, info.Mode(), mode)
		}
	}
	for _, id := range []int64{first, second} {
		md, err := r.st.MessageMediaOf(ctx, tn.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if md.Status != tenant.MediaStored || md.SHA256 != sha || md.Caption != "broken" || md.Width != 4 || md.Height != 3 {
			t.Fatalf("message %d's media %+v, want stored with the file and its caption and size", id, md)
		}
	}
	if got := readAll(t, r.media, tn.ID, sha); !bytes.Equal(got, content) {
		t.Fatal("the bytes read back differ from those stored")
	}
	if u, err := r.st.MediaUsage(ctx, tn.ID); err != nil || u != (tenant.MediaUsage{Bytes: int64(len(content)), Files: 1}) {
		t.Fatalf("usage %+v, %v; want one file of %d bytes", u, err, len(content))
	}
}

// failingReader gives some bytes, then fails: a download cut off.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), f.n)
	for i := range k {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func TestMediaRefusalsAndFailedWritesLeaveNothingBehind(t *testing.T) {
	ctx := context.Background()
	limits := tenant.MediaLimits{MaxImage: 8 << 10, MaxSticker: 8 << 10, MaxAudio: 8 << 10, MaxVideo: 8 << 10, MaxDocument: 20 << 10, TenantQuota: 24 << 10}
	r := newMediaRig(t, limits)
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	doc := func(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

	// 16 KB of the 24 KB quota taken.
	kept := doc(16<<10, 'a')
	id := storeIn(t, r.st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "keep", Kind: "document",
		Media: &tenant.MessageMedia{Kind: tenant.MediaDocument, MIME: "text/plain", FileName: "a.txt"}})
	if _, err := r.media.SaveMessageFile(ctx, tn.ID, id, tenant.MediaInput{Kind: tenant.MediaDocument, MIME: "text/plain", Body: bytes.NewReader(kept)}); err != nil {
		t.Fatal(err)
	}
	keptPath := filepath.Join(tn.ID, shaOf(kept)[:2], shaOf(kept))

	cases := []struct {
		name string
		in   tenant.MediaInput
		code tenant.Code
	}{
		{"image declared over its cap", tenant.MediaInput{Kind: tenant.MediaImage, Size: 9 << 10, Body: bytes.NewReader(doc(9<<10, 'b'))}, tenant.CodeTooLarge},
		{"image over its cap, size unknown", tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(doc(9<<10, 'b'))}, tenant.CodeTooLarge},
		{"image declared small but over its cap", tenant.MediaInput{Kind: tenant.MediaImage, Size: 10, Body: bytes.NewReader(doc(9<<10, 'b'))}, tenant.CodeTooLarge},
		{"voice note over the audio cap", tenant.MediaInput{Kind: tenant.MediaVoice, Body: bytes.NewReader(doc(9<<10, 'b'))}, tenant.CodeTooLarge},
		{"document over the quota, declared", tenant.MediaInput{Kind: tenant.MediaDocument, Size: 9 << 10, Body: bytes.NewReader(doc(9<<10, 'c'))}, tenant.CodeQuotaExceeded},
		{"document over the quota, size unknown", tenant.MediaInput{Kind: tenant.MediaDocument, Body: bytes.NewReader(doc(9<<10, 'c'))}, tenant.CodeQuotaExceeded},
		{"empty file", tenant.MediaInput{Kind: tenant.MediaDocument, Body: bytes.NewReader(nil)}, tenant.CodeInvalid},
		{"a location has no file", tenant.MediaInput{Kind: tenant.MediaLocation, Body: bytes.NewReader(doc(10, 'd'))}, tenant.CodeInvalid},
		{"download cut off", tenant.MediaInput{Kind: tenant.MediaDocument, Body: &failingReader{n: 6 << 10}}, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kind := string(c.in.Kind)
			msg := storeIn(t, r.st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "w" + string(rune('a'+i)), Kind: kind,
				Media: &tenant.MessageMedia{Kind: c.in.Kind}})
			_, err := r.media.SaveMessageFile(ctx, tn.ID, msg, c.in)
			if err == nil {
				t.Fatal("stored; want a refusal")
			}
			if c.code != "" {
				wantCode(t, err, c.code)
				var e *tenant.Error
				if errors.As(err, &e); e.Msg == "" || !strings.HasSuffix(e.Msg, ".") {
					t.Errorf("message %q is not a sentence", e.Msg)
				}
			}
			if got := files(t, r.root); !slices.Equal(got, []string{keptPath}) {
				t.Fatalf("files on disk %v, want only the first document", got)
			}
			if u, _ := r.st.MediaUsage(ctx, tn.ID); u.Files != 1 || u.Bytes != int64(len(kept)) {
				t.Fatalf("usage %+v, want the first document only", u)
			}
			md, err := r.st.MessageMediaOf(ctx, tn.ID, msg)
			if err != nil {
				t.Fatal(err)
			}
			if md.SHA256 != "" || (md.Status != tenant.MediaPending && md.Status != tenant.MediaNoFile) {
				t.Fatalf("the refused message's media is %+v, want it still without a file", md)
			}
		})
	}

	// The same content again does not count twice against the quota.
	again := storeIn(t, r.st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "again", Kind: "document",
		Media: &tenant.MessageMedia{Kind: tenant.MediaDocument}})
	if _, err := r.media.SaveMessageFile(ctx, tn.ID, again, tenant.MediaInput{Kind: tenant.MediaDocument, Body: bytes.NewReader(kept)}); err != nil {
		t.Fatalf("storing a file the tenant has: %v", err)
	}
}

func TestMediaTypeIsSniffedAndCorrected(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	content := pngBytes(t, 2)
	id := storeIn(t, r.st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "w", Kind: "document",
		Media: &tenant.MessageMedia{Kind: tenant.MediaDocument, MIME: "application/pdf", FileName: `C:\Users\x\invoice.pdf`}})
	f, err := r.media.SaveMessageFile(ctx, tn.ID, id, tenant.MediaInput{Kind: tenant.MediaDocument, MIME: "application/pdf", Body: bytes.NewReader(content)})
	if err != nil {
		t.Fatal(err)
	}
	md, err := r.st.MessageMediaOf(ctx, tn.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.MIME != "image/png" || md.MIME != "image/png" {
		t.Fatalf("a PNG declared application/pdf is stored as %q (message says %q), want image/png", f.MIME, md.MIME)
	}
	if md.FileName != "invoice.pdf" {
		t.Fatalf("file name %q, want the name without the sender's path", md.FileName)
	}

	ogg := append([]byte("OggS\x00\x02"), append(make([]byte, 22), "OpusHead\x01\x01"...)...)
	m4a := append([]byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"), make([]byte, 16)...)
	mp4 := append([]byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"), make([]byte, 16)...)
	webp := []byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00")
	docx := append([]byte("PK\x03\x04\x14\x00\x06\x00"), []byte("\x08\x00\x00\x00!\x00[Content_Types].xml ... PK\x03\x04 word/document.xml")...)
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	html := []byte(`<!DOCTYPE html><html><script>alert(1)</script></html>`)
	cases := []struct {
		name, declared string
		content        []byte
		want           string
		inline         bool
	}{
		{"png declared pdf", "application/pdf", content, "image/png", true},
		{"voice note", "audio/ogg; codecs=opus", ogg, "audio/ogg; codecs=opus", true},
		{"opus declared as octet-stream", "application/octet-stream", ogg, "audio/ogg; codecs=opus", true},
		{"m4a", "", m4a, "audio/mp4", true},
		{"mp4 declared 3gpp", "video/3gpp", mp4, "video/mp4", true},
		{"webp sticker", "image/webp", webp, "image/webp", true},
		{"pdf declared png", "image/png", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "application/pdf", false},
		{"docx", "application/zip", docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", false},
		{"svg", "image/svg+xml", svg, "image/svg+xml", false},
		{"svg declared png", "image/png", svg, "image/svg+xml", false},
		{"html declared jpeg", "image/jpeg", html, "text/html; charset=utf-8", false},
		{"unknown bytes declared png", "image/png", []byte("\x00\x01\x02\x03 not an image"), "application/octet-stream", false},
		{"csv stays csv", "text/csv", []byte("a,b\n1,2\n"), "text/csv", false},
		{"unreadable declared type", "image/", []byte("a,b\n1,2\n"), "text/plain; charset=utf-8", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := tenant.SniffMIME(c.declared, c.content)
			if got != c.want {
				t.Fatalf("SniffMIME(%q, ...) = %q, want %q", c.declared, got, c.want)
			}
			if tenant.InlineMIME(got) != c.inline {
				t.Fatalf("InlineMIME(%q) = %v, want %v", got, !c.inline, c.inline)
			}
		})
	}
	for _, typ := range []string{"image/svg+xml", "text/html", "application/xhtml+xml", "application/pdf", "text/plain", ""} {
		if tenant.InlineMIME(typ) {
			t.Errorf("InlineMIME(%q) is true; it must be served as a download", typ)
		}
	}
}

func TestMediaGoesWithItsLastMessage(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	content := pngBytes(t, 3)
	sha := shaOf(content)
	save := func(id int64) {
		if _, err := r.media.SaveMessageFile(ctx, tn.ID, id, tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(content)}); err != nil {
			t.Fatal(err)
		}
		if err := r.st.SetInboundStatus(ctx, id, tenant.MsgReplied, ""); err != nil {
			t.Fatal(err)
		}
	}
	older := r.imageMessage(t, tn.ID, "w1")
	save(older)
	r.clock.Advance(10 * 24 * time.Hour)
	newer := r.imageMessage(t, tn.ID, "w2")
	save(newer)
	onDisk := filepath.Join(r.root, tn.ID, sha[:2], sha)

	// The older message goes; the newer one still shows the file.
	n, err := r.st.RemoveOldMessages(ctx, t0.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want the older message", n, err)
	}
	if _, err := os.Stat(onDisk); err != nil {
		t.Fatalf("the file went while a message still refers to it: %v", err)
	}
	if got := readAll(t, r.media, tn.ID, sha); !bytes.Equal(got, content) {
		t.Fatal("the file changed")
	}
	_, err = r.st.MessageMediaOf(ctx, tn.ID, older)
	wantNotFound(t, err)

	// The last message goes, and the file with it.
	n, err = r.st.RemoveOldMessages(ctx, t0.Add(11*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want the newer message", n, err)
	}
	if _, err := os.Stat(onDisk); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the file is still on disk after its last message went: %v", err)
	}
	_, err = r.media.File(ctx, tn.ID, sha)
	wantNotFound(t, err)
	if u, err := r.st.MediaUsage(ctx, tn.ID); err != nil || u != (tenant.MediaUsage{}) {
		t.Fatalf("usage %+v, %v; want none", u, err)
	}
}

func TestUploadIsKeptUntilItsTimeThenSwept(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	content := []byte("%PDF-1.4 price list")
	f, err := r.media.Put(ctx, tn.ID, tenant.MediaInput{Kind: tenant.MediaDocument, MIME: "application/pdf", Body: bytes.NewReader(content)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.media.Sweep(ctx); err != nil || res != (tenant.SweepResult{}) {
		t.Fatalf("sweep %+v, %v; want an upload within its time kept", res, err)
	}

	// Sent in a message before its time ran out: it stays with the message.
	sent := storeIn(t, r.st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "w", Kind: "document",
		Media: &tenant.MessageMedia{Kind: tenant.MediaDocument, FileName: "prices.pdf"}})
	if _, err := r.media.AttachFile(ctx, tn.ID, sent, f.SHA256); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(2 * time.Hour)
	if res, err := r.media.Sweep(ctx); err != nil || res != (tenant.SweepResult{}) {
		t.Fatalf("sweep %+v, %v; want a file a message refers to kept", res, err)
	}

	// Another upload never sent goes once its time is over.
	other, err := r.media.Put(ctx, tn.ID, tenant.MediaInput{Kind: tenant.MediaDocument, Body: strings.NewReader("never sent")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(2 * time.Hour)
	res, err := r.media.Sweep(ctx)
	if err != nil || res.Unreferenced != 1 || res.Bytes != other.Size {
		t.Fatalf("sweep %+v, %v; want the unsent upload removed", res, err)
	}
	if got := files(t, r.root); !slices.Equal(got, []string{filepath.Join(tn.ID, f.SHA256[:2], f.SHA256)}) {
		t.Fatalf("files on disk %v, want only the sent one", got)
	}
}

func TestSweepRemovesWhatACrashLeft(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	content := pngBytes(t, 4)
	id := r.imageMessage(t, tn.ID, "w")
	if _, err := r.media.SaveMessageFile(ctx, tn.ID, id, tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
	write := func(rel string, b []byte, age time.Duration) {
		path := filepath.Join(r.root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	orphan := []byte("a file whose row was deleted before the crash")
	osha := shaOf(orphan)
	write(filepath.Join(tn.ID, osha[:2], osha), orphan, 2*tenant.SweepTempAge)
	// Another instance sharing the folder stores its file a moment before
	// its row commits: a young file without a row stays.
	young := []byte("another instance's upload, its row not committed yet")
	ysha := shaOf(young)
	write(filepath.Join(tn.ID, ysha[:2], ysha), young, 0)
	write(filepath.Join(tn.ID, ".part-old"), []byte("half a download"), 2*tenant.SweepTempAge)
	write(filepath.Join(tn.ID, ".part-now"), []byte("a download under way"), 0)
	gone := tenant.NewID("t")
	write(filepath.Join(gone, "ab", strings.Repeat("ab", 32)), []byte("a deleted tenant's file"), 0)
	write("README", []byte("not wabot's"), 0)

	res, err := r.media.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Orphans != 1 || res.Temporary != 1 || res.Tenants != 1 || res.Unreferenced != 0 {
		t.Fatalf("sweep %+v, want one orphan, one old half-written file and one gone tenant's folder", res)
	}
	sha := shaOf(content)
	want := []string{"README", filepath.Join(tn.ID, ".part-now"), filepath.Join(tn.ID, sha[:2], sha), filepath.Join(tn.ID, ysha[:2], ysha)}
	got := files(t, r.root)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("files after the sweep %v, want %v", got, want)
	}
	if b := readAll(t, r.media, tn.ID, sha); !bytes.Equal(b, content) {
		t.Fatal("the stored file changed")
	}
}

func TestMediaUsagePerTenant(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, a := newTenant(t, r.st, "a@example.com", "A")
	_, b := newTenant(t, r.st, "b@example.com", "B")
	_, empty := newTenant(t, r.st, "c@example.com", "C")
	put := func(tenantID, content string) {
		if _, err := r.media.Put(ctx, tenantID, tenant.MediaInput{Kind: tenant.MediaDocument, Body: strings.NewReader(content)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	put(a.ID, "12345")
	put(a.ID, "1234567890")
	put(a.ID, "12345") // once more: no more disk
	put(b.ID, "12345") // the same content in another tenant is its own file
	want := map[string]tenant.MediaUsage{a.ID: {Bytes: 15, Files: 2}, b.ID: {Bytes: 5, Files: 1}}
	for _, id := range []string{a.ID, b.ID, empty.ID} {
		if u, err := r.st.MediaUsage(ctx, id); err != nil || u != want[id] {
			t.Errorf("usage of %s: %+v, %v; want %+v", id, u, err, want[id])
		}
	}
	all, err := r.st.MediaUsageByTenant(ctx)
	if err != nil || len(all) != 2 || all[a.ID] != want[a.ID] || all[b.ID] != want[b.ID] {
		t.Fatalf("usage by tenant %v, %v; want %v", all, err, want)
	}
	if n := len(files(t, r.root)); n != 3 {
		t.Fatalf("%d files on disk, want 3", n)
	}
}

func TestMediaOfOneTenantIsNotReachableThroughAnother(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, a := newTenant(t, r.st, "a@example.com", "A")
	_, b := newTenant(t, r.st, "b@example.com", "B")
	content := pngBytes(t, 5)
	sha := shaOf(content)
	aMsg := r.imageMessage(t, a.ID, "w")
	if _, err := r.media.SaveMessageFile(ctx, a.ID, aMsg, tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
	bMsg := r.imageMessage(t, b.ID, "w")

	_, err := r.media.File(ctx, b.ID, sha)
	wantNotFound(t, err)
	_, f, err := r.media.Open(ctx, b.ID, sha)
	if f != nil {
		f.Close()
	}
	wantNotFound(t, err)
	_, err = r.media.AttachFile(ctx, b.ID, bMsg, sha)
	wantNotFound(t, err)
	_, err = r.st.MessageMediaOf(ctx, b.ID, aMsg)
	wantNotFound(t, err)
	if got, err := r.st.MessageMediaFor(ctx, b.ID, []int64{aMsg, bMsg}); err != nil || len(got) != 1 || got[bMsg].MessageID != bMsg {
		t.Fatalf("B's media for both messages %v, %v; want only B's", got, err)
	}
	_, err = r.media.SaveMessageFile(ctx, b.ID, aMsg, tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(pngBytes(t, 6))})
	wantNotFound(t, err)
	_, err = r.st.MediaDownloadFailed(ctx, b.ID, aMsg, "x", true)
	wantNotFound(t, err)
	for _, bad := range []string{"../" + a.ID, a.ID + "/..", ""} {
		_, err = r.media.File(ctx, bad, sha)
		wantNotFound(t, err)
	}
	if got := files(t, filepath.Join(r.root, b.ID)); len(got) != 0 {
		t.Fatalf("B's folder holds %v after refused writes, want nothing", got)
	}
	if md, err := r.st.MessageMediaOf(ctx, a.ID, aMsg); err != nil || md.Status != tenant.MediaStored {
		t.Fatalf("A's media %+v, %v; want it untouched", md, err)
	}
}

func TestDownloadThatKeepsFailingLeavesTheMessageFailed(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	id := r.imageMessage(t, tn.ID, "w")
	if p, err := r.st.PendingMedia(ctx, tn.ID); err != nil || len(p) != 1 || p[0].MessageID != id {
		t.Fatalf("pending %v, %v; want the new image", p, err)
	}
	if n, err := r.st.MediaDownloadFailed(ctx, tn.ID, id, "download timed out", false); err != nil || n != 1 {
		t.Fatalf("first failure: %d, %v", n, err)
	}
	if m, _ := r.st.MessageByID(ctx, tn.ID, id); m.Status != tenant.MsgReceived {
		t.Fatalf("after a failure to retry the message is %s, want received", m.Status)
	}
	if p, _ := r.st.PendingMedia(ctx, tn.ID); len(p) != 1 || p[0].Attempts != 1 || p[0].Error != "download timed out" {
		t.Fatalf("pending %+v, want one attempt with its reason", p)
	}
	if n, err := r.st.MediaDownloadFailed(ctx, tn.ID, id, "media hash mismatch", true); err != nil || n != 2 {
		t.Fatalf("last failure: %d, %v", n, err)
	}
	m, err := r.st.MessageByID(ctx, tn.ID, id)
	if err != nil || m.Status != tenant.MsgFailed || m.Error != "media hash mismatch" {
		t.Fatalf("message %+v, %v; want failed with the reason", m, err)
	}
	md, err := r.st.MessageMediaOf(ctx, tn.ID, id)
	if err != nil || md.Status != tenant.MediaFailed || md.Error != "media hash mismatch" || md.Attempts != 2 {
		t.Fatalf("media %+v, %v; want failed after 2 attempts with the reason", md, err)
	}
	if p, _ := r.st.PendingMedia(ctx, tn.ID); len(p) != 0 {
		t.Fatalf("pending %+v after the last failure, want none", p)
	}
}

func TestLocationsAndContactsAreStoredAsData(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, tn := newTenant(t, st, "shop@example.com", "Shop")
	loc := storeIn(t, st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "l", Kind: "location",
		Media: &tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 52.52, Longitude: 13.405, PlaceName: "Shop", Address: "Main St 1"}})
	off := storeIn(t, st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "o", Kind: "location",
		Media: &tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 91, Longitude: 13, PlaceName: "Nowhere"}})
	vcard := "BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nTEL:+15550001111\nEND:VCARD"
	card := storeIn(t, st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "v", Kind: "contact",
		Media: &tenant.MessageMedia{Kind: tenant.MediaContact, ContactName: "Ann", VCard: vcard}})
	got, err := st.MessageMediaFor(ctx, tn.ID, []int64{loc, off, card})
	if err != nil {
		t.Fatal(err)
	}
	if l := got[loc]; !l.Positioned || l.Latitude != 52.52 || l.Longitude != 13.405 || l.PlaceName != "Shop" || l.Address != "Main St 1" || l.Status != tenant.MediaNoFile {
		t.Errorf("location %+v", l)
	}
	if o := got[off]; o.Positioned || o.PlaceName != "Nowhere" {
		t.Errorf("a location off the globe %+v, want its name without a position", o)
	}
	if c := got[card]; c.ContactName != "Ann" || c.VCard != vcard || c.Status != tenant.MediaNoFile || c.SHA256 != "" {
		t.Errorf("contact %+v", c)
	}
	if p, _ := st.PendingMedia(ctx, tn.ID); len(p) != 0 {
		t.Errorf("pending %+v; locations and contacts have nothing to download", p)
	}
	wantCode(t, st.AddMessageMedia(ctx, tn.ID, loc, tenant.MessageMedia{Kind: "gif"}), tenant.CodeInvalid)
	wantNotFound(t, st.AddMessageMedia(ctx, tn.ID, 999999, tenant.MessageMedia{Kind: tenant.MediaImage}))
}

func TestRemovingATenantsMediaRemovesItsFolder(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, a := newTenant(t, r.st, "a@example.com", "A")
	_, b := newTenant(t, r.st, "b@example.com", "B")
	for _, tn := range []string{a.ID, b.ID} {
		id := r.imageMessage(t, tn, "w")
		if _, err := r.media.SaveMessageFile(ctx, tn, id, tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(pngBytes(t, 7))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.media.RemoveTenantMedia(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.root, a.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("A's folder: %v, want it gone", err)
	}
	if u, _ := r.st.MediaUsage(ctx, a.ID); u != (tenant.MediaUsage{}) {
		t.Fatalf("A's usage %+v, want none", u)
	}
	if u, _ := r.st.MediaUsage(ctx, b.ID); u.Files != 1 || len(files(t, filepath.Join(r.root, b.ID))) != 1 {
		t.Fatalf("B's usage %+v, want its file kept", u)
	}
}

// The media tables reach a database opened without a media store too, so
// the retention of a process without one still works.
func TestRetentionWithoutAMediaStore(t *testing.T) {
	ctx := context.Background()
	st := tenanttest.Open(t)
	_, tn := newTenant(t, st, "shop@example.com", "Shop")
	id := storeIn(t, st, tn.ID, tenant.Inbound{Chat: "c@s.whatsapp.net", WAID: "w", Kind: "image", Status: tenant.MsgReplied,
		Media: &tenant.MessageMedia{Kind: tenant.MediaImage}})
	if n, err := st.RemoveOldMessages(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want the message with its media row", n, err)
	}
	_, err := st.MessageMediaOf(ctx, tn.ID, id)
	wantNotFound(t, err)
}

// The same file arriving in several chats at once is stored once, and
// every message gets it.
func TestMediaSavedConcurrentlyIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	_, tn := newTenant(t, r.st, "shop@example.com", "Shop")
	content := pngBytes(t, 8)
	msgs := make([]int64, 8)
	for i := range msgs {
		msgs[i] = r.imageMessage(t, tn.ID, "w"+string(rune('a'+i)))
	}
	errs := make(chan error, len(msgs))
	for _, id := range msgs {
		go func() {
			_, err := r.media.SaveMessageFile(ctx, tn.ID, id, tenant.MediaInput{Kind: tenant.MediaImage, Body: bytes.NewReader(content)})
			errs <- err
		}()
	}
	for range msgs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	sha := shaOf(content)
	if got := files(t, r.root); !slices.Equal(got, []string{filepath.Join(tn.ID, sha[:2], sha)}) {
		t.Fatalf("files on disk %v, want the one file", got)
	}
	got, err := r.st.MessageMediaFor(ctx, tn.ID, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range msgs {
		if got[id].SHA256 != sha || got[id].Status != tenant.MediaStored {
			t.Fatalf("message %d's media %+v, want the file", id, got[id])
		}
	}
	if u, _ := r.st.MediaUsage(ctx, tn.ID); u.Files != 1 {
		t.Fatalf("usage %+v, want one file", u)
	}
}
