package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

// ValidateSend takes media instead of text: one source, a known kind, a
// caption given once that fits its kind and WhatsApp's 1,024 characters.
func TestValidateSendMedia(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name  string
		req   tenant.SendRequest
		field string // "" for valid
	}{
		{"an upload without text", tenant.SendRequest{Media: &tenant.SendMedia{UploadID: id}}, ""},
		{"a url with text as caption", tenant.SendRequest{Text: "menu", Media: &tenant.SendMedia{URL: "https://example.com/m.jpg"}}, ""},
		{"no source", tenant.SendRequest{Media: &tenant.SendMedia{}}, "media"},
		{"two sources", tenant.SendRequest{Media: &tenant.SendMedia{UploadID: id, URL: "https://example.com/x"}}, "media"},
		{"not an id", tenant.SendRequest{Media: &tenant.SendMedia{UploadID: "../etc/passwd"}}, "media.upload_id"},
		{"a file: url", tenant.SendRequest{Media: &tenant.SendMedia{URL: "file:///etc/passwd"}}, "media.url"},
		{"a url with a password", tenant.SendRequest{Media: &tenant.SendMedia{URL: "https://u:p@example.com/x"}}, "media.url"},
		{"a location", tenant.SendRequest{Media: &tenant.SendMedia{UploadID: id, Kind: tenant.MediaLocation}}, "media.kind"},
		{"the caption twice", tenant.SendRequest{Text: "a", Media: &tenant.SendMedia{UploadID: id, Caption: "b"}}, "text"},
		{"a caption on a voice note", tenant.SendRequest{Text: "hi", Media: &tenant.SendMedia{UploadID: id, Kind: tenant.MediaVoice}}, "media.caption"},
		{"a long caption", tenant.SendRequest{Media: &tenant.SendMedia{UploadID: id, Caption: strings.Repeat("é", tenant.MaxCaptionChars+1)}}, "media.caption"},
		{"a path as file name", tenant.SendRequest{Media: &tenant.SendMedia{UploadID: id, FileName: "../x.pdf"}}, "media.file_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.To = "+15551234567"
			_, _, err := tenant.ValidateSend(tc.req)
			var e *tenant.Error
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (!errorAs(err, &e) || e.Fields[tc.field] == ""):
				t.Fatalf("want a field error on %s, got %v", tc.field, err)
			}
		})
	}
	for mime, want := range map[string]tenant.MediaKind{"image/png": tenant.MediaImage, "image/svg+xml": tenant.MediaDocument,
		"video/mp4": tenant.MediaVideo, "audio/ogg; codecs=opus": tenant.MediaVoice, "audio/mpeg": tenant.MediaAudio,
		"application/pdf": tenant.MediaDocument, "text/html; charset=utf-8": tenant.MediaDocument} {
		if got := tenant.KindOfMIME(mime); got != want {
			t.Errorf("KindOfMIME(%q) = %s, want %s", mime, got, want)
		}
	}
}

// A queued media message commits with its media row linked to the
// tenant's file; a file the tenant does not have (another tenant's)
// stores nothing at all.
func TestQueueOutboundWithMedia(t *testing.T) {
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	ctx := context.Background()
	_, a := newTenant(t, r.st, "a@example.com", "A")
	_, b := newTenant(t, r.st, "b@example.com", "B")
	pdf := []byte("%PDF-1.4\n% invoice\n%%EOF\n")
	f, kind, err := r.media.PutUpload(ctx, a.ID, "", "application/octet-stream", 0, bytes.NewReader(pdf))
	if err != nil || kind != tenant.MediaDocument || f.MIME != "application/pdf" {
		t.Fatalf("PutUpload = %+v %s, %v", f, kind, err)
	}
	m, _, err := r.st.QueueOutbound(ctx, a.ID, tenant.NewOutbound{Chat: "1555@s.whatsapp.net", Text: "Your invoice", WAID: "W1",
		Media: &tenant.OutboundMedia{Kind: kind, SHA256: f.SHA256, FileName: "invoice.pdf"}}, sendLim)
	if err != nil {
		t.Fatal(err)
	}
	md, err := r.st.MessageMediaOf(ctx, a.ID, m.ID)
	if err != nil || md.Status != tenant.MediaStored || md.SHA256 != f.SHA256 || md.Caption != "Your invoice" || md.FileName != "invoice.pdf" || md.Size != int64(len(pdf)) {
		t.Fatalf("media of the queued message = %+v, %v", md, err)
	}

	_, _, err = r.st.QueueOutbound(ctx, b.ID, tenant.NewOutbound{Chat: "1555@s.whatsapp.net", WAID: "W2",
		Media: &tenant.OutboundMedia{Kind: kind, SHA256: f.SHA256}}, sendLim)
	var e *tenant.Error
	if !errorAs(err, &e) || e.Fields["media.upload_id"] == "" {
		t.Fatalf("tenant B queued tenant A's file: %v", err)
	}
	if list, _, _ := r.st.APIMessages(ctx, b.ID, tenant.APIMessageQuery{}); len(list) != 0 {
		t.Fatalf("a refused media message left %d messages", len(list))
	}
}

// A file a saved rule names is pinned: the log's retention keeps it past
// an upload's day; saved without it, it is kept one more day, then goes.
// A reply logged with the attachment carries the file as its media.
func TestRuleAttachmentPinned(t *testing.T) {
	r := newMediaRig(t, tenant.DefaultMediaLimits())
	ctx := context.Background()
	_, a := newTenant(t, r.st, "a@example.com", "A")
	_, b := newTenant(t, r.st, "b@example.com", "B")
	pdf := []byte("%PDF-1.4\n% prices\n%%EOF\n")
	f, _, err := r.media.PutUpload(ctx, a.ID, "", "", 0, bytes.NewReader(pdf))
	if err != nil {
		t.Fatal(err)
	}
	withFile := tenant.DefaultBotConfig()
	withFile.Rules = []tenant.Rule{{Match: tenant.MatchContains, Pattern: "price", Reply: "Prices", Attachment: &tenant.RuleAttachment{UploadID: f.SHA256}}}
	if _, err := r.st.SaveBotConfig(ctx, b.ID, withFile); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Fatalf("tenant B saved a rule with tenant A's file: %v", err)
	}
	saved, err := r.st.SaveBotConfig(ctx, a.ID, withFile)
	if err != nil || saved.Rules[0].Attachment.Kind != tenant.MediaDocument {
		t.Fatalf("SaveBotConfig = %+v, %v", saved.Rules, err)
	}
	stillThere := func(want bool) {
		t.Helper()
		if _, _, err := r.media.RemoveUnreferenced(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.media.File(ctx, a.ID, f.SHA256); (err == nil) != want {
			t.Fatalf("file kept = %v, want %v", err == nil, want)
		}
	}
	r.clock.Advance(30 * 24 * time.Hour)
	stillThere(true)

	cfg, err := r.st.BotConfigOf(ctx, a.ID)
	if err != nil || cfg.Rules[0].Attachment == nil || cfg.Rules[0].Attachment.UploadID != f.SHA256 {
		t.Fatalf("BotConfigOf = %+v, %v", cfg.Rules, err)
	}
	in := storeIn(t, r.st, a.ID, tenant.Inbound{Chat: "1555@s.whatsapp.net", WAID: "IN1", Body: "price?"})
	written, err := r.st.LogReplies(ctx, a.ID, nil, []tenant.Reply{{InID: in, Chat: "1555@s.whatsapp.net", Body: "Prices", Attachment: cfg.Rules[0].Attachment}},
		func(rp tenant.Reply) tenant.Reply { rp.Status, rp.WAID = tenant.MsgPending, "R1"; return rp })
	if err != nil {
		t.Fatal(err)
	}
	md, err := r.st.MessageMediaOf(ctx, a.ID, written[0].ID)
	if err != nil || md.SHA256 != f.SHA256 || md.Kind != tenant.MediaDocument || md.Caption != "Prices" {
		t.Fatalf("the reply's media = %+v, %v", md, err)
	}
	// Answered, then aged out of the log: only the pin holds the file now.
	if err := r.st.SetReplyStatus(ctx, written[0].ID, tenant.MsgReplied, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.st.SetInboundStatus(ctx, in, tenant.MsgReplied, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.RemoveOldMessages(ctx, r.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if _, err := r.st.SaveBotConfig(ctx, a.ID, tenant.DefaultBotConfig()); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(23 * time.Hour)
	stillThere(true)
	r.clock.Advance(2 * time.Hour)
	stillThere(false)
}

func errorAs(err error, target **tenant.Error) bool { return errors.As(err, target) }
