package portal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"wabot/session/fakewa"
)

// upload POSTs data as the file part of a multipart body to /api/v1/media,
// with a kind part before it when kind is not empty.
func (a *apiClient) upload(name, contentType string, data []byte, kind string) resp {
	a.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if kind != "" {
		mw.WriteField("kind", kind)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	h.Set("Content-Type", contentType)
	pw, _ := mw.CreatePart(h)
	pw.Write(data)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, a.e.url+"/api/v1/media", &body)
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer r.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(r.Body)
	out := resp{status: r.StatusCode, body: raw.String(), header: r.Header}
	checkResponse(a.t, http.MethodPost, "/api/v1/media", out.status, out.body)
	return out
}

// mediaWorkspace is linkedAPI that also returns the workspace's id.
func mediaWorkspace(t *testing.T, e *env, email, name string) (*apiClient, *fakewa.Phone, string) {
	api, phone, id, _ := mediaOwner(t, e, email, name)
	return api, phone, id
}

// mediaOwner is mediaWorkspace that also returns the owner's browser.
func mediaOwner(t *testing.T, e *env, email, name string) (*apiClient, *fakewa.Phone, string, *browser) {
	t.Helper()
	owner, id := e.tenantUser(email, name)
	api := e.api(owner.createKey("/app/settings/keys", "all", "messages:send", "messages:read", "session:manage", "bot:manage"))
	if r := api.call(http.MethodPost, "/api/v1/session/link", nil); r.status != http.StatusOK {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	qr := waitAPI(t, api, "/api/v1/session", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), qr["qr_code"].(string)); err != nil {
		t.Fatal(err)
	}
	waitAPI(t, api, "/api/v1/session", func(m map[string]any) bool { return m["state"] == "CONNECTED" })
	return api, phone, id, owner
}

// testPDF is a small document that sniffs as a PDF.
func testPDF() []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% Invoice 1001: 3 items, 42.00 EUR\ntrailer << /Root 1 0 R >>\n%%EOF\n")
}

// testOpus is the start of an OGG stream whose first page holds an Opus
// header, as a voice note recorded in WhatsApp begins.
func testOpus() []byte {
	b := []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13")
	b = append(b, "OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"...)
	return append(b, bytes.Repeat([]byte{0x4f, 0x67, 0x67, 0x53, 0x11}, 300)...)
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// receivedMedia waits for the contact's next message and returns it,
// failing unless it carries a downloaded file.
func receivedMedia(t *testing.T, c *fakewa.Contact) fakewa.Received {
	t.Helper()
	got, err := c.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Media == nil || got.MediaErr != nil {
		t.Fatalf("received %+v without its file (%v)", got, got.MediaErr)
	}
	return got
}

// TestAPIV1MediaUploadAndSend: a PNG uploaded with a key answers 201 with
// its SHA-256 as upload_id, and sent by that id reaches the contact as an
// image whose decrypted bytes are the file, with the caption (text) and
// its size; an OGG Opus file goes as a voice note; the message ends sent.
func TestAPIV1MediaUploadAndSend(t *testing.T) {
	e := sendEnv(t, nil)
	api, phone, _ := mediaWorkspace(t, e, "photo@example.com", "Photo Shop")
	carl := phone.NewContact("", "Carl")
	to := "+" + carl.JID().User

	pic := testPNG(t, 40, 30)
	r := api.upload("shelf.png", "application/octet-stream", pic, "")
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	up := r.json(t)
	if up["upload_id"] != sha(pic) || up["mime"] != "image/png" || up["kind"] != "image" || up["size"] != float64(len(pic)) || up["file_name"] != "shelf.png" {
		t.Fatalf("upload answered %v", up)
	}
	r = api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": to, "text": "The shelf you asked about", "media": map[string]any{"upload_id": up["upload_id"]}})
	if r.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	sent := r.json(t)
	if md, _ := sent["media"].(map[string]any); md["kind"] != "image" || md["sha256"] != sha(pic) || md["status"] != "stored" {
		t.Fatalf("the send's answer has media %v, want the image", sent["media"])
	}
	got := receivedMedia(t, carl)
	if got.Media.Kind != fakewa.MediaImage || !bytes.Equal(got.Media.Data, pic) || got.Media.Caption != "The shelf you asked about" ||
		got.Media.Mime != "image/png" || got.Media.Width != 40 || got.Media.Height != 30 {
		t.Fatalf("carl got %+v", *got.Media)
	}
	if got.ID != sent["wa_id"] {
		t.Fatalf("sent with id %s, queued with %v", got.ID, sent["wa_id"])
	}
	waitAPI(t, api, msgPath(sent), func(m map[string]any) bool { return m["status"] == "sent" || m["status"] == "delivered" })

	voice := testOpus()
	r = api.upload("note.ogg", "audio/ogg", voice, "")
	if r.status != http.StatusCreated || r.json(t)["kind"] != "voice" {
		t.Fatalf("voice upload: %d %s", r.status, r.body)
	}
	r = api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": to, "media": map[string]any{"upload_id": sha(voice)}})
	if r.status != http.StatusAccepted {
		t.Fatalf("send voice: %d %s", r.status, r.body)
	}
	got = receivedMedia(t, carl)
	if got.Media.Kind != fakewa.MediaAudio || !got.Media.VoiceNote || !bytes.Equal(got.Media.Data, voice) || !strings.HasPrefix(got.Media.Mime, "audio/ogg") {
		t.Fatalf("carl got %+v", *got.Media)
	}

	// A caption on a voice note is refused before anything is queued.
	r = api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": to, "text": "hi", "media": map[string]any{"upload_id": sha(voice)}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"media.caption"`) {
		t.Fatalf("caption on a voice note: %d %s", r.status, r.body)
	}
}

// TestAPIV1MediaSendByURL: a PDF fetched from a URL (a server on
// loopback, allowed here as webhooks are) arrives byte for byte as a
// document named after the URL's path, with its caption.
func TestAPIV1MediaSendByURL(t *testing.T) {
	e := sendEnv(t, map[string]string{"WABOT_WEBHOOK_ALLOW_PRIVATE": "true"})
	api, phone, _ := mediaWorkspace(t, e, "invoice@example.com", "Invoice Shop")
	dana := phone.NewContact("", "Dana")
	pdf := testPDF()
	var fetches atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old/invoice" {
			http.Redirect(w, r, "/files/invoice-1001.pdf", http.StatusFound)
			return
		}
		if r.URL.Path != "/files/invoice-1001.pdf" {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/pdf")
		w.Write(pdf)
	}))
	defer files.Close()

	keyed := api.withHeader("Idempotency-Key", "invoice-1001")
	send := map[string]any{"to": "+" + dana.JID().User, "media": map[string]any{"url": files.URL + "/old/invoice", "caption": "Your invoice"}}
	r := keyed.call(http.MethodPost, "/api/v1/messages", send)
	if r.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	first := r.json(t)
	got := receivedMedia(t, dana)
	if got.Media.Kind != fakewa.MediaDocument || !bytes.Equal(got.Media.Data, pdf) || got.Media.FileName != "invoice-1001.pdf" ||
		got.Media.Caption != "Your invoice" || got.Media.Mime != "application/pdf" {
		t.Fatalf("dana got %+v", *got.Media)
	}
	// The same key again: the first message, and the URL is not fetched again.
	if r := keyed.call(http.MethodPost, "/api/v1/messages", send); r.status != http.StatusOK || r.json(t)["id"] != first["id"] || fetches.Load() != 1 {
		t.Fatalf("replay: %d %s, %d fetches", r.status, r.body, fetches.Load())
	}

	r = api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+" + dana.JID().User, "media": map[string]any{"url": files.URL + "/missing.pdf"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"media.url"`) || !strings.Contains(r.body, "404") {
		t.Fatalf("a URL that answers 404: %d %s", r.status, r.body)
	}
}

// TestAPIV1MediaRefusals: a URL on a private address is refused (422 on
// media.url) when private addresses are not allowed, and nothing is
// fetched; an upload over its kind's cap is 413 too_large and leaves no
// file and no row; another workspace's upload_id is unknown.
func TestAPIV1MediaRefusals(t *testing.T) {
	e := sendEnv(t, map[string]string{"WABOT_MEDIA_MAX_IMAGE": "1M"})
	api, _, id := mediaWorkspace(t, e, "alpha@example.com", "Alpha Shop")
	fetched := 0
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched++
		w.Write(testPDF())
	}))
	defer files.Close()

	r := api.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+15551234567", "media": map[string]any{"url": files.URL + "/invoice.pdf"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"media.url"`) || !strings.Contains(r.body, "public internet address") {
		t.Fatalf("private URL: %d %s", r.status, r.body)
	}
	if fetched != 0 {
		t.Fatalf("the private URL was fetched %d times", fetched)
	}

	big := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("x"), 1<<20+100)...)
	r = api.upload("big.png", "image/png", big, "")
	if r.status != http.StatusRequestEntityTooLarge || r.json(t)["error"].(map[string]any)["code"] != "too_large" || !strings.Contains(r.body, "1 MB") {
		t.Fatalf("over the cap: %d %s", r.status, r.body)
	}
	usage, err := e.app.Store().MediaUsage(context.Background(), id)
	if err != nil || usage.Files != 0 {
		t.Fatalf("after a refused upload the workspace has %+v (%v)", usage, err)
	}
	filepath.WalkDir(filepath.Join(e.cfg.DataDir, "media", id), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a refused upload left %s", path)
		}
		return nil
	})

	pdf := testPDF()
	if r := api.upload("invoice.pdf", "application/pdf", pdf, ""); r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	owner, _ := e.tenantUser("bravo@example.com", "Bravo Shop")
	other := e.api(owner.createKey("/app/settings/keys", "send", "messages:send"))
	r = other.call(http.MethodPost, "/api/v1/messages", map[string]any{"to": "+15551234567", "media": map[string]any{"upload_id": sha(pdf)}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"media.upload_id"`) {
		t.Fatalf("another workspace's upload: %d %s", r.status, r.body)
	}
}

// TestBotRuleAttachment: a rule set by PUT /api/v1/bot with an uploaded
// PDF answers a matching message with the file, the reply as its
// caption; an upload id the workspace does not have is refused.
func TestBotRuleAttachment(t *testing.T) {
	e := sendEnv(t, nil)
	api, phone, _ := mediaWorkspace(t, e, "menu@example.com", "Menu Shop")
	pdf := testPDF()
	if r := api.upload("prices.pdf", "application/pdf", pdf, ""); r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	r := api.call(http.MethodPut, "/api/v1/bot", map[string]any{"enabled": true, "rules": []map[string]any{
		{"match": "contains", "pattern": "price", "reply": "Our prices, {{name}}", "attachment": map[string]any{"upload_id": sha(pdf), "file_name": "prices.pdf"}}}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"kind":"document"`) {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	if r := api.call(http.MethodPut, "/api/v1/bot", map[string]any{"enabled": true, "rules": []map[string]any{
		{"match": "contains", "pattern": "x", "reply": "y", "attachment": map[string]any{"upload_id": strings.Repeat("ab", 32)}}}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, `"rules[0].attachment.upload_id"`) {
		t.Fatalf("an unknown upload: %d %s", r.status, r.body)
	}

	erin := phone.NewContact("", "Erin")
	if _, err := erin.Send("What is the price list?"); err != nil {
		t.Fatal(err)
	}
	got := receivedMedia(t, erin)
	if got.Media.Kind != fakewa.MediaDocument || !bytes.Equal(got.Media.Data, pdf) || got.Media.FileName != "prices.pdf" || got.Media.Caption != "Our prices, Erin" {
		t.Fatalf("erin got %+v", *got.Media)
	}
}

// postBotForm posts the bot page's form as the browser does, multipart,
// with one rule and, when data is not nil, a file chosen for it.
func (b *browser) postBotForm(fields map[string]string, fileName string, data []byte) resp {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	base := map[string]string{"enabled": "1", "rule_count": "1", "rules[0].kind": "", "rules[0].match": "contains",
		"queue_per_chat": "20", "per_chat_per_minute": "0", "per_tenant_per_minute": "0", "op": "save"}
	for k, v := range fields {
		base[k] = v
	}
	for k, v := range base {
		mw.WriteField(k, v)
	}
	if data != nil {
		fw, _ := mw.CreateFormFile("rules[0].attachment_file", fileName)
		fw.Write(data)
	}
	mw.Close()
	return b.do(http.MethodPost, "/app/bot", &body, map[string]string{"Content-Type": mw.FormDataContentType()})
}

// TestBotPageAttachment: on the Bot page a file chosen for a rule is
// stored (past the server's 1 MB body limit for other forms), shown
// beside the rule, and sent when the rule answers, the reply as its
// caption; a file over its cap is refused beside the rule and nothing is
// saved; the Remove box takes the attachment off.
func TestBotPageAttachment(t *testing.T) {
	e := sendEnv(t, map[string]string{"WABOT_MEDIA_MAX_IMAGE": "2M"})
	api, phone, _, owner := mediaOwner(t, e, "page@example.com", "Page Shop")
	menu := testPNG(t, 64, 48)
	// Over 1 MB (the limit of every other form), under the image cap.
	menu = append(menu, bytes.Repeat([]byte{0}, 1<<20+10)...)

	r := owner.postBotForm(map[string]string{"rules[0].pattern": "menu", "rules[0].reply": "Today's menu"}, "menu.png", menu)
	if r.status != http.StatusOK || !strings.Contains(r.body, "menu.png (image)") {
		t.Fatalf("save with a file: %d %s", r.status, r.body)
	}
	frank := phone.NewContact("", "Frank")
	if _, err := frank.Send("Can I see the menu?"); err != nil {
		t.Fatal(err)
	}
	got := receivedMedia(t, frank)
	if got.Media.Kind != fakewa.MediaImage || !bytes.Equal(got.Media.Data, menu) || got.Media.Caption != "Today's menu" {
		t.Fatalf("frank got %s %q, %d bytes", got.Media.Kind, got.Media.Caption, len(got.Media.Data))
	}

	big := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("x"), 2<<20+10)...)
	r = owner.postBotForm(map[string]string{"rules[0].pattern": "big", "rules[0].reply": "Big"}, "big.png", big)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "larger than the 2 MB") {
		t.Fatalf("an image over the cap: %d %s", r.status, r.body)
	}
	if cfg := api.call(http.MethodGet, "/api/v1/bot", nil); !strings.Contains(cfg.body, `"pattern":"menu"`) {
		t.Fatalf("a refused file changed the configuration: %s", cfg.body)
	}

	r = owner.postBotForm(map[string]string{"rules[0].pattern": "menu", "rules[0].reply": "Ask us", "rules[0].attachment_id": sha(menu),
		"rules[0].attachment_kind": "image", "rules[0].attachment_name": "menu.png", "rules[0].attachment_remove": "1"}, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if cfg := api.call(http.MethodGet, "/api/v1/bot", nil); strings.Contains(cfg.body, "attachment") || !strings.Contains(cfg.body, "Ask us") {
		t.Fatalf("the attachment was not removed: %s", cfg.body)
	}
}
