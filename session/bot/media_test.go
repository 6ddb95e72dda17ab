package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// Small but real files: the store sniffs their types.
var (
	pngFile = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00"), bytes.Repeat([]byte{7}, 300)...)
	oggFile = append([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead"), bytes.Repeat([]byte{1}, 200)...)
	pdfFile = append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("invoice line\n"), 50)...)
)

// inboundOf returns the tenant's inbound message with WhatsApp id waID,
// once its status is one of want.
func (r *rig) inboundOf(tenantID, waID string, want ...tenant.MessageStatus) tenant.Message {
	r.t.Helper()
	var found tenant.Message
	r.waitLogs(tenantID, "message "+waID+" "+string(want[0]), func(ms []tenant.Message) bool {
		for _, m := range ms {
			if m.Direction == "in" && m.WAID == waID {
				for _, w := range want {
					if m.Status == w {
						found = m
						return true
					}
				}
			}
		}
		return false
	})
	return found
}

// fileOf reads back the stored file of a message.
func (r *rig) fileOf(tenantID string, id int64) (tenant.MessageMedia, []byte) {
	r.t.Helper()
	md, err := r.store.MessageMediaOf(context.Background(), tenantID, id)
	if err != nil {
		r.t.Fatal(err)
	}
	if md.Status != tenant.MediaStored {
		return md, nil
	}
	_, f, err := r.opts.Media.Open(context.Background(), tenantID, md.SHA256)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		r.t.Fatal(err)
	}
	return md, data
}

// A photo, a voice note, a document, a location and a contact card
// arrive: each file is stored byte for byte with its details, a photo
// sent twice is stored once, and rules answer by kind and caption;
// reactions are logged as ignored and not answered.
func TestInboundMediaStoredAndAnsweredByKindAndCaption(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(
		tenant.Rule{Kind: tenant.OnImage, Match: tenant.MatchContains, Pattern: "broken", Reply: "sorry about the damage"},
		tenant.Rule{Kind: tenant.OnImage, Match: tenant.MatchContains, Reply: "thanks for the photo"},
		tenant.Rule{Kind: tenant.OnAudio, Match: tenant.MatchContains, Reply: "we will listen"},
		tenant.Rule{Match: tenant.MatchContains, Pattern: "invoice", Reply: "accounts will look"},
	)
	cfg.FallbackReply = "got it"
	id, phone := r.tenant(cfg)
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")
	must := func(waID string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return waID
	}

	photo := must(ann.SendImage(pngFile, "image/png", "It arrived BROKEN"))
	expect(t, ann, "sorry about the damage")
	again := must(bob.SendImage(pngFile, "image/png", ""))
	expect(t, bob, "thanks for the photo")
	voice := must(ann.SendAudio(oggFile, "audio/ogg; codecs=opus", true, 7))
	expect(t, ann, "we will listen")
	doc := must(ann.SendDocument(pdfFile, "application/pdf", "invoice-42.pdf", ""))
	expect(t, ann, "accounts will look")
	place := must(ann.SendLocation(-23.55, -46.63, "Shop", "Rua A, 1"))
	expect(t, ann, "got it")
	card := must(ann.SendContactCard("Carl", "BEGIN:VCARD\nVERSION:3.0\nFN:Carl\nTEL:+15550009999\nEND:VCARD"))
	expect(t, ann, "got it")
	reaction := must(ann.SendMessage(&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍"),
		Key: &waCommon.MessageKey{RemoteJID: proto.String(phone.JID().String()), ID: proto.String(photo)}}}))
	expectNothing(t, ann, time.Second)
	if m := r.inboundOf(id, reaction, tenant.MsgIgnored); m.Kind != "reaction" {
		t.Errorf("reaction logged as %q", m.Kind)
	}

	for _, c := range []struct {
		waID, kind, mime, name, caption string
		data                            []byte
		seconds                         int
	}{
		{photo, "image", "image/png", "", "It arrived BROKEN", pngFile, 0},
		{again, "image", "image/png", "", "", pngFile, 0},
		{voice, "voice", "audio/ogg", "", "", oggFile, 7},
		{doc, "document", "application/pdf", "invoice-42.pdf", "", pdfFile, 0},
	} {
		m := r.inboundOf(id, c.waID, tenant.MsgReplied)
		md, data := r.fileOf(id, m.ID)
		if m.Kind != c.kind || string(md.Kind) != c.kind || !bytes.Equal(data, c.data) || !strings.HasPrefix(md.MIME, c.mime) ||
			md.FileName != c.name || md.Caption != c.caption || md.DurationSeconds != c.seconds || md.Size != int64(len(c.data)) {
			t.Errorf("%s: logged %q, media %+v with %d bytes (equal: %v)", c.kind, m.Kind, md, len(data), bytes.Equal(data, c.data))
		}
	}
	if u, err := r.store.MediaUsage(context.Background(), id); err != nil || u.Files != 3 {
		t.Errorf("usage %+v (%v): the photo sent twice should be one of 3 files", u, err)
	}
	m := r.inboundOf(id, place, tenant.MsgReplied)
	if md, _ := r.fileOf(id, m.ID); md.Kind != tenant.MediaLocation || !md.Positioned || md.Latitude != -23.55 || md.PlaceName != "Shop" || md.Address != "Rua A, 1" {
		t.Errorf("location stored as %+v", md)
	}
	m = r.inboundOf(id, card, tenant.MsgReplied)
	if md, _ := r.fileOf(id, m.ID); md.Kind != tenant.MediaContact || md.ContactName != "Carl" || !strings.Contains(md.VCard, "+15550009999") {
		t.Errorf("contact card stored as %+v", md)
	}
}

// A download that keeps failing (corrupt bytes every time) leaves the
// message failed with the reason and unanswered; the chat's next message
// is answered. A file WhatsApp no longer has fails at once.
func TestInboundMediaDownloadThatKeepsFailing(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hello", Reply: "hi"})
	cfg.FallbackReply = "got it"
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")

	r.srv.FailDownloads(fakewa.DownloadCorrupt, maxDownloadAttempts)
	bad, err := ann.SendImage(pngFile, "image/png", "")
	if err != nil {
		t.Fatal(err)
	}
	m := r.inboundOf(id, bad, tenant.MsgFailed)
	if !strings.Contains(m.Error, "download failed") {
		t.Errorf("failed with %q, want the download's reason", m.Error)
	}
	if md, _ := r.fileOf(id, m.ID); md.Status != tenant.MediaFailed || md.Attempts != maxDownloadAttempts {
		t.Errorf("media %+v, want failed after %d attempts", md, maxDownloadAttempts)
	}
	ann.Send("hello")
	expect(t, ann, "hi") // not "got it" for the failed photo: it was not answered

	r.srv.FailDownloads(fakewa.DownloadMissing, 1)
	gone, err := ann.SendDocument(pdfFile, "application/pdf", "a.pdf", "")
	if err != nil {
		t.Fatal(err)
	}
	m = r.inboundOf(id, gone, tenant.MsgFailed)
	if md, _ := r.fileOf(id, m.ID); md.Attempts != 1 || !strings.Contains(m.Error, "no longer has the file") {
		t.Errorf("a missing file: %q, media %+v; want failed at the first attempt", m.Error, md)
	}
	if u, _ := r.store.MediaUsage(context.Background(), id); u.Files != 0 {
		t.Errorf("%d files stored from failed downloads", u.Files)
	}
	if entries, _ := os.ReadDir(r.opts.Media.Root()); len(entries) > 1 {
		t.Errorf("the media folder holds %d entries after failed downloads", len(entries))
	}
}

// Stopped while a download waits to be tried again, the bot downloads
// the file after the restart and answers the message once.
func TestInboundMediaDownloadResumesAfterARestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Kind: tenant.OnDocument, Match: tenant.MatchContains, Reply: "file received"})
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	r.srv.FailDownloads(fakewa.DownloadCorrupt, 1)
	waID, err := ann.SendDocument(pdfFile, "application/pdf", "order.pdf", "")
	if err != nil {
		t.Fatal(err)
	}
	m := r.inboundOf(id, waID, tenant.MsgReceived)
	waitFor(t, "the first download failed", func() bool {
		md, err := r.store.MessageMediaOf(context.Background(), id, m.ID)
		return err == nil && md.Attempts == 1
	})
	r.stop()
	r.start()
	expect(t, ann, "file received")
	m = r.inboundOf(id, waID, tenant.MsgReplied)
	if md, data := r.fileOf(id, m.ID); !bytes.Equal(data, pdfFile) || len(md.Download) != 0 {
		t.Errorf("after the restart: media %+v, %d bytes; want the file, and WhatsApp's reference dropped", md.Status, len(data))
	}
	expectNothing(t, ann, time.Second)
}

// The bot's webhook hears a media message with its kind and media, and
// the media's download link.
func TestWebhookPayloadCarriesMedia(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []payload
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p payload
		json.NewDecoder(req.Body).Decode(&p)
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		w.Write([]byte(`{"reply":"seen"}`))
	}))
	defer hook.Close()
	r := newRig(t, Options{AllowPrivateWebhooks: true,
		MediaLink: func(tenantID string, id int64) string {
			return "https://wabot.example/media/" + tenantID + "-" + itoa(int(id))
		}})
	cfg := rules()
	cfg.Webhook.URL = hook.URL
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	if _, err := ann.SendImage(pngFile, "image/png", "look"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "seen")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	pm := got[0].Message
	if pm.Kind != "image" || pm.Text != "look" || pm.Media == nil || pm.Media.Status != tenant.MediaStored ||
		pm.Media.MIME != "image/png" || pm.Media.Size != int64(len(pngFile)) || !strings.HasPrefix(pm.Media.DownloadURL, "https://wabot.example/media/"+id+"-") {
		t.Fatalf("payload message %+v, media %+v", pm, pm.Media)
	}
}
