package fakewa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"image"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The client uploads files with whatsmeow's Upload and sends them; the
// contact fetches each blob, checks it and decrypts the bytes the client
// had, with the message's kind, type, name and caption.
func TestClientSendsMediaContactDecrypts(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	ctx := context.Background()

	cases := []struct {
		name  string
		class whatsmeow.MediaType
		data  []byte
		build func(whatsmeow.UploadResponse) *waE2E.Message
		want  Media
	}{
		{"image", whatsmeow.MediaImage, randomBytes(1024), func(up whatsmeow.UploadResponse) *waE2E.Message { // a whole number of AES blocks: a full padding block
			return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
				URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: proto.String("image/jpeg"), Caption: proto.String("the broken part"),
			}}
		}, Media{Kind: MediaImage, Mime: "image/jpeg", Caption: "the broken part"}},
		{"document", whatsmeow.MediaDocument, randomBytes(70001), func(up whatsmeow.UploadResponse) *waE2E.Message {
			return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
				URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: proto.String("application/pdf"),
				FileName: proto.String("invoice.pdf"), Caption: proto.String("your invoice"),
			}}
		}, Media{Kind: MediaDocument, Mime: "application/pdf", FileName: "invoice.pdf", Caption: "your invoice"}},
		{"voice note", whatsmeow.MediaAudio, randomBytes(5000), func(up whatsmeow.UploadResponse) *waE2E.Message {
			return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
				URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: proto.String("audio/ogg; codecs=opus"),
				PTT: proto.Bool(true), Seconds: proto.Uint32(3),
			}}
		}, Media{Kind: MediaAudio, Mime: "audio/ogg; codecs=opus", VoiceNote: true, Seconds: 3}},
	}
	for _, c := range cases {
		up, err := tc.cli.Upload(ctx, c.data, c.class)
		if err != nil {
			t.Fatalf("%s: upload: %v", c.name, err)
		}
		resp, err := tc.cli.SendMessage(ctx, ann.JID(), c.build(up))
		if err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
		got, err := ann.Next(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.ID != resp.ID || got.MediaErr != nil || got.Media == nil {
			t.Fatalf("%s: contact got %s with media %+v (%v)", c.name, got.ID, got.Media, got.MediaErr)
		}
		m := *got.Media
		if !bytes.Equal(m.Data, c.data) || m.Size != len(c.data) {
			t.Fatalf("%s: contact decrypted %d bytes that differ from the %d sent", c.name, len(m.Data), len(c.data))
		}
		m.Data, m.Size = nil, 0
		if !reflect.DeepEqual(m, c.want) {
			t.Fatalf("%s: contact saw %+v, want %+v", c.name, m, c.want)
		}
	}
	out := phone.Outbox()
	if len(out) != 3 || out[1].Media == nil || out[1].Media.FileName != "invoice.pdf" || out[1].Media.Size != 70001 || out[1].Media.Data != nil {
		t.Fatalf("outbox does not describe the attachments: %+v", out)
	}
}

// A client whose message does not match the file it uploaded (here a
// wrong plaintext hash) is caught: the contact gets the message but no
// bytes, and the reason.
func TestContactRejectsMediaThatDoesNotMatch(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	ctx := context.Background()
	up, err := tc.cli.Upload(ctx, []byte("a photo"), whatsmeow.MediaImage)
	if err != nil {
		t.Fatal(err)
	}
	wrong := sha256.Sum256([]byte("another photo"))
	if _, err := tc.cli.SendMessage(ctx, ann.JID(), &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
		FileSHA256: wrong[:], FileLength: &up.FileLength, Mimetype: proto.String("image/jpeg"),
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := ann.Next(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.MediaErr == nil || got.Media == nil || got.Media.Data != nil || got.Media.Kind != MediaImage {
		t.Fatalf("contact accepted a mismatched attachment: %+v (%v)", got.Media, got.MediaErr)
	}
}

// A contact's image, voice note, document, video and sticker arrive and
// whatsmeow's Download returns exactly the bytes sent, without error;
// locations and contact cards arrive as structured messages.
func TestContactSendsMediaClientDownloads(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	bea := phone.NewContact("", "Bea")
	ctx := context.Background()

	photo := pngImage(t, 40, 30)
	voice, doc, video, sticker := randomBytes(4096), randomBytes(123457), randomBytes(20000), randomBytes(3000)
	send := []struct {
		name      string
		data      []byte
		send      func() (string, error)
		part      func(*waE2E.Message) whatsmeow.DownloadableMessage
		mediaType string
	}{
		{"image", photo, func() (string, error) { return bea.SendImage(photo, "image/png", "it broke") },
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return m.GetImageMessage() }, "image"},
		{"voice note", voice, func() (string, error) { return bea.SendAudio(voice, "", true, 4) },
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return m.GetAudioMessage() }, "ptt"},
		{"document", doc, func() (string, error) { return bea.SendDocument(doc, "application/pdf", "order.pdf", "my order") },
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return m.GetDocumentMessage() }, "document"},
		{"video", video, func() (string, error) { return bea.SendVideo(video, "video/mp4", "", 2) },
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return m.GetVideoMessage() }, "video"},
		{"sticker", sticker, func() (string, error) { return bea.SendSticker(sticker, "") },
			func(m *waE2E.Message) whatsmeow.DownloadableMessage { return m.GetStickerMessage() }, "sticker"},
	}
	var msgs []*events.Message
	for _, c := range send {
		id, err := c.send()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		msgs = append(msgs, waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id }))
	}
	for i, c := range send {
		evt := msgs[i]
		if evt.Info.MediaType != c.mediaType {
			t.Fatalf("%s: media type %q, want %q", c.name, evt.Info.MediaType, c.mediaType)
		}
		got, err := tc.cli.Download(ctx, c.part(evt.Message))
		if err != nil {
			t.Fatalf("%s: download: %v", c.name, err)
		}
		if !bytes.Equal(got, c.data) {
			t.Fatalf("%s: downloaded %d bytes that differ from the %d sent", c.name, len(got), len(c.data))
		}
	}
	// The other two ways whatsmeow fetches media: by direct path alone
	// (through media_conn's hosts) and streamed into a file.
	img := msgs[0].Message.GetImageMessage()
	byPath := proto.Clone(img).(*waE2E.ImageMessage)
	byPath.URL = nil
	if got, err := tc.cli.Download(ctx, byPath); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("download by direct path: %d bytes (%v), want the %d sent", len(got), err, len(photo))
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "order.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tc.cli.DownloadToFile(ctx, msgs[2].Message.GetDocumentMessage(), f); err != nil {
		t.Fatalf("download to file: %v", err)
	}
	if got, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("file holds %d bytes (%v), want the %d sent", len(got), err, len(doc))
	}
	if img.GetCaption() != "it broke" || img.GetMimetype() != "image/png" || img.GetWidth() != 40 || img.GetHeight() != 30 {
		t.Fatalf("image message %v", img)
	}
	if a := msgs[1].Message.GetAudioMessage(); !a.GetPTT() || a.GetSeconds() != 4 || a.GetMimetype() != "audio/ogg; codecs=opus" {
		t.Fatalf("voice note %v", a)
	}
	if d := msgs[2].Message.GetDocumentMessage(); d.GetFileName() != "order.pdf" || d.GetCaption() != "my order" || d.GetFileLength() != uint64(len(doc)) {
		t.Fatalf("document %v", d)
	}
	if st := msgs[4].Message.GetStickerMessage(); st.GetMimetype() != "image/webp" {
		t.Fatalf("sticker %v", st)
	}

	id, err := bea.SendLocation(52.52, 13.405, "Shop", "Main St 1")
	if err != nil {
		t.Fatal(err)
	}
	loc := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id }).Message.GetLocationMessage()
	if loc.GetDegreesLatitude() != 52.52 || loc.GetDegreesLongitude() != 13.405 || loc.GetName() != "Shop" || loc.GetAddress() != "Main St 1" {
		t.Fatalf("location %v", loc)
	}
	vcard := "BEGIN:VCARD\nVERSION:3.0\nFN:Cy\nTEL:+15550003333\nEND:VCARD"
	if id, err = bea.SendContactCard("Cy", vcard); err != nil {
		t.Fatal(err)
	}
	card := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id }).Message.GetContactMessage()
	if card.GetDisplayName() != "Cy" || card.GetVcard() != vcard {
		t.Fatalf("contact card %v", card)
	}
}

// Download faults fail whatsmeow's Download with the error a real
// failure gives, in one request (no retries), and the blob downloads
// again once they are used up.
func TestDownloadFaults(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	bea := phone.NewContact("", "Bea")
	ctx := context.Background()
	data := randomBytes(2000)
	id, err := bea.SendImage(data, "image/jpeg", "")
	if err != nil {
		t.Fatal(err)
	}
	img := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id }).Message.GetImageMessage()

	download := func(what string, want error) {
		t.Helper()
		before := s.MediaStats().Downloads
		got, err := tc.cli.Download(ctx, img)
		if want == nil && (err != nil || !bytes.Equal(got, data)) {
			t.Fatalf("%s: downloaded %d bytes (%v), want the %d sent", what, len(got), err, len(data))
		}
		if want != nil && !errors.Is(err, want) {
			t.Fatalf("%s: download error %v, want %v", what, err, want)
		}
		if n := s.MediaStats().Downloads - before; n != 1 {
			t.Fatalf("%s: %d requests, want 1", what, n)
		}
	}
	if err := bea.FailMediaDownloads(id, DownloadMissing, 1); err != nil {
		t.Fatal(err)
	}
	download("missing blob", whatsmeow.ErrMediaDownloadFailedWith404)
	s.FailDownloads(DownloadCorrupt, 1)
	download("corrupt blob", whatsmeow.ErrInvalidMediaEncSHA256)
	download("after the faults", nil)

	// Without its encrypted hash the message leaves the MAC to catch it.
	s.FailDownloads(DownloadCorrupt, 1)
	noHash := proto.Clone(img).(*waE2E.ImageMessage)
	noHash.FileEncSHA256 = nil
	if _, err := tc.cli.Download(ctx, noHash); !errors.Is(err, whatsmeow.ErrInvalidMediaHMAC) {
		t.Fatalf("corrupt blob without hash: %v, want %v", err, whatsmeow.ErrInvalidMediaHMAC)
	}
	s.FailDownloads(DownloadMissing, 1)
	s.ClearFaults()
	download("after ClearFaults", nil)

	if err := bea.FailMediaDownloads("no-such-id", DownloadMissing, 1); err == nil {
		t.Fatal("a fault for a message the contact never sent was accepted")
	}
}

// Uploads fail while FailUploads says so, then work; the upload endpoint
// refuses a wrong media auth and a token that is not the body's hash.
func TestUploadFaultsAndChecks(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ctx := context.Background()

	s.FailUploads(1)
	if _, err := tc.cli.Upload(ctx, []byte("menu"), whatsmeow.MediaDocument); err == nil {
		t.Fatal("upload succeeded while uploads fail")
	}
	if _, err := tc.cli.Upload(ctx, []byte("menu"), whatsmeow.MediaDocument); err != nil {
		t.Fatalf("upload after the fault: %v", err)
	}

	body := randomBytes(48)
	sum := sha256.Sum256(body)
	token := base64.URLEncoding.EncodeToString(sum[:])
	post := func(path string) int {
		t.Helper()
		resp, err := s.HTTPClient().Post("https://"+mediaHost+path, "", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/mms/image/" + token + "?auth=wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong auth: %d", code)
	}
	if code := post("/mms/image/" + base64.URLEncoding.EncodeToString(make([]byte, 32)) + "?auth=" + s.media.auth); code != http.StatusBadRequest {
		t.Fatalf("wrong token: %d", code)
	}
	if code := post("/mms/image/" + token + "?auth=" + s.media.auth); code != http.StatusOK {
		t.Fatalf("good upload: %d", code)
	}
	resp, err := s.HTTPClient().Get("https://" + mediaHost + "/v/fake/nothing?ccb=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing blob: %d", resp.StatusCode)
	}
}
