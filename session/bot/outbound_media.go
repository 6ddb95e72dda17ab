package bot

import (
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.DecodeConfig reads the sizes of GIF, JPEG and PNG files
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"wabot/tenant"
)

// Sending media: a send's file is resolved when the message is accepted
// (an upload of the tenant's, or a URL fetched then, through the same
// guard as webhooks) and linked to the queued message; the sender opens
// it, uploads it to WhatsApp (again on each try: an upload's URL does
// not outlive a failed send for long) and sends the message of its kind
// with the message's fixed id, so a retry still delivers one message.

const (
	// mediaFetchTimeout bounds fetching a send's URL, body included.
	mediaFetchTimeout = 30 * time.Second
	// mediaFetchRedirects is how many redirects a fetch follows, each
	// to a public address again.
	mediaFetchRedirects = 5
	// uploadTimeout bounds one upload to WhatsApp's media servers.
	uploadTimeout = 5 * time.Minute
	// maxUploadFailures is how many passes an upload may fail (other
	// than by a disconnect, which only waits) before the message fails
	// with upload_failed.
	maxUploadFailures = 3
)

func mediaFieldError(field, msg string) error {
	return &tenant.Error{Code: tenant.CodeInvalid, Msg: "the message has errors", Fields: map[string]string{field: msg}}
}

var errNoMedia = &tenant.Error{Code: tenant.CodeUnavailable, Msg: "this server does not store media; media messages cannot be sent"}

// resolveMedia finds or fetches the file of a send request and returns
// it as the queued message will link it, with the caption.
func (b *Bot) resolveMedia(ctx context.Context, tenantID string, req tenant.SendRequest) (*tenant.OutboundMedia, string, error) {
	sm := req.Media
	caption := sm.Caption
	if caption == "" {
		caption = req.Text
	}
	if b.opts.Media == nil {
		return nil, "", errNoMedia
	}
	var f tenant.MediaFile
	kind, fileName := sm.Kind, sm.FileName
	if sm.UploadID != "" {
		var err error
		f, err = b.opts.Media.File(ctx, tenantID, sm.UploadID)
		if errors.Is(err, tenant.ErrNotFound) {
			// Another tenant's id is as unknown as one never used.
			return nil, "", mediaFieldError("media.upload_id", "There is no upload with this id; upload the file with POST /api/v1/media first.")
		}
		if err != nil {
			return nil, "", err
		}
		if kind == "" {
			kind = tenant.KindOfMIME(f.MIME)
		}
	} else {
		var name string
		var err error
		f, kind, name, err = b.fetchMedia(ctx, tenantID, sm.URL, kind)
		if err != nil {
			return nil, "", err
		}
		if fileName == "" {
			fileName = name
		}
	}
	if err := b.opts.Media.Limits().CheckSize(kind, f.Size); err != nil {
		return nil, "", err
	}
	if err := tenant.CaptionError(kind, caption); err != nil {
		return nil, "", err
	}
	om := &tenant.OutboundMedia{Kind: kind, SHA256: f.SHA256, FileName: fileName}
	if kind == tenant.MediaImage || kind == tenant.MediaSticker {
		om.Width, om.Height = b.imageSize(ctx, tenantID, f.SHA256)
	}
	return om, caption, nil
}

// imageSize reads a stored image's width and height, 0 when its format
// says none that the standard library reads (WebP, HEIC).
func (b *Bot) imageSize(ctx context.Context, tenantID, sha string) (int, int) {
	_, fh, err := b.opts.Media.Open(ctx, tenantID, sha)
	if err != nil {
		return 0, 0
	}
	defer fh.Close()
	cfg, _, err := image.DecodeConfig(fh)
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

// readTagged remembers its reader's error, so a failed store tells a
// broken download (the URL's fault) from a failed write (the server's).
type readTagged struct {
	r   io.Reader
	err error
}

func (t *readTagged) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		t.err = err
	}
	return n, err
}

// fetchMedia downloads a send's URL into the tenant's uploads. The host
// must resolve to public addresses (as a webhook's, unless private ones
// are allowed), checked now and at every connection, redirects included;
// the kind's cap bounds the body. It returns the file, its kind and a
// file name from the response or the URL's path.
func (b *Bot) fetchMedia(ctx context.Context, tenantID, raw string, kind tenant.MediaKind) (tenant.MediaFile, tenant.MediaKind, string, error) {
	fail := func(msg string) (tenant.MediaFile, tenant.MediaKind, string, error) {
		return tenant.MediaFile{}, "", "", mediaFieldError("media.url", msg)
	}
	if err := b.checkWebhookURL(ctx, raw); err != nil {
		return fail("The host does not resolve to a public internet address; wabot fetches files only from the internet.")
	}
	ctx, cancel := context.WithTimeout(ctx, mediaFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fail("Give an http:// or https:// URL.")
	}
	req.Header.Set("User-Agent", "wabot (media fetch)")
	resp, err := b.mediaFetch.Do(req)
	if err != nil {
		var ue *url.Error
		switch {
		case errors.Is(err, errPrivateAddress):
			return fail("The host does not resolve to a public internet address; wabot fetches files only from the internet.")
		case errors.Is(err, errTooManyRedirects):
			return fail(fmt.Sprintf("The URL redirects more than %d times.", mediaFetchRedirects))
		case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ue) && ue.Timeout()):
			return fail(fmt.Sprintf("The URL did not answer within %s.", mediaFetchTimeout))
		}
		return fail("The URL could not be fetched: the connection failed.")
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail(fmt.Sprintf("The URL answered %d %s, not the file.", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	body := &readTagged{r: resp.Body}
	f, kind, err := b.opts.Media.PutUpload(ctx, tenantID, kind, resp.Header.Get("Content-Type"), max(resp.ContentLength, 0), body)
	if err != nil {
		if tenant.ErrorCode(err) == "" && (body.err != nil || ctx.Err() != nil) {
			return fail("The download of the URL broke off or took longer than " + mediaFetchTimeout.String() + ".")
		}
		return tenant.MediaFile{}, "", "", err
	}
	return f, kind, fetchedName(resp), nil
}

// fetchedName is the file name a response gives (Content-Disposition) or
// the last segment of its URL's path when that looks like a file name.
func fetchedName(resp *http.Response) string {
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		return path.Base(strings.ReplaceAll(params["filename"], `\`, "/"))
	}
	if name := path.Base(resp.Request.URL.Path); strings.Contains(name, ".") && name != "." && name != ".." {
		return name
	}
	return ""
}

var (
	errPrivateAddress   = errors.New("the host resolves to a non-public address")
	errTooManyRedirects = errors.New("too many redirects")
)

// newMediaFetchClient is the webhook client's guard for fetching a
// send's URL: every connection (redirects too) must reach a public
// address unless private ones are allowed; it follows a few redirects,
// to http(s) only.
func newMediaFetchClient(o Options) *http.Client {
	dialer := guardedDialer(public(o.AllowPrivateWebhooks), errPrivateAddress)
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: mediaFetchTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > mediaFetchRedirects {
				return errTooManyRedirects
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errPrivateAddress
			}
			return nil
		},
	}
}

// whatsmeowType is the media type a file of kind is uploaded as:
// stickers are encrypted as images, voice notes as audio.
func whatsmeowType(k tenant.MediaKind) whatsmeow.MediaType {
	switch k {
	case tenant.MediaImage, tenant.MediaSticker:
		return whatsmeow.MediaImage
	case tenant.MediaVideo:
		return whatsmeow.MediaVideo
	case tenant.MediaAudio, tenant.MediaVoice:
		return whatsmeow.MediaAudio
	}
	return whatsmeow.MediaDocument
}

// errFileGone: the message's file is no longer stored (the tenant's
// media were removed); sending cannot succeed.
var errFileGone = errors.New("the file is no longer stored")

// uploadMedia opens md's file, uploads it to WhatsApp and returns the
// message of its kind, with ctxInfo (a quote) when given.
func (t *tenantBot) uploadMedia(md tenant.MessageMedia, ctxInfo *waE2E.ContextInfo) (*waE2E.Message, error) {
	if t.b.opts.Media == nil || md.Status != tenant.MediaStored || md.SHA256 == "" {
		return nil, errFileGone
	}
	ctx, cancel := context.WithTimeout(t.ctx, uploadTimeout)
	defer cancel()
	_, fh, err := t.b.opts.Media.Open(ctx, t.id, md.SHA256)
	if errors.Is(err, tenant.ErrNotFound) {
		return nil, errFileGone
	}
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(fh)
	fh.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	up, err := t.out.Upload(ctx, data, whatsmeowType(md.Kind))
	if err != nil {
		return nil, err
	}
	return mediaMessage(md, up, ctxInfo), nil
}

// mediaMessage is the WhatsApp message that shows an uploaded file as its
// kind: image, video, audio (a voice note with PTT), document (with its
// file name) or sticker.
func mediaMessage(md tenant.MessageMedia, up whatsmeow.UploadResponse, ctxInfo *waE2E.ContextInfo) *waE2E.Message {
	var caption *string
	if md.Caption != "" {
		caption = proto.String(md.Caption)
	}
	var w, h *uint32
	if md.Width > 0 && md.Height > 0 {
		w, h = proto.Uint32(uint32(md.Width)), proto.Uint32(uint32(md.Height))
	}
	url, path, mt := proto.String(up.URL), proto.String(up.DirectPath), proto.String(md.MIME)
	length := proto.Uint64(up.FileLength)
	switch md.Kind {
	case tenant.MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mt, Caption: caption,
			Width: w, Height: h, ContextInfo: ctxInfo}}
	case tenant.MediaVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mt, Caption: caption,
			Width: w, Height: h, ContextInfo: ctxInfo}}
	case tenant.MediaAudio, tenant.MediaVoice:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mt,
			PTT: proto.Bool(md.Kind == tenant.MediaVoice), ContextInfo: ctxInfo}}
	case tenant.MediaSticker:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mt,
			Width: w, Height: h, ContextInfo: ctxInfo}}
	}
	name := md.FileName
	if name == "" {
		name = "file"
		if exts, _ := mime.ExtensionsByType(md.MIME); len(exts) > 0 {
			name += exts[0]
		}
	}
	return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{URL: url, DirectPath: path, MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, Mimetype: mt, Caption: caption,
		FileName: proto.String(name), Title: proto.String(name), ContextInfo: ctxInfo}}
}

// queuedMedia is the WhatsApp message of a queued API message that has a
// file (ok false: it has none, send it as text). text is the message as
// built so far, whose quote, if any, the media message keeps. When msg
// is nil, res says what became of the message: upload failures other
// than a disconnect are tried on maxUploadFailures passes, then the
// message fails with upload_failed.
func (t *tenantBot) queuedMedia(m tenant.APIMessage, text *waE2E.Message) (msg *waE2E.Message, res sendResult, ok bool) {
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	md, err := t.b.store.MessageMediaOf(ctx, t.id, m.ID)
	cancel()
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		return nil, sendDone, false
	case t.ctx.Err() != nil:
		return nil, sendStopped, true
	case err != nil:
		t.log.Warn("cannot read a queued message's file; trying again", "id", m.ID, "err", err)
		return nil, sendLater, true
	}
	var quote *waE2E.ContextInfo
	if ext := text.GetExtendedTextMessage(); ext != nil {
		quote = ext.GetContextInfo()
	}
	msg, err = t.uploadMedia(md, quote)
	switch {
	case err == nil:
		delete(t.snd.uploadFails, m.ID)
		return msg, sendDone, true
	case t.ctx.Err() != nil:
		return nil, sendStopped, true
	case errors.Is(err, errFileGone):
		t.failOut(m, tenant.ReasonUploadFailed, "the file is no longer stored")
		return nil, sendDone, true
	case disconnected(err):
		t.b.opts.Observer.SendDeferred()
		return nil, sendOffline, true
	}
	if t.snd.uploadFails == nil {
		t.snd.uploadFails = map[int64]int{}
	}
	t.snd.uploadFails[m.ID]++
	if n := t.snd.uploadFails[m.ID]; n < maxUploadFailures {
		t.log.Warn("cannot upload a message's file; trying again", "id", m.ID, "attempt", n, "err", err)
		return nil, sendLater, true
	}
	delete(t.snd.uploadFails, m.ID)
	t.log.Warn("cannot upload a message's file; giving up", "id", m.ID, "err", err)
	t.failOut(m, tenant.ReasonUploadFailed, "the file could not be uploaded to WhatsApp: "+err.Error())
	return nil, sendDone, true
}
