package tenant

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Media: the files customers send and the business sends, stored once per
// tenant by content (SHA-256) under one root folder, at
// <root>/<tenant id>/<sha[0:2]>/<sha>, with a media_files row each; the
// media of a logged message is a message_media row beside it.

// MediaKind is what a media message carries; messages.kind holds the same
// word.
type MediaKind string

const (
	MediaImage    MediaKind = "image"
	MediaSticker  MediaKind = "sticker"
	MediaAudio    MediaKind = "audio"
	MediaVoice    MediaKind = "voice" // a voice note: OGG/Opus audio recorded in the chat
	MediaVideo    MediaKind = "video"
	MediaDocument MediaKind = "document"
	MediaLocation MediaKind = "location" // no file: latitude, longitude, name, address
	MediaContact  MediaKind = "contact"  // no file: a display name and a vCard
)

// MediaKinds lists every kind, in the order filters show them.
var MediaKinds = []MediaKind{MediaImage, MediaSticker, MediaAudio, MediaVoice, MediaVideo, MediaDocument, MediaLocation, MediaContact}

// Valid reports whether k is one of MediaKinds.
func (k MediaKind) Valid() bool { return slices.Contains(MediaKinds, k) }

// HasFile reports whether a message of kind k carries a file.
func (k MediaKind) HasFile() bool { return k.Valid() && k != MediaLocation && k != MediaContact }

// MediaStatus is how far a message's file got.
type MediaStatus string

const (
	MediaPending MediaStatus = "pending" // to download
	MediaStored  MediaStatus = "stored"  // the file is in the store
	MediaFailed  MediaStatus = "failed"  // the download kept failing; Error says why
	MediaNoFile  MediaStatus = "none"    // a location or a contact
)

// Codes of media refusals, beside those of errors.go.
const (
	CodeTooLarge      Code = "too_large"      // 413: the file is over its kind's cap
	CodeQuotaExceeded Code = "quota_exceeded" // 507: the tenant's media would outgrow its quota
)

// MediaLimits are the caps on stored files: per kind (voice notes count as
// audio) and per tenant in all.
type MediaLimits struct {
	MaxImage, MaxSticker, MaxAudio, MaxVideo, MaxDocument int64
	TenantQuota                                           int64
}

// DefaultMediaLimits are close to WhatsApp's own caps: 16 MB for images,
// stickers, audio and video, 100 MB for documents, and 1 GB per tenant.
func DefaultMediaLimits() MediaLimits {
	return MediaLimits{
		MaxImage: 16 << 20, MaxSticker: 16 << 20, MaxAudio: 16 << 20, MaxVideo: 16 << 20,
		MaxDocument: 100 << 20, TenantQuota: 1 << 30,
	}
}

// MaxFor is the cap on one file of kind k; 0 for kinds without a file.
func (l MediaLimits) MaxFor(k MediaKind) int64 {
	switch k {
	case MediaImage:
		return l.MaxImage
	case MediaSticker:
		return l.MaxSticker
	case MediaAudio, MediaVoice:
		return l.MaxAudio
	case MediaVideo:
		return l.MaxVideo
	case MediaDocument:
		return l.MaxDocument
	}
	return 0
}

// MediaFile is one stored file of a tenant.
type MediaFile struct {
	TenantID  string
	SHA256    string // lower-case hex; the file's name
	Size      int64
	MIME      string // sniffed from the content (SniffMIME)
	CreatedAt time.Time
}

// MediaInput is a file to store.
type MediaInput struct {
	Kind MediaKind
	MIME string // as the sender declared it; corrected when the content disagrees
	// Size is the size the sender declared, 0 when unknown: a file declared
	// over a cap is refused before a byte is read. The bytes read are
	// checked either way.
	Size int64
	Body io.Reader
}

// MediaStore keeps the tenants' files on disk and their rows in the
// database, together: a file is on disk before its row commits, and
// leaves the disk only after its row is gone.
type MediaStore struct {
	st     *Store
	root   string
	limits MediaLimits
	// mu orders linking a file (rename into place, row committed) against
	// removing files (retention, Sweep, RemoveTenantMedia), so neither
	// removes a file a row is about to need nor links one being removed.
	// Writing a file's content happens outside it.
	mu sync.Mutex
}

// NewMediaStore returns the media store of st, keeping files under root
// (created with mode 0700). It attaches itself to st, so that the
// message-log retention (RemoveOldMessages) removes files with their last
// message; a Store has at most one MediaStore.
func NewMediaStore(st *Store, root string, limits MediaLimits) (*MediaStore, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the media folder: %w", err)
	}
	m := &MediaStore{st: st, root: root, limits: limits}
	st.media = m
	return m, nil
}

// Root is the folder holding every tenant's files.
func (m *MediaStore) Root() string { return m.root }

// Limits are the caps the store enforces.
func (m *MediaStore) Limits() MediaLimits { return m.limits }

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// tenantDir is the tenant's folder; tenantID must have passed
// ValidTenantID.
func (m *MediaStore) tenantDir(tenantID string) string { return filepath.Join(m.root, tenantID) }

// filePath is where a file lives; both ids must have been validated.
func (m *MediaStore) filePath(tenantID, sha string) string {
	return filepath.Join(m.root, tenantID, sha[:2], sha)
}

// tempPrefix starts the name of a file being written; Sweep removes those
// left by a crash.
const tempPrefix = ".part-"

// sniffBytes is how much of a file's start SniffMIME looks at.
const sniffBytes = 4096

// Put stores a file not (yet) sent in any message, such as an upload for
// the send API, and keeps it at least keepFor even while no message
// refers to it. A file the tenant already has is not stored again (its
// keep time is extended). See SaveMessageFile for refusals.
func (m *MediaStore) Put(ctx context.Context, tenantID string, in MediaInput, keepFor time.Duration) (MediaFile, error) {
	keepUntil := ms(m.st.now().Add(keepFor))
	return m.store(ctx, tenantID, in, keepUntil, func(context.Context, *sql.Tx, MediaFile) error { return nil })
}

// SaveMessageFile stores the file of a logged message, whose media row
// (AddMessageMedia, or Inbound.Media) must exist, and marks it stored with
// the file's hash, sniffed type and size, in one transaction with the
// file's row. A file the tenant already has is not stored again.
//
// A file that is empty, over its kind's cap, or would take the tenant
// over its quota is refused with an *Error (CodeInvalid, CodeTooLarge,
// CodeQuotaExceeded) and nothing is written; a full disk is CodeUnavailable.
// A write that fails leaves no file and no row.
func (m *MediaStore) SaveMessageFile(ctx context.Context, tenantID string, messageID int64, in MediaInput) (MediaFile, error) {
	return m.store(ctx, tenantID, in, 0, func(ctx context.Context, tx *sql.Tx, f MediaFile) error {
		return linkFile(ctx, tx, tenantID, messageID, f, m.st.now())
	})
}

// AttachFile links a file the tenant already has (from Put) to a logged
// message's media row and marks it stored.
func (m *MediaStore) AttachFile(ctx context.Context, tenantID string, messageID int64, sha string) (MediaFile, error) {
	if !ValidTenantID(tenantID) || !sha256Pattern.MatchString(sha) {
		return MediaFile{}, ErrNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var f MediaFile
	err := m.st.db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if f, err = fileRow(ctx, tx, tenantID, sha); err != nil {
			return err
		}
		return linkFile(ctx, tx, tenantID, messageID, f, m.st.now())
	})
	if err != nil {
		return MediaFile{}, mediaErr("attaching a media file", err)
	}
	return f, nil
}

func linkFile(ctx context.Context, tx *sql.Tx, tenantID string, messageID int64, f MediaFile, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE message_media SET sha256 = ?, mime = ?, size = ?, status = 'stored', error = '', wa_download = NULL, updated_at = ?
		WHERE message_id = ? AND tenant_id = ? AND status IN ('pending', 'failed', 'stored')`,
		f.SHA256, f.MIME, f.Size, ms(now), messageID, tenantID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNotFound
	}
	return nil
}

const fileRowQuery = `SELECT size, mime, created_at FROM media_files WHERE tenant_id = ? AND sha256 = ?`

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func fileRow(ctx context.Context, q queryRower, tenantID, sha string) (MediaFile, error) {
	f := MediaFile{TenantID: tenantID, SHA256: sha}
	var created int64
	err := q.QueryRowContext(ctx, fileRowQuery, tenantID, sha).Scan(&f.Size, &f.MIME, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return f, ErrNotFound
	}
	f.CreatedAt = fromMS(created)
	return f, err
}

// mediaErr wraps err with what was being done, leaving *Error as is.
func mediaErr(doing string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// aKind names one file of each kind, for messages.
var aKind = map[MediaKind]string{MediaImage: "an image", MediaSticker: "a sticker", MediaAudio: "an audio file",
	MediaVoice: "a voice note", MediaVideo: "a video", MediaDocument: "a document"}

func tooLarge(kind MediaKind, limit int64) error {
	return &Error{Code: CodeTooLarge, Msg: fmt.Sprintf("The file is larger than the %s %s may be; it was not stored.", byteCount(limit), aKind[kind])}
}

func overQuota(quota int64) error {
	return &Error{Code: CodeQuotaExceeded, Msg: fmt.Sprintf("This workspace's media would take more than its %s; the file was not stored. Old messages and their files are removed with the message log's retention.", byteCount(quota))}
}

var errDiskFull = &Error{Code: CodeUnavailable, Msg: "The server's disk is full; the file was not stored. Try again later."}

// byteCount writes n as people read sizes: 16 MB, 1 GB, 512 KB, 300 bytes.
func byteCount(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.4g MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// store writes in's content to a temporary file, then under mu renames it
// into place and commits its row and whatever link adds, in one
// transaction. keepUntil (Unix ms) is the least time the row is kept
// without a message.
func (m *MediaStore) store(ctx context.Context, tenantID string, in MediaInput, keepUntil int64, link func(context.Context, *sql.Tx, MediaFile) error) (MediaFile, error) {
	if !ValidTenantID(tenantID) {
		return MediaFile{}, ErrNotFound
	}
	if !in.Kind.HasFile() {
		return MediaFile{}, &Error{Code: CodeInvalid, Msg: fmt.Sprintf("A %q message has no file to store.", in.Kind)}
	}
	limit := m.limits.MaxFor(in.Kind)
	if in.Size > limit {
		return MediaFile{}, tooLarge(in.Kind, limit)
	}
	if in.Size > 0 {
		used, err := m.st.MediaUsage(ctx, tenantID)
		if err != nil {
			return MediaFile{}, err
		}
		if used.Bytes+in.Size > m.limits.TenantQuota {
			return MediaFile{}, overQuota(m.limits.TenantQuota)
		}
	}
	dir := m.tenantDir(tenantID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return MediaFile{}, writeErr(err)
	}
	tmp, f, err := m.writeTemp(ctx, dir, in, limit)
	if err != nil {
		return MediaFile{}, err
	}
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	f.TenantID = tenantID

	m.mu.Lock()
	defer m.mu.Unlock()
	final := m.filePath(tenantID, f.SHA256)
	createdRow := false
	err = m.st.db.inTx(ctx, func(tx *sql.Tx) error {
		old, err := fileRow(ctx, tx, tenantID, f.SHA256)
		switch {
		case err == nil:
			f = old
			if _, err := tx.ExecContext(ctx, `UPDATE media_files SET keep_until = ? WHERE tenant_id = ? AND sha256 = ? AND keep_until < ?`,
				keepUntil, tenantID, f.SHA256, keepUntil); err != nil {
				return err
			}
		case errors.Is(err, ErrNotFound):
			var used int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM media_files WHERE tenant_id = ?`, tenantID).Scan(&used); err != nil {
				return err
			}
			if used+f.Size > m.limits.TenantQuota {
				return overQuota(m.limits.TenantQuota)
			}
			f.CreatedAt = fromMS(ms(m.st.now()))
			if _, err := tx.ExecContext(ctx, `INSERT INTO media_files (tenant_id, sha256, size, mime, keep_until, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
				tenantID, f.SHA256, f.Size, f.MIME, keepUntil, ms(f.CreatedAt)); err != nil {
				return err
			}
			createdRow = true
		default:
			return err
		}
		if err := link(ctx, tx, f); err != nil {
			return err
		}
		// The file goes into place before the row commits: a row never
		// names a missing file. Renaming over a file already there (the
		// same content, or an orphan of a crash) also heals a lost one.
		if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
			return writeErr(err)
		}
		if err := os.Rename(tmp, final); err != nil {
			return writeErr(err)
		}
		placed = true
		return writeErr(syncDir(filepath.Dir(final)))
	})
	if err != nil {
		if placed && createdRow {
			// The row did not commit: the file it named goes too.
			os.Remove(final)
		}
		return MediaFile{}, mediaErr("storing a media file", err)
	}
	return f, nil
}

// writeTemp copies in.Body into a new temporary file in dir, fsynced, and
// returns its path with the file's hash, size and sniffed type. Over
// limit bytes, it stops and refuses.
func (m *MediaStore) writeTemp(ctx context.Context, dir string, in MediaInput, limit int64) (string, MediaFile, error) {
	if in.Body == nil {
		return "", MediaFile{}, &Error{Code: CodeInvalid, Msg: "The file is empty."}
	}
	body := &ctxReader{ctx: ctx, r: io.LimitReader(in.Body, limit+1)}
	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(body, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", MediaFile{}, fmt.Errorf("reading the media: %w", err)
	}
	head = head[:n]
	if n == 0 {
		return "", MediaFile{}, &Error{Code: CodeInvalid, Msg: "The file is empty."}
	}
	tf, err := os.CreateTemp(dir, tempPrefix+"*") // mode 0600
	if err != nil {
		return "", MediaFile{}, writeErr(err)
	}
	fail := func(err error) (string, MediaFile, error) {
		tf.Close()
		os.Remove(tf.Name())
		return "", MediaFile{}, err
	}
	h := sha256.New()
	dst := &taggedWriter{w: io.MultiWriter(tf, h)}
	size, err := io.Copy(dst, io.MultiReader(bytes.NewReader(head), body))
	if err != nil {
		if dst.err != nil {
			return fail(writeErr(dst.err))
		}
		return fail(fmt.Errorf("reading the media: %w", err))
	}
	if size > limit {
		return fail(tooLarge(in.Kind, limit))
	}
	if err := tf.Sync(); err != nil {
		return fail(writeErr(err))
	}
	if err := tf.Close(); err != nil {
		os.Remove(tf.Name())
		return "", MediaFile{}, writeErr(err)
	}
	return tf.Name(), MediaFile{SHA256: hex.EncodeToString(h.Sum(nil)), Size: size, MIME: SniffMIME(in.MIME, head)}, nil
}

// writeErr turns a full disk into a clear refusal and wraps anything else.
func writeErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errDiskFull
	}
	return fmt.Errorf("writing a media file: %w", err)
}

// taggedWriter remembers its writer's error, so a failed copy tells a
// failed write (disk) from a failed read (download).
type taggedWriter struct {
	w   io.Writer
	err error
}

func (t *taggedWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// File returns the tenant's file with that hash; ErrNotFound when the
// tenant has none, whichever tenant may have it.
func (m *MediaStore) File(ctx context.Context, tenantID, sha string) (MediaFile, error) {
	if !ValidTenantID(tenantID) || !sha256Pattern.MatchString(sha) {
		return MediaFile{}, ErrNotFound
	}
	f, err := fileRow(ctx, m.st.db.read, tenantID, sha)
	if err != nil {
		return f, mediaErr("reading a media file's row", err)
	}
	return f, nil
}

// Open returns the tenant's file with that hash, open for reading (the
// caller closes it); ErrNotFound when the tenant has none, whichever
// tenant may have it.
func (m *MediaStore) Open(ctx context.Context, tenantID, sha string) (MediaFile, *os.File, error) {
	f, err := m.File(ctx, tenantID, sha)
	if err != nil {
		return f, nil, err
	}
	fh, err := os.Open(m.filePath(tenantID, sha))
	if err != nil {
		return f, nil, fmt.Errorf("opening media file %s of %s: %w", sha, tenantID, err)
	}
	return f, fh, nil
}

// MessageMedia is the media of one logged message.
type MessageMedia struct {
	MessageID int64
	TenantID  string
	Kind      MediaKind
	// The file, once stored (Status MediaStored): its hash, sniffed type
	// and size. Before that, MIME and Size are what the sender declared.
	SHA256          string
	MIME            string
	Size            int64
	FileName        string
	Caption         string
	DurationSeconds int
	Width, Height   int
	// A location (Kind MediaLocation); Positioned says Latitude and
	// Longitude hold its position.
	Positioned          bool
	Latitude, Longitude float64
	PlaceName, Address  string
	// A shared contact (Kind MediaContact).
	ContactName string
	VCard       string

	// Download is WhatsApp's reference to an inbound file, opaque here
	// (the media message's protobuf), kept while the file is pending.
	Download []byte

	Status    MediaStatus
	Attempts  int    // failed downloads so far
	Error     string // why the last download failed
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Bounds of the text a media row keeps.
const (
	maxFileNameBytes = 255
	maxPlaceBytes    = 1024
	maxVCardBytes    = 64 << 10
)

// prepare checks md's kind, drops a position off the globe, cuts its
// texts to their bounds and sets its starting status.
func (md *MessageMedia) prepare() error {
	if !md.Kind.Valid() {
		return &Error{Code: CodeInvalid, Msg: fmt.Sprintf("unknown media kind %q", md.Kind)}
	}
	// A location off the globe (a peer may send anything) keeps its name
	// and address, without a position.
	md.Positioned = md.Kind == MediaLocation && md.Latitude >= -90 && md.Latitude <= 90 && md.Longitude >= -180 && md.Longitude <= 180
	if !md.Positioned {
		md.Latitude, md.Longitude = 0, 0
	}
	// Only the name: a sender's path (either slash) says nothing we keep.
	md.FileName = cutUTF8(path.Base(strings.ReplaceAll(md.FileName, `\`, "/")), maxFileNameBytes)
	if md.FileName == "." || md.FileName == "/" {
		md.FileName = ""
	}
	md.Caption = cutUTF8(md.Caption, MaxBodyBytes)
	md.MIME = cutUTF8(md.MIME, maxNameBytes)
	md.PlaceName = cutUTF8(md.PlaceName, maxPlaceBytes)
	md.Address = cutUTF8(md.Address, maxPlaceBytes)
	md.ContactName = cutUTF8(md.ContactName, maxNameBytes)
	md.VCard = cutUTF8(md.VCard, maxVCardBytes)
	md.Size = max(md.Size, 0)
	md.DurationSeconds, md.Width, md.Height = max(md.DurationSeconds, 0), max(md.Width, 0), max(md.Height, 0)
	md.SHA256, md.Attempts, md.Error = "", 0, ""
	md.Status = MediaPending
	if !md.Kind.HasFile() {
		md.Status = MediaNoFile
	}
	return nil
}

const insertMessageMedia = `INSERT INTO message_media (message_id, tenant_id, kind, mime, size, file_name, caption, duration_s, width, height,
	latitude, longitude, place_name, address, contact_name, vcard, wa_download, status, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func addMessageMedia(ctx context.Context, tx *sql.Tx, tenantID string, messageID int64, md MessageMedia, now int64) error {
	var lat, lon sql.NullFloat64
	if md.Positioned {
		lat, lon = sql.NullFloat64{Float64: md.Latitude, Valid: true}, sql.NullFloat64{Float64: md.Longitude, Valid: true}
	}
	var download []byte
	if md.Kind.HasFile() && len(md.Download) > 0 {
		download = md.Download
	}
	_, err := tx.ExecContext(ctx, insertMessageMedia, messageID, tenantID, md.Kind, md.MIME, md.Size, md.FileName, md.Caption,
		md.DurationSeconds, md.Width, md.Height, lat, lon, md.PlaceName, md.Address, md.ContactName, md.VCard, download, md.Status, now, now)
	return err
}

// AddMessageMedia records the media of a message already in the tenant's
// log: pending (to download) for a file, none for a location or contact.
// The sender's MIME type and size are kept until the file is stored.
// Inbound messages should pass Inbound.Media instead, so message and media
// commit together.
func (s *Store) AddMessageMedia(ctx context.Context, tenantID string, messageID int64, md MessageMedia) error {
	if err := md.prepare(); err != nil {
		return err
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE id = ? AND tenant_id = ?`, messageID, tenantID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		return addMessageMedia(ctx, tx, tenantID, messageID, md, ms(s.now()))
	})
	if err != nil {
		return mediaErr("recording a message's media", err)
	}
	return nil
}

const messageMediaColumns = `message_id, tenant_id, kind, COALESCE(sha256, ''), mime, size, file_name, caption, duration_s, width, height,
	latitude, longitude, place_name, address, contact_name, vcard, wa_download, status, attempts, error, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanMessageMedia(r rowScanner) (MessageMedia, error) {
	var md MessageMedia
	var created, updated int64
	var lat, lon sql.NullFloat64
	err := r.Scan(&md.MessageID, &md.TenantID, &md.Kind, &md.SHA256, &md.MIME, &md.Size, &md.FileName, &md.Caption,
		&md.DurationSeconds, &md.Width, &md.Height, &lat, &lon, &md.PlaceName, &md.Address,
		&md.ContactName, &md.VCard, &md.Download, &md.Status, &md.Attempts, &md.Error, &created, &updated)
	md.Positioned, md.Latitude, md.Longitude = lat.Valid && lon.Valid, lat.Float64, lon.Float64
	md.CreatedAt, md.UpdatedAt = fromMS(created), fromMS(updated)
	return md, err
}

// MessageMediaOf returns the media of one of the tenant's messages;
// ErrNotFound when it has none.
func (s *Store) MessageMediaOf(ctx context.Context, tenantID string, messageID int64) (MessageMedia, error) {
	md, err := scanMessageMedia(s.db.read.QueryRowContext(ctx, `SELECT `+messageMediaColumns+`
		FROM message_media WHERE message_id = ? AND tenant_id = ?`, messageID, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return md, ErrNotFound
	}
	if err != nil {
		return md, fmt.Errorf("reading the media of message %d: %w", messageID, err)
	}
	return md, nil
}

// maxMediaBatch bounds the ids of one MessageMediaFor call, the most a log
// page shows.
const maxMediaBatch = 200

// MessageMediaFor returns the media of those of the tenant's messages that
// have any, by message id: for a page of the log.
func (s *Store) MessageMediaFor(ctx context.Context, tenantID string, ids []int64) (map[int64]MessageMedia, error) {
	out := make(map[int64]MessageMedia, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if len(ids) > maxMediaBatch {
		return nil, fmt.Errorf("reading media of %d messages: at most %d at once", len(ids), maxMediaBatch)
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenantID)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+messageMediaColumns+` FROM message_media
		WHERE tenant_id = ? AND message_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading messages' media: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		md, err := scanMessageMedia(rows)
		if err != nil {
			return nil, err
		}
		out[md.MessageID] = md
	}
	return out, rows.Err()
}

// PendingMedia lists the tenant's media still to download, oldest first:
// what a restart must pick up again.
func (s *Store) PendingMedia(ctx context.Context, tenantID string) ([]MessageMedia, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+messageMediaColumns+` FROM message_media
		WHERE tenant_id = ? AND status = 'pending' ORDER BY message_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("reading pending media: %w", err)
	}
	defer rows.Close()
	var out []MessageMedia
	for rows.Next() {
		md, err := scanMessageMedia(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, md)
	}
	return out, rows.Err()
}

// MediaDownloadFailed records a failed download of a message's file and
// returns how many have failed. With final (the retries are spent) the
// media is failed with reason, and so is the message when it is still
// waiting for an answer (status received), so it shows in the log as
// failed with the reason; otherwise it stays pending for a retry.
func (s *Store) MediaDownloadFailed(ctx context.Context, tenantID string, messageID int64, reason string, final bool) (int, error) {
	reason = cutUTF8(reason, MaxBodyBytes)
	status := MediaPending
	if final {
		status = MediaFailed
	}
	var attempts int
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		now := ms(s.now())
		err := tx.QueryRowContext(ctx, `UPDATE message_media SET attempts = attempts + 1, error = ?, status = ?, updated_at = ?,
				wa_download = CASE WHEN ? = 'failed' THEN NULL ELSE wa_download END
			WHERE message_id = ? AND tenant_id = ? AND status IN ('pending', 'failed') RETURNING attempts`,
			reason, status, now, status, messageID, tenantID).Scan(&attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || !final {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND tenant_id = ? AND status = 'received'`,
			reason, now, messageID, tenantID)
		return err
	})
	if err != nil {
		return 0, mediaErr("recording a failed download", err)
	}
	return attempts, nil
}

// MediaUsage is the disk a tenant's media takes.
type MediaUsage struct {
	Bytes int64
	Files int
}

// MediaUsage returns the bytes and files the tenant's media takes.
func (s *Store) MediaUsage(ctx context.Context, tenantID string) (MediaUsage, error) {
	var u MediaUsage
	err := s.db.read.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0), COUNT(*) FROM media_files WHERE tenant_id = ?`, tenantID).Scan(&u.Bytes, &u.Files)
	if err != nil {
		return u, fmt.Errorf("reading media usage: %w", err)
	}
	return u, nil
}

// MediaUsageByTenant returns the media usage of every tenant that has
// files, for the admin page.
func (s *Store) MediaUsageByTenant(ctx context.Context) (map[string]MediaUsage, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT tenant_id, SUM(size), COUNT(*) FROM media_files GROUP BY tenant_id`)
	if err != nil {
		return nil, fmt.Errorf("reading media usage: %w", err)
	}
	defer rows.Close()
	out := map[string]MediaUsage{}
	for rows.Next() {
		var id string
		var u MediaUsage
		if err := rows.Scan(&id, &u.Bytes, &u.Files); err != nil {
			return nil, err
		}
		out[id] = u
	}
	return out, rows.Err()
}

// RemoveUnreferenced deletes the rows of files no message refers to any
// more (and no longer kept for an upload), then, once that committed,
// the files: a crash between the two leaves orphan files for Sweep, never
// a row without its file. The message-log retention calls it.
func (m *MediaStore) RemoveUnreferenced(ctx context.Context) (files int, bytes int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type gone struct {
		tenantID, sha string
		size          int64
	}
	var removed []gone
	err = m.st.db.inTx(ctx, func(tx *sql.Tx) error {
		removed = removed[:0]
		rows, err := tx.QueryContext(ctx, `DELETE FROM media_files WHERE keep_until < ? AND NOT EXISTS
			(SELECT 1 FROM message_media mm WHERE mm.tenant_id = media_files.tenant_id AND mm.sha256 = media_files.sha256)
			RETURNING tenant_id, sha256, size`, ms(m.st.now()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g gone
			if err := rows.Scan(&g.tenantID, &g.sha, &g.size); err != nil {
				return err
			}
			removed = append(removed, g)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, 0, fmt.Errorf("removing unreferenced media rows: %w", err)
	}
	var errs []error
	for _, g := range removed {
		if !ValidTenantID(g.tenantID) || !sha256Pattern.MatchString(g.sha) {
			continue
		}
		if err := os.Remove(m.filePath(g.tenantID, g.sha)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		files++
		bytes += g.size
	}
	if err := errors.Join(errs...); err != nil {
		return files, bytes, fmt.Errorf("removing unreferenced media files: %w", err)
	}
	return files, bytes, nil
}

// RemoveTenantMedia deletes every media row of the tenant (the messages
// stay, without their files), then its folder. Deleting a tenant calls
// it; Sweep also removes the folder of a tenant that no longer exists.
func (m *MediaStore) RemoveTenantMedia(ctx context.Context, tenantID string) error {
	if !ValidTenantID(tenantID) {
		return ErrNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.st.db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM message_media WHERE tenant_id = ?`, tenantID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM media_files WHERE tenant_id = ?`, tenantID)
		return err
	})
	if err != nil {
		return fmt.Errorf("removing the media rows of %s: %w", tenantID, err)
	}
	if err := os.RemoveAll(m.tenantDir(tenantID)); err != nil {
		return fmt.Errorf("removing the media folder of %s: %w", tenantID, err)
	}
	return nil
}

// SweepTempAge is how old a file being written must be before Sweep takes
// it for a crash's leftover: longer than any download or upload takes.
const SweepTempAge = time.Hour

// SweepResult counts what a Sweep removed.
type SweepResult struct {
	Unreferenced int   // files whose last message had gone (RemoveUnreferenced)
	Orphans      int   // files on disk without a row
	Temporary    int   // files left half-written
	Tenants      int   // folders of tenants that no longer exist
	Bytes        int64 // bytes freed in all
}

// Sweep brings the disk in line with the rows: it removes unreferenced
// files (as retention does), files without a row (left by a crash after
// a row was deleted or before one committed), half-written files older
// than SweepTempAge, and the folders of tenants that no longer exist. Run
// it at start and now and then.
func (m *MediaStore) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	n, b, err := m.RemoveUnreferenced(ctx)
	res.Unreferenced, res.Bytes = n, b
	if err != nil {
		return res, err
	}
	tenants, err := os.ReadDir(m.root)
	if err != nil {
		return res, fmt.Errorf("reading the media folder: %w", err)
	}
	for _, t := range tenants {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !t.IsDir() || !ValidTenantID(t.Name()) {
			continue // not ours: left alone
		}
		if err := m.sweepTenant(ctx, t.Name(), &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (m *MediaStore) sweepTenant(ctx context.Context, tenantID string, res *SweepResult) error {
	dir := m.tenantDir(tenantID)
	if _, err := m.st.TenantByID(ctx, tenantID); errors.Is(err, ErrNotFound) {
		m.mu.Lock()
		defer m.mu.Unlock()
		var rows int
		if err := m.st.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM media_files WHERE tenant_id = ?`, tenantID).Scan(&rows); err != nil {
			return err
		}
		if rows == 0 {
			res.Bytes += dirSize(dir)
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("removing the media folder of %s: %w", tenantID, err)
			}
			res.Tenants++
		}
		return nil
	} else if err != nil {
		return err
	}
	// Candidates are gathered without the lock and checked again under
	// it, so a file linked meanwhile stays.
	var orphans []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, tempPrefix) {
			if info, err := d.Info(); err == nil && time.Since(info.ModTime()) > SweepTempAge && os.Remove(path) == nil {
				res.Temporary++
				res.Bytes += info.Size()
			}
			return nil
		}
		if sha256Pattern.MatchString(name) && filepath.Base(filepath.Dir(path)) == name[:2] {
			if _, err := fileRow(ctx, m.st.db.read, tenantID, name); errors.Is(err, ErrNotFound) {
				orphans = append(orphans, name)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweeping the media of %s: %w", tenantID, err)
	}
	if len(orphans) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sha := range orphans {
		if _, err := fileRow(ctx, m.st.db.read, tenantID, sha); !errors.Is(err, ErrNotFound) {
			if err != nil {
				return err
			}
			continue
		}
		path := m.filePath(tenantID, sha)
		info, err := os.Stat(path)
		// A young file may be another instance's, stored a moment before
		// its row commits (this lock guards this process's writes only).
		if err != nil || time.Since(info.ModTime()) <= SweepTempAge {
			continue
		}
		if err := os.Remove(path); err == nil {
			res.Orphans++
			res.Bytes += info.Size()
		}
	}
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// SniffMIME returns the media type of a file from its first bytes (up to
// 4 KB) and the type its sender declared. The content wins when it names
// a type: a PNG declared application/pdf is image/png. When the content
// names none (plain text, unknown bytes) the declared type stands, unless
// it is one a browser would show inline, which the content must prove.
func SniffMIME(declared string, head []byte) string {
	sniffed := sniffContent(head)
	decl := normalizeMIME(declared)
	if sniffed == "application/octet-stream" || sniffed == "text/plain; charset=utf-8" {
		if decl == "" || InlineMIME(decl) || baseMIME(decl) == "image/svg+xml" {
			return sniffed
		}
		return decl
	}
	if baseMIME(sniffed) == baseMIME(decl) && !strings.Contains(sniffed, ";") {
		return decl // the same type, perhaps with the sender's parameters
	}
	return sniffed
}

func normalizeMIME(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || !strings.Contains(mt, "/") {
		return ""
	}
	return mime.FormatMediaType(mt, params)
}

func baseMIME(v string) string {
	mt, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// sniffContent adds to http.DetectContentType the types WhatsApp media
// use that it does not tell apart.
func sniffContent(head []byte) string {
	has := func(off int, sig string) bool {
		return len(head) >= off+len(sig) && string(head[off:off+len(sig)]) == sig
	}
	first := head[:min(len(head), 512)]
	switch {
	case has(0, "OggS"):
		switch {
		case bytes.Contains(first, []byte("OpusHead")):
			return "audio/ogg; codecs=opus"
		case bytes.Contains(first, []byte("\x80theora")):
			return "video/ogg"
		}
		return "audio/ogg"
	case has(4, "ftyp") && len(head) >= 12:
		switch brand := string(head[8:12]); {
		case brand == "M4A " || brand == "M4B " || brand == "M4P ":
			return "audio/mp4"
		case brand == "heic" || brand == "heix" || brand == "mif1" || brand == "msf1":
			return "image/heic"
		case brand == "avif":
			return "image/avif"
		case strings.HasPrefix(brand, "3gp") || strings.HasPrefix(brand, "3g2"):
			return "video/3gpp"
		case brand == "qt  ":
			return "video/quicktime"
		}
		return "video/mp4"
	case has(0, "RIFF") && has(8, "WEBP"):
		return "image/webp"
	case has(0, "%PDF-"):
		return "application/pdf"
	case has(0, "#!AMR"):
		return "audio/amr"
	case has(0, "PK\x03\x04"):
		switch {
		case bytes.Contains(head, []byte("word/")):
			return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
		case bytes.Contains(head, []byte("xl/")):
			return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		case bytes.Contains(head, []byte("ppt/")):
			return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
		}
		return "application/zip"
	case len(head) >= 2 && head[0] == 0xFF && head[1]&0xF6 == 0xF0:
		return "audio/aac" // ADTS
	case len(head) >= 2 && head[0] == 0xFF && head[1]&0xE0 == 0xE0 && head[1]&0x06 != 0:
		return "audio/mpeg" // an MP3 frame without an ID3 tag
	}
	t := http.DetectContentType(head)
	if (strings.HasPrefix(t, "text/") && t != "text/html; charset=utf-8") && bytes.Contains(bytes.ToLower(first), []byte("<svg")) {
		return "image/svg+xml"
	}
	return t
}

// inlineImages are the image types a browser only draws: no script, no
// links. SVG is not among them.
var inlineImages = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif", "image/heic", "image/x-icon", "image/vnd.microsoft.icon"}

// InlineMIME reports whether a stored file of that type may be shown in
// the portal's pages (img, audio, video): raster images, audio and video.
// Anything else, SVG and HTML included, must be served as a download
// (Content-Disposition: attachment) so nothing a customer sends runs as
// script in the portal's origin.
func InlineMIME(t string) bool {
	b := baseMIME(t)
	switch {
	case slices.Contains(inlineImages, b):
		return true
	case strings.HasPrefix(b, "audio/") || strings.HasPrefix(b, "video/"):
		return !strings.Contains(b, "xml") && !strings.Contains(b, "html")
	}
	return false
}
