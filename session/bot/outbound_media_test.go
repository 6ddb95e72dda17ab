package bot

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"wabot/tenant"
)

// A queued document whose upload to WhatsApp fails on fewer passes than
// the limit still goes out, once, with its id and its bytes; one whose
// uploads keep failing ends failed with upload_failed and never reaches
// the contact.
func TestSendMediaUploadFailures(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true, IdleCheck: 20 * time.Millisecond}})
	r.stop()
	media, err := tenant.NewMediaStore(r.store, filepath.Join(r.dir, "media"), tenant.DefaultMediaLimits())
	if err != nil {
		t.Fatal(err)
	}
	r.opts.Media = media
	r.start()
	id, phone := r.tenant(tenant.DefaultBotConfig())
	carl := phone.NewContact("", "Carl")
	doc := []byte("%PDF-1.4\n% price list, page 1 of 1\n%%EOF\n")
	f, kind, err := media.PutUpload(context.Background(), id, "", "", 0, bytes.NewReader(doc))
	if err != nil || kind != tenant.MediaDocument {
		t.Fatalf("PutUpload = %v, %v", kind, err)
	}

	r.srv.FailUploads(maxUploadFailures - 1)
	m, _ := r.send(id, tenant.SendRequest{To: "+" + carl.JID().User, Media: &tenant.SendMedia{UploadID: f.SHA256, FileName: "prices.pdf"}})
	got, err := carl.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.WAID || got.Media == nil || !bytes.Equal(got.Media.Data, doc) || got.Media.FileName != "prices.pdf" {
		t.Fatalf("carl got %+v (media %+v, %v)", got, got.Media, got.MediaErr)
	}
	r.waitStatus(id, m.ID, tenant.APIDelivered)
	if n := sentTo(phone, m.WAID); n != 1 {
		t.Fatalf("message sent %d times, want once", n)
	}

	r.srv.FailUploads(maxUploadFailures)
	m, _ = r.send(id, tenant.SendRequest{To: "+" + carl.JID().User, Text: "Prices", Media: &tenant.SendMedia{UploadID: f.SHA256}})
	failed := r.waitStatus(id, m.ID, tenant.APIFailed)
	if failed.Reason != tenant.ReasonUploadFailed {
		t.Fatalf("failed with %q (%s), want %q", failed.Reason, failed.Error, tenant.ReasonUploadFailed)
	}
	if n := sentTo(phone, m.WAID); n != 0 || carl.Pending() != 0 {
		t.Fatalf("a message whose upload failed reached the contact (%d sends, %d pending)", n, carl.Pending())
	}
}
