package fakewa

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig reads the dimensions of images contacts send
	_ "image/jpeg"
	_ "image/png"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// MediaKind is the class of an attachment, as WhatsApp's message types
// name them.
type MediaKind string

const (
	MediaImage    MediaKind = "image"
	MediaVideo    MediaKind = "video"
	MediaAudio    MediaKind = "audio" // voice notes too, with VoiceNote set
	MediaDocument MediaKind = "document"
	MediaSticker  MediaKind = "sticker"
)

// mediaKeyInfo is the HKDF info string of each kind: stickers are images
// to the encryption.
var mediaKeyInfo = map[MediaKind]string{
	MediaImage: imageKeys, MediaSticker: imageKeys, MediaVideo: videoKeys,
	MediaAudio: audioKeys, MediaDocument: documentKeys,
}

// defaultMime is the type a contact's attachment gets when none is given.
var defaultMime = map[MediaKind]string{
	MediaImage: "image/jpeg", MediaSticker: "image/webp", MediaVideo: "video/mp4",
	MediaAudio: "audio/ogg; codecs=opus", MediaDocument: "application/octet-stream",
}

// Media is an attachment: what a contact sends (SendMedia), and what a
// contact received from a linked device, decrypted and hash-checked.
type Media struct {
	Kind      MediaKind
	Data      []byte // the plaintext file; nil in Sent, which keeps no bytes
	Size      int    // len(Data), on what a contact received; kept where Data is dropped
	Mime      string
	FileName  string // documents
	Caption   string // images, videos and documents
	Seconds   uint32 // audio and video
	VoiceNote bool   // audio recorded in the chat (PTT)
	Width     uint32 // images, videos and stickers; 0 when unknown
	Height    uint32
}

// SendMedia sends m as this contact: the file is encrypted as WhatsApp
// does, stored on the fake's media host, and the linked devices get the
// message that points at it (which whatsmeow's Download fetches and
// checks). Mime defaults by kind; an image's or sticker's width and
// height are read from the data when they are not given and it is a
// GIF, JPEG or PNG. It returns the message id.
func (c *Contact) SendMedia(m Media) (string, error) {
	msg, err := c.s.mediaMessage(m)
	if err != nil {
		return "", err
	}
	return c.SendMessage(msg)
}

// SendImage sends an image with an optional caption.
func (c *Contact) SendImage(data []byte, mime, caption string) (string, error) {
	return c.SendMedia(Media{Kind: MediaImage, Data: data, Mime: mime, Caption: caption})
}

// SendVideo sends a video of the given length with an optional caption.
func (c *Contact) SendVideo(data []byte, mime, caption string, seconds uint32) (string, error) {
	return c.SendMedia(Media{Kind: MediaVideo, Data: data, Mime: mime, Caption: caption, Seconds: seconds})
}

// SendAudio sends an audio file, or a voice note when voiceNote is set.
func (c *Contact) SendAudio(data []byte, mime string, voiceNote bool, seconds uint32) (string, error) {
	return c.SendMedia(Media{Kind: MediaAudio, Data: data, Mime: mime, VoiceNote: voiceNote, Seconds: seconds})
}

// SendDocument sends a file under fileName with an optional caption.
func (c *Contact) SendDocument(data []byte, mime, fileName, caption string) (string, error) {
	return c.SendMedia(Media{Kind: MediaDocument, Data: data, Mime: mime, FileName: fileName, Caption: caption})
}

// SendSticker sends a sticker (WhatsApp's are WebP).
func (c *Contact) SendSticker(data []byte, mime string) (string, error) {
	return c.SendMedia(Media{Kind: MediaSticker, Data: data, Mime: mime})
}

// SendLocation shares a place; name and address may be empty.
func (c *Contact) SendLocation(lat, lng float64, name, address string) (string, error) {
	loc := &waE2E.LocationMessage{DegreesLatitude: proto.Float64(lat), DegreesLongitude: proto.Float64(lng)}
	if name != "" {
		loc.Name = proto.String(name)
	}
	if address != "" {
		loc.Address = proto.String(address)
	}
	return c.SendMessage(&waE2E.Message{LocationMessage: loc})
}

// SendContactCard shares a contact as a vCard.
func (c *Contact) SendContactCard(displayName, vcard string) (string, error) {
	return c.SendMessage(&waE2E.Message{ContactMessage: &waE2E.ContactMessage{
		DisplayName: proto.String(displayName), Vcard: proto.String(vcard),
	}})
}

// FailMediaDownloads makes the next n downloads of the attachment of
// message id, which this contact sent, get f.
func (c *Contact) FailMediaDownloads(id string, f DownloadFault, n int) error {
	c.mu.Lock()
	msg := c.sent[id]
	c.mu.Unlock()
	ref, _, _ := attachmentOf(msg)
	if ref == nil {
		return fmt.Errorf("fakewa: %s sent no attachment as %s", c.jid, id)
	}
	c.s.FailBlobDownloads(ref.GetDirectPath(), f, n)
	return nil
}

// mediaMessage encrypts and stores m's file and builds its message.
func (s *Server) mediaMessage(m Media) (*waE2E.Message, error) {
	info, ok := mediaKeyInfo[m.Kind]
	if !ok {
		return nil, fmt.Errorf("fakewa: unknown media kind %q", m.Kind)
	}
	if len(m.Data) == 0 {
		return nil, errors.New("fakewa: media without data")
	}
	sealed, err := sealMedia(m.Data, info)
	if err != nil {
		return nil, err
	}
	p := s.media.put(sealed.body)
	url, directPath := "https://"+mediaHost+p+"?ccb=1", p+"?ccb=1"
	if m.Mime == "" {
		m.Mime = defaultMime[m.Kind]
	}
	if (m.Kind == MediaImage || m.Kind == MediaSticker) && m.Width == 0 && m.Height == 0 {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(m.Data)); err == nil {
			m.Width, m.Height = uint32(cfg.Width), uint32(cfg.Height)
		}
	}
	length, now := uint64(len(m.Data)), time.Now().Unix()
	opt := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	dim := func(v uint32) *uint32 {
		if v == 0 {
			return nil
		}
		return &v
	}
	switch m.Kind {
	case MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: &url, DirectPath: &directPath, MediaKey: sealed.mediaKey, MediaKeyTimestamp: &now,
			FileEncSHA256: sealed.fileEncSHA256, FileSHA256: sealed.fileSHA256, FileLength: &length,
			Mimetype: &m.Mime, Caption: opt(m.Caption), Width: dim(m.Width), Height: dim(m.Height),
		}}, nil
	case MediaSticker:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			URL: &url, DirectPath: &directPath, MediaKey: sealed.mediaKey, MediaKeyTimestamp: &now,
			FileEncSHA256: sealed.fileEncSHA256, FileSHA256: sealed.fileSHA256, FileLength: &length,
			Mimetype: &m.Mime, Width: dim(m.Width), Height: dim(m.Height),
		}}, nil
	case MediaVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: &url, DirectPath: &directPath, MediaKey: sealed.mediaKey, MediaKeyTimestamp: &now,
			FileEncSHA256: sealed.fileEncSHA256, FileSHA256: sealed.fileSHA256, FileLength: &length,
			Mimetype: &m.Mime, Caption: opt(m.Caption), Seconds: &m.Seconds, Width: dim(m.Width), Height: dim(m.Height),
		}}, nil
	case MediaAudio:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			URL: &url, DirectPath: &directPath, MediaKey: sealed.mediaKey, MediaKeyTimestamp: &now,
			FileEncSHA256: sealed.fileEncSHA256, FileSHA256: sealed.fileSHA256, FileLength: &length,
			Mimetype: &m.Mime, Seconds: &m.Seconds, PTT: &m.VoiceNote,
		}}, nil
	default: // MediaDocument
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: &url, DirectPath: &directPath, MediaKey: sealed.mediaKey, MediaKeyTimestamp: &now,
			FileEncSHA256: sealed.fileEncSHA256, FileSHA256: sealed.fileSHA256, FileLength: &length,
			Mimetype: &m.Mime, FileName: opt(m.FileName), Title: opt(m.FileName), Caption: opt(m.Caption),
		}}, nil
	}
}

// unwrap returns the message inside the wrappers clients put around a
// captioned document, a disappearing or a view-once message.
func unwrap(msg *waE2E.Message) *waE2E.Message {
	for {
		switch {
		case msg.GetDocumentWithCaptionMessage() != nil:
			msg = msg.GetDocumentWithCaptionMessage().GetMessage()
		case msg.GetEphemeralMessage() != nil:
			msg = msg.GetEphemeralMessage().GetMessage()
		case msg.GetViewOnceMessage() != nil:
			msg = msg.GetViewOnceMessage().GetMessage()
		case msg.GetViewOnceMessageV2() != nil:
			msg = msg.GetViewOnceMessageV2().GetMessage()
		default:
			return msg
		}
	}
}

// attachmentRef is what every downloadable message class carries.
type attachmentRef interface {
	GetURL() string
	GetDirectPath() string
	GetMediaKey() []byte
	GetFileSHA256() []byte
	GetFileEncSHA256() []byte
	GetFileLength() uint64
	GetMimetype() string
}

// attachmentOf finds msg's attachment, wrapped or not, and describes it
// without its bytes. ref is nil when msg has none.
func attachmentOf(msg *waE2E.Message) (attachmentRef, Media, bool) {
	msg = unwrap(msg)
	switch {
	case msg.GetImageMessage() != nil:
		m := msg.GetImageMessage()
		return m, Media{Kind: MediaImage, Caption: m.GetCaption(), Width: m.GetWidth(), Height: m.GetHeight()}, true
	case msg.GetStickerMessage() != nil:
		m := msg.GetStickerMessage()
		return m, Media{Kind: MediaSticker, Width: m.GetWidth(), Height: m.GetHeight()}, true
	case msg.GetVideoMessage() != nil:
		m := msg.GetVideoMessage()
		return m, Media{Kind: MediaVideo, Caption: m.GetCaption(), Seconds: m.GetSeconds(), Width: m.GetWidth(), Height: m.GetHeight()}, true
	case msg.GetAudioMessage() != nil:
		m := msg.GetAudioMessage()
		return m, Media{Kind: MediaAudio, Seconds: m.GetSeconds(), VoiceNote: m.GetPTT()}, true
	case msg.GetDocumentMessage() != nil:
		m := msg.GetDocumentMessage()
		return m, Media{Kind: MediaDocument, Caption: m.GetCaption(), FileName: m.GetFileName()}, true
	}
	return nil, Media{}, false
}

// openAttachment does what a recipient's phone does with msg's
// attachment: fetch the blob its direct path (or URL) names, check both
// hashes and the MAC, and decrypt it with the message's key. It returns
// nil, nil when msg has no attachment.
func (s *Server) openAttachment(msg *waE2E.Message) (*Media, error) {
	ref, m, ok := attachmentOf(msg)
	if !ok {
		return nil, nil
	}
	m.Mime = ref.GetMimetype()
	body := s.media.get(ref.GetDirectPath())
	if body == nil && ref.GetURL() != "" {
		body = s.media.get(ref.GetURL())
	}
	if body == nil {
		return &m, fmt.Errorf("fakewa: no uploaded %s at direct path %q or URL %q", m.Kind, ref.GetDirectPath(), ref.GetURL())
	}
	length := -1 // unset: a recipient cannot check it
	if ref.GetFileLength() > 0 {
		length = int(ref.GetFileLength())
	}
	data, err := openMedia(body, ref.GetMediaKey(), mediaKeyInfo[m.Kind], ref.GetFileEncSHA256(), ref.GetFileSHA256(), length)
	if err != nil {
		return &m, fmt.Errorf("fakewa: %s attachment: %w", m.Kind, err)
	}
	m.Data, m.Size = data, len(data)
	return &m, nil
}

// encMediaType is the mediatype attribute of an <enc> carrying msg, as
// whatsmeow's own sends set it; whatsmeow reports it as Info.MediaType.
func encMediaType(msg *waE2E.Message) string {
	msg = unwrap(msg)
	switch {
	case msg.GetImageMessage() != nil:
		return "image"
	case msg.GetStickerMessage() != nil:
		return "sticker"
	case msg.GetDocumentMessage() != nil:
		return "document"
	case msg.GetAudioMessage() != nil:
		if msg.GetAudioMessage().GetPTT() {
			return "ptt"
		}
		return "audio"
	case msg.GetVideoMessage() != nil:
		if msg.GetVideoMessage().GetGifPlayback() {
			return "gif"
		}
		return "video"
	case msg.GetContactMessage() != nil:
		return "vcard"
	}
	return ""
}
