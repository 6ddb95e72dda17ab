package bot

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"wabot/session"
	"wabot/tenant"
)

// Inbound media: the message's media row (what it is, and WhatsApp's
// reference to the file) is stored with the message before whatsmeow
// acknowledges it; the file is downloaded on the chat's worker, before
// the message is answered, so the webhook's link works when it is called.

// How a download is retried: a dropped connection waits for the
// reconnect without counting; other failures count, and the last one
// fails the message with the reason.
const (
	maxDownloadAttempts = 3
	downloadRetryDelay  = time.Second
	downloadTimeout     = 2 * time.Minute
)

// mediaOf describes a media message's media for the log, or nil for a
// message without any. Only the part whatsmeow downloads from is kept as
// the reference, not the whole message.
func mediaOf(m *waE2E.Message) *tenant.MessageMedia {
	if d := m.GetDocumentWithCaptionMessage().GetMessage().GetDocumentMessage(); d != nil {
		m = &waE2E.Message{DocumentMessage: d}
	}
	ref := func(part *waE2E.Message) []byte {
		b, _ := proto.Marshal(part)
		return b
	}
	switch {
	case m.GetImageMessage() != nil:
		x := m.GetImageMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaImage, MIME: x.GetMimetype(), Size: int64(x.GetFileLength()), Caption: x.GetCaption(),
			Width: int(x.GetWidth()), Height: int(x.GetHeight()), Download: ref(&waE2E.Message{ImageMessage: x})}
	case m.GetStickerMessage() != nil:
		x := m.GetStickerMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaSticker, MIME: x.GetMimetype(), Size: int64(x.GetFileLength()),
			Width: int(x.GetWidth()), Height: int(x.GetHeight()), Download: ref(&waE2E.Message{StickerMessage: x})}
	case m.GetVideoMessage() != nil:
		x := m.GetVideoMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaVideo, MIME: x.GetMimetype(), Size: int64(x.GetFileLength()), Caption: x.GetCaption(),
			DurationSeconds: int(x.GetSeconds()), Width: int(x.GetWidth()), Height: int(x.GetHeight()), Download: ref(&waE2E.Message{VideoMessage: x})}
	case m.GetAudioMessage() != nil:
		x := m.GetAudioMessage()
		kind := tenant.MediaAudio
		if x.GetPTT() {
			kind = tenant.MediaVoice
		}
		return &tenant.MessageMedia{Kind: kind, MIME: x.GetMimetype(), Size: int64(x.GetFileLength()),
			DurationSeconds: int(x.GetSeconds()), Download: ref(&waE2E.Message{AudioMessage: x})}
	case m.GetDocumentMessage() != nil:
		x := m.GetDocumentMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaDocument, MIME: x.GetMimetype(), Size: int64(x.GetFileLength()),
			FileName: x.GetFileName(), Caption: x.GetCaption(), Download: ref(&waE2E.Message{DocumentMessage: x})}
	case m.GetLocationMessage() != nil:
		x := m.GetLocationMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: x.GetDegreesLatitude(), Longitude: x.GetDegreesLongitude(),
			PlaceName: x.GetName(), Address: x.GetAddress()}
	case m.GetLiveLocationMessage() != nil:
		x := m.GetLiveLocationMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: x.GetDegreesLatitude(), Longitude: x.GetDegreesLongitude(),
			Caption: x.GetCaption()}
	case m.GetContactMessage() != nil:
		x := m.GetContactMessage()
		return &tenant.MessageMedia{Kind: tenant.MediaContact, ContactName: x.GetDisplayName(), VCard: x.GetVcard()}
	case m.GetContactsArrayMessage() != nil:
		x := m.GetContactsArrayMessage()
		md := &tenant.MessageMedia{Kind: tenant.MediaContact, ContactName: x.GetDisplayName()}
		for _, c := range x.GetContacts() {
			md.VCard += c.GetVcard()
			if md.ContactName == "" {
				md.ContactName = c.GetDisplayName()
			}
		}
		return md
	}
	return nil
}

// mediaText is what rules, the log and the webhook read as a media
// message's text: its caption, else a document's file name, a location's
// name and address, or a contact card's name.
func mediaText(md *tenant.MessageMedia) string {
	switch {
	case md.Caption != "":
		return md.Caption
	case md.Kind == tenant.MediaDocument:
		return md.FileName
	case md.Kind == tenant.MediaLocation:
		return strings.TrimSpace(md.PlaceName + " " + md.Address)
	case md.Kind == tenant.MediaContact:
		return md.ContactName
	}
	return ""
}

// downloadable is the part of a stored reference whatsmeow downloads.
func downloadable(ref []byte) (whatsmeow.DownloadableMessage, error) {
	var m waE2E.Message
	if err := proto.Unmarshal(ref, &m); err != nil {
		return nil, err
	}
	switch {
	case m.ImageMessage != nil:
		return m.ImageMessage, nil
	case m.StickerMessage != nil:
		return m.StickerMessage, nil
	case m.VideoMessage != nil:
		return m.VideoMessage, nil
	case m.AudioMessage != nil:
		return m.AudioMessage, nil
	case m.DocumentMessage != nil:
		return m.DocumentMessage, nil
	}
	return nil, errors.New("the stored reference names no file")
}

// downloadMedia downloads and stores the file of message in, if it has one
// still pending, and returns its media (nil when it has none). It returns
// stopped when the pipeline stops and later when the store cannot be read
// or written for now; answered means go on (stored, or failed for good,
// which the log shows with the reason).
func (t *tenantBot) downloadMedia(in inbound) (*tenant.MessageMedia, outcome) {
	if !tenant.MediaKind(in.kind).Valid() {
		return nil, answered
	}
	md, err := t.b.store.MessageMediaOf(t.ctx, t.id, in.id)
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		return nil, answered // an old row, or contents withheld
	case err != nil && t.ctx.Err() != nil:
		return nil, stopped
	case err != nil:
		t.log.Warn("cannot read a message's media; trying again", "id", in.id, "err", err)
		return nil, later
	case md.Status != tenant.MediaPending || t.b.opts.Media == nil:
		return &md, answered
	}
	if err := t.b.opts.Media.Limits().CheckSize(md.Kind, md.Size); err != nil {
		return t.mediaFailed(md, err.Error(), true)
	}
	d, err := downloadable(md.Download)
	if err != nil {
		return t.mediaFailed(md, "WhatsApp's reference to the file is unreadable: "+err.Error(), true)
	}
	for attempt := md.Attempts + 1; ; {
		if !t.waitOnline() {
			return nil, stopped
		}
		file, err := os.CreateTemp("", "wabot-download-*")
		if err != nil {
			t.log.Error("cannot make a file to download media into; trying again", "err", err)
			return nil, later
		}
		ctx, cancel := context.WithTimeout(t.ctx, downloadTimeout)
		err = t.out.DownloadToFile(ctx, d, file)
		cancel()
		if err == nil {
			next, out := t.saveMedia(md, file)
			file.Close()
			os.Remove(file.Name())
			return next, out
		}
		file.Close()
		os.Remove(file.Name())
		switch {
		case t.ctx.Err() != nil:
			return nil, stopped
		case disconnected(err) || errors.Is(err, session.ErrOffline):
			if !t.pause(downloadRetryDelay) {
				return nil, stopped
			}
			continue
		case errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404), errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410),
			errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith403):
			return t.mediaFailed(md, "WhatsApp no longer has the file ("+err.Error()+")", true)
		}
		final := attempt >= maxDownloadAttempts
		t.log.Warn("media download failed", "id", in.id, "attempt", attempt, "final", final, "err", err)
		if next, out := t.mediaFailed(md, "the download failed: "+err.Error(), final); final || out != answered {
			return next, out
		}
		attempt++
		if !t.pause(downloadRetryDelay * time.Duration(attempt)) {
			return nil, stopped
		}
	}
}

// saveMedia stores a downloaded file; a file over its cap or the tenant's
// quota fails the media for good, other errors (a full disk) try again
// later.
func (t *tenantBot) saveMedia(md tenant.MessageMedia, file *os.File) (*tenant.MessageMedia, outcome) {
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		t.log.Error("cannot read a downloaded file; trying again", "err", err)
		return nil, later
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), time.Minute)
	defer cancel()
	f, err := t.b.opts.Media.SaveMessageFile(ctx, t.id, md.MessageID, tenant.MediaInput{Kind: md.Kind, MIME: md.MIME, Body: file})
	switch code := tenant.ErrorCode(err); {
	case err == nil:
		md.SHA256, md.MIME, md.Size, md.Status, md.Error, md.Download = f.SHA256, f.MIME, f.Size, tenant.MediaStored, "", nil
		return &md, answered
	case code == tenant.CodeTooLarge || code == tenant.CodeQuotaExceeded || code == tenant.CodeInvalid:
		return t.mediaFailed(md, err.Error(), true)
	default:
		t.log.Error("cannot store a media file; trying again", "id", md.MessageID, "err", err)
		return nil, later
	}
}

// mediaFailed records a failed download (for good when final, which
// fails the message too) and returns the media as it now stands.
func (t *tenantBot) mediaFailed(md tenant.MessageMedia, reason string, final bool) (*tenant.MessageMedia, outcome) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	if _, err := t.b.store.MediaDownloadFailed(ctx, t.id, md.MessageID, reason, final); err != nil {
		t.log.Error("cannot record a failed download", "id", md.MessageID, "err", err)
		return nil, later
	}
	if final {
		md.Status, md.Error = tenant.MediaFailed, reason
		t.b.opts.Observer.Message("in", tenant.MsgFailed)
	}
	return &md, answered
}
