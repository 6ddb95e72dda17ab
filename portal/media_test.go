package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"

	"wabot/app"
	"wabot/portal"
	"wabot/tenant"
)

// testPNG is a real w×h PNG, so a browser can decode it.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{R: uint8(x * 5), G: 120, B: uint8(y * 7), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var mediaWAID atomic.Int64

// logMedia logs an inbound message of a contact carrying md, the way the
// bot stores one, then stores file (nil: the download is still pending)
// as the message's file. It returns the message's id.
func logMedia(t *testing.T, a *app.App, tenantID, body string, md tenant.MessageMedia, file []byte) int64 {
	t.Helper()
	ctx := context.Background()
	id, dup, err := a.Store().StoreInbound(ctx, tenantID, tenant.Inbound{
		Chat: "15550002222@s.whatsapp.net", Sender: "15550002222@s.whatsapp.net", SenderName: "Ann",
		WAID: "MEDIA" + strconv.FormatInt(mediaWAID.Add(1), 10), Kind: string(md.Kind), Body: body,
		Status: tenant.MsgReceived, CreatedAt: time.Now(), Media: &md,
	})
	if err != nil || dup {
		t.Fatalf("StoreInbound: %v (dup %v)", err, dup)
	}
	if file != nil {
		if _, err := a.Media().SaveMessageFile(ctx, tenantID, id, tenant.MediaInput{Kind: md.Kind, MIME: md.MIME, Size: int64(len(file)), Body: bytes.NewReader(file)}); err != nil {
			t.Fatalf("SaveMessageFile: %v", err)
		}
	}
	return id
}

// rawGet fetches url with extra headers and no cookies, returning the
// whole answer.
func (e *env) rawGet(url string, hdr map[string]string) resp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := (&http.Client{Transport: e.google.transport(), Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, body: string(raw), header: r.Header, url: r.Request.URL.String()}
}

func mediaURL(id int64) string { return "/app/media/" + strconv.FormatInt(id, 10) }

// TestMediaServedSafelyToItsTenantOnly: a workspace's user gets its files
// with their sniffed type, nosniff, a sandboxing CSP, inline only for a
// raster image and as a download for SVG and HTML (even declared as
// images), and byte ranges; another workspace's user, key or an altered
// signed link gets 404; an expired link 403 with a sentence; a download
// still under way says so.
func TestMediaServedSafelyToItsTenantOnly(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	ownerA, tA := e.tenantUser("a@example.com", "Shop A")
	ownerB, tB := e.tenantUser("b@example.com", "Shop B")
	pngBytes := testPNG(t, 40, 30)
	img := logMedia(t, e.app, tA, "", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/jpeg", Caption: "the box"}, pngBytes)
	svg := logMedia(t, e.app, tA, "", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/svg+xml"},
		[]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>`))
	html := logMedia(t, e.app, tA, "", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/png"},
		[]byte(`<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>`))
	doc := logMedia(t, e.app, tA, "", tenant.MessageMedia{Kind: tenant.MediaDocument, MIME: "application/pdf", FileName: "Factura ñ 7.pdf"},
		[]byte("%PDF-1.4\n% a tiny document\n"))
	pending := logMedia(t, e.app, tA, "", tenant.MessageMedia{Kind: tenant.MediaVideo, MIME: "video/mp4", Size: 5000}, nil)
	where := logMedia(t, e.app, tA, "", tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 52.52, Longitude: 13.405, PlaceName: "Depot"}, nil)
	imgB := logMedia(t, e.app, tB, "", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/png"}, testPNG(t, 8, 8))

	// The owner gets the image: its real type, inline, locked down.
	r := ownerA.get(mediaURL(img))
	if r.status != http.StatusOK || r.body != string(pngBytes) {
		t.Fatalf("own image: %d, %d bytes", r.status, len(r.body))
	}
	h := r.header
	if h.Get("Content-Type") != "image/png" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Disposition"), "inline") {
		t.Fatalf("image headers: type %q, nosniff %q, disposition %q", h.Get("Content-Type"), h.Get("X-Content-Type-Options"), h.Get("Content-Disposition"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") {
		t.Fatalf("image CSP %q", csp)
	}
	if cc := h.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Fatalf("Cache-Control %q", cc)
	}

	// SVG and HTML are downloads, whatever the sender declared.
	for name, id := range map[string]int64{"svg": svg, "html": html} {
		r := ownerA.get(mediaURL(id))
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") ||
			strings.HasPrefix(r.header.Get("Content-Type"), "image/png") || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, type %q, disposition %q", name, r.status, r.header.Get("Content-Type"), r.header.Get("Content-Disposition"))
		}
	}
	// A document keeps its name, encoded for any browser.
	r = ownerA.get(mediaURL(doc))
	if d := r.header.Get("Content-Disposition"); r.status != http.StatusOK || d != `attachment; filename*=utf-8''Factura%20%C3%B1%207.pdf` {
		t.Fatalf("document: %d, disposition %q", r.status, d)
	}

	// A range, as a player seeking asks.
	r = ownerA.do(http.MethodGet, mediaURL(img), nil, map[string]string{"Range": "bytes=0-9"})
	if r.status != http.StatusPartialContent || r.body != string(pngBytes[:10]) ||
		r.header.Get("Content-Range") != fmt.Sprintf("bytes 0-9/%d", len(pngBytes)) {
		t.Fatalf("range: %d %q, %d bytes", r.status, r.header.Get("Content-Range"), len(r.body))
	}

	// Pending, no file, no such message.
	if r := ownerA.get(mediaURL(pending)); r.status != http.StatusConflict || !strings.Contains(r.body, "still being downloaded") {
		t.Fatalf("pending download: %d %s", r.status, r.body)
	}
	for _, path := range []string{mediaURL(where), "/app/media/999999", "/app/media/abc", "/app/media/-1"} {
		if r := ownerA.get(path); r.status != http.StatusNotFound {
			t.Errorf("%s: %d", path, r.status)
		}
	}

	// Tenant B's user cannot fetch A's file by its id; B's own works.
	if r := ownerB.get(mediaURL(img)); r.status != http.StatusNotFound || strings.Contains(r.body, "PNG") {
		t.Fatalf("B fetched A's image by id: %d", r.status)
	}
	if r := ownerB.get(mediaURL(imgB)); r.status != http.StatusOK {
		t.Fatalf("B's own image: %d", r.status)
	}
	// Signed out: sent to sign in.
	if r := e.rawGet(e.url+mediaURL(img), nil); strings.Contains(r.body, "PNG") || !strings.Contains(r.url, "/?next=") {
		t.Fatal("a signed-out request got the file")
	}

	// The API: A's key reads A's file; B's key gets not_found.
	keyA := ownerA.createKey("/app/settings/keys", "reader", "messages:read")
	keyB := ownerB.createKey("/app/settings/keys", "reader", "messages:read")
	apiPath := func(id int64) string { return "/api/v1/messages/" + strconv.FormatInt(id, 10) + "/media" }
	r = e.rawGet(e.url+apiPath(img), map[string]string{"Authorization": "Bearer " + keyA})
	if r.status != http.StatusOK || r.body != string(pngBytes) || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("API file: %d, %d bytes", r.status, len(r.body))
	}
	wantErr(t, "B's key", e.api(keyB).call(http.MethodGet, apiPath(img), nil), http.StatusNotFound, "not_found")
	wantErr(t, "pending by API", e.api(keyA).call(http.MethodGet, apiPath(pending), nil), http.StatusConflict, "media_pending")
	wantErr(t, "location by API", e.api(keyA).call(http.MethodGet, apiPath(where), nil), http.StatusNotFound, "not_found")
	sendOnly := ownerA.createKey("/app/settings/keys", "sender", "messages:send")
	wantErr(t, "no read scope", e.api(sendOnly).call(http.MethodGet, apiPath(img), nil), http.StatusForbidden, "forbidden")

	// The message JSON carries the media, with a signed link that works
	// without a key or a session.
	list := e.api(keyA).call(http.MethodGet, "/api/v1/messages?limit=50", nil)
	var page struct {
		Messages []struct {
			ID    int64             `json:"id"`
			Media *tenant.MediaInfo `json:"media"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(list.body), &page); err != nil || list.status != http.StatusOK {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	infos := map[int64]*tenant.MediaInfo{}
	for _, m := range page.Messages {
		infos[m.ID] = m.Media
	}
	if in := infos[img]; in == nil || in.Kind != tenant.MediaImage || in.Status != tenant.MediaStored || in.MIME != "image/png" ||
		in.Caption != "the box" || !strings.HasPrefix(in.DownloadURL, e.url+"/media/") {
		t.Fatalf("image media in the list: %+v", in)
	}
	if in := infos[where]; in == nil || in.Location == nil || !strings.Contains(in.Location.MapURL, "openstreetmap.org") || in.DownloadURL != "" {
		t.Fatalf("location media in the list: %+v", in)
	}
	if in := infos[pending]; in == nil || in.Status != tenant.MediaPending || in.DownloadURL != "" {
		t.Fatalf("pending media in the list: %+v", in)
	}
	one := e.api(keyA).call(http.MethodGet, "/api/v1/messages/"+strconv.FormatInt(img, 10), nil)
	if !strings.Contains(one.body, `"media":{"kind":"image"`) {
		t.Fatalf("one message: %s", one.body)
	}
	link := infos[img].DownloadURL
	r = e.rawGet(link, nil)
	if r.status != http.StatusOK || r.body != string(pngBytes) || !strings.HasPrefix(r.header.Get("Content-Disposition"), "inline") ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("signed link: %d, %d bytes, %v", r.status, len(r.body), r.header)
	}

	// Altered links: another tenant, another message, a bad signature.
	token := strings.TrimPrefix(link, e.url+"/media/")
	parts := strings.Split(token, ".")
	if len(parts) != 4 {
		t.Fatalf("token %q", token)
	}
	altered := map[string]string{
		"tenant B":  strings.Join([]string{tB, parts[1], parts[2], parts[3]}, "."),
		"B's image": strings.Join([]string{parts[0], strconv.FormatInt(imgB, 10), parts[2], parts[3]}, "."),
		"later":     strings.Join([]string{parts[0], parts[1], strconv.FormatInt(time.Now().Add(1000*time.Hour).Unix(), 10), parts[3]}, "."),
		"signature": strings.Join([]string{parts[0], parts[1], parts[2], strings.Repeat("A", len(parts[3]))}, "."),
		"garbage":   "not-a-token",
	}
	for name, tok := range altered {
		if r := e.rawGet(e.url+"/media/"+tok, nil); r.status != http.StatusNotFound {
			t.Errorf("altered link (%s): %d", name, r.status)
		}
	}
	// Even a well-signed link names its tenant: A's link to B's message
	// id finds nothing.
	links, err := tenant.OpenMediaLinks(e.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.rawGet(e.url+"/media/"+links.Token(tA, imgB, time.Now().Add(time.Hour)), nil); r.status != http.StatusNotFound {
		t.Fatalf("A's signed link to B's message: %d", r.status)
	}
	// Expired: 403 with the reason.
	r = e.rawGet(e.url+"/media/"+links.Token(tA, img, time.Now().Add(-time.Minute)), nil)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "expired") || strings.Contains(r.body, "PNG") {
		t.Fatalf("expired link: %d, %d bytes", r.status, len(r.body))
	}
}

// TestLogShowsMedia: the log shows an image as a lazy thumbnail linking
// to its file, plays audio, offers a document with its name and size,
// links a location to the map, names a contact, says what is pending or
// failed and why, and never puts SVG into an <img>; the message's own
// page shows the contact card; the dashboard and the admin page show the
// disk the workspace's files take.
func TestLogShowsMedia(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, tID := e.tenantUser("log@example.com", "Log Shop")
	img := logMedia(t, e.app, tID, "the box", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/png", Caption: "the box", Width: 40, Height: 30}, testPNG(t, 40, 30))
	voice := logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaVoice, MIME: "audio/ogg; codecs=opus", DurationSeconds: 3},
		append([]byte("OggS\x00\x02"), append(make([]byte, 22), []byte("OpusHead")...)...))
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 12800)...)
	doc := logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaDocument, MIME: "application/pdf", FileName: "invoice <1>.pdf"}, pdf)
	logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 52.52, Longitude: 13.405, PlaceName: "Depot", Address: "Main St 1"}, nil)
	card := logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaContact, ContactName: "Bob <b>Builder</b>",
		VCard: "BEGIN:VCARD\nVERSION:3.0\nFN:Bob Builder\nTEL:+15550003333\nEND:VCARD"}, nil)
	svg := logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/svg+xml", FileName: "logo.svg"},
		[]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaVideo, MIME: "video/mp4"}, nil) // pending
	failed := logMedia(t, e.app, tID, "", tenant.MessageMedia{Kind: tenant.MediaAudio, MIME: "audio/mpeg"}, nil)
	if _, err := e.app.Store().MediaDownloadFailed(context.Background(), tID, failed, "the media server answered 404", true); err != nil {
		t.Fatal(err)
	}

	doc0 := page(t, owner.get("/app/logs"))
	thumb := doc0.Find(`img[data-testid="media-image"]`)
	if thumb.Length() != 1 {
		t.Fatalf("%d thumbnails; want 1 (the PNG, not the SVG)", thumb.Length())
	}
	if src, _ := thumb.Attr("src"); src != mediaURL(img) {
		t.Fatalf("thumbnail src %q", src)
	}
	if lazy, _ := thumb.Attr("loading"); lazy != "lazy" {
		t.Fatalf("thumbnail loading %q", lazy)
	}
	if href, _ := thumb.Parent().Attr("href"); href != mediaURL(img) {
		t.Fatalf("thumbnail opens %q", href)
	}
	audio := doc0.Find(`audio[data-testid="media-audio"]`)
	if src, _ := audio.Attr("src"); audio.Length() != 1 || src != mediaURL(voice) || audio.AttrOr("controls", "missing") == "missing" {
		t.Fatalf("audio player: %d, src %q", audio.Length(), src)
	}
	links := doc0.Find(`a[data-testid="media-document"]`)
	var docText, svgHref string
	links.Each(func(_ int, s *goquery.Selection) {
		switch s.AttrOr("href", "") {
		case mediaURL(doc):
			docText = strings.TrimSpace(s.Parent().Text())
		case mediaURL(svg):
			svgHref = mediaURL(svg)
		}
	})
	if !strings.Contains(docText, "invoice <1>.pdf") || !strings.Contains(docText, "12.5 KB") {
		t.Fatalf("document link %q", docText)
	}
	if svgHref == "" {
		t.Fatal("the SVG is not offered as a download")
	}
	mapLink := doc0.Find(`a[data-testid="media-map"]`)
	if href := mapLink.AttrOr("href", ""); !strings.HasPrefix(href, "https://www.openstreetmap.org/?mlat=52.520000&mlon=13.405000") ||
		!strings.Contains(mapLink.Text(), "Depot") || !strings.Contains(doc0.Find(`[data-testid="media-location"]`).Text(), "Main St 1") {
		t.Fatalf("map link %q %q", href, mapLink.Text())
	}
	if c := testText(doc0, "media-contact"); !strings.Contains(c, "Bob <b>Builder</b>") {
		t.Fatalf("contact %q", c)
	}
	if doc0.Find(`[data-testid="media-contact"] b`).Length() != 0 {
		t.Fatal("the contact's name was not escaped")
	}
	if p := testText(doc0, "media-pending"); !strings.Contains(p, "Video") || !strings.Contains(p, "downloading") {
		t.Fatalf("pending %q", p)
	}
	if f := testText(doc0, "media-failed"); !strings.Contains(f, "the media server answered 404") {
		t.Fatalf("failed %q", f)
	}
	if n := doc0.Find(`[data-testid="media-caption"]`).Length(); n != 0 {
		t.Fatalf("a caption equal to the message's text is shown again (%d)", n)
	}

	// The contact card's own page shows the vCard as text.
	mp := page(t, owner.get("/app/logs/"+strconv.FormatInt(card, 10)))
	if v := testText(mp, "media-vcard"); !strings.Contains(v, "TEL:+15550003333") {
		t.Fatalf("vCard on the message page: %q", v)
	}

	// Disk use: the dashboard against the quota, the admin page per tenant.
	used, err := e.app.Store().MediaUsage(context.Background(), tID)
	if err != nil || used.Files != 4 {
		t.Fatalf("usage %+v %v", used, err)
	}
	dash := page(t, owner.get("/app"))
	if f, q := testText(dash, "media-files"), testText(dash, "media-quota"); f != "4" || q != "1 GB" || testText(dash, "media-bytes") == "" {
		t.Fatalf("dashboard media: %q files of %q", f, q)
	}
	admin := e.browser()
	admin.loginLink("root@example.com", true)
	ap := page(t, admin.get("/admin"))
	cell := strings.Join(strings.Fields(ap.Find(`tr[data-tenant="`+tID+`"] [data-testid="admin-media"]`).Text()), " ")
	if !strings.Contains(cell, "4 files") || !strings.Contains(cell, "KB") {
		t.Fatalf("admin media cell %q", cell)
	}
}

// TestMediaRefusalStatuses: a file over its cap is 413 too_large and a
// full quota 507 quota_exceeded, with the store's sentence, on the API
// and on pages.
func TestMediaRefusalStatuses(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = portal.ErrorHandler(slog.New(slog.DiscardHandler))
	refusals := map[string]error{
		"large": &tenant.Error{Code: tenant.CodeTooLarge, Msg: "The file is larger than the 16 MB an image may be; it was not stored."},
		"quota": &tenant.Error{Code: tenant.CodeQuotaExceeded, Msg: "This workspace's media would take more than its 1 GB; the file was not stored."},
	}
	for _, prefix := range []string{"/api/v1/", "/app/"} {
		e.GET(prefix+":what", func(c echo.Context) error { return refusals[c.Param("what")] })
	}
	for _, c := range []struct {
		path, code, text string
		status           int
	}{
		{"/api/v1/large", "too_large", "larger than the 16 MB", http.StatusRequestEntityTooLarge},
		{"/api/v1/quota", "quota_exceeded", "more than its 1 GB", http.StatusInsufficientStorage},
		{"/app/large", "", "larger than the 16 MB", http.StatusRequestEntityTooLarge},
		{"/app/quota", "", "more than its 1 GB", http.StatusInsufficientStorage},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.text) {
			t.Errorf("%s: %d %s", c.path, rec.Code, rec.Body.String())
		}
		if c.code != "" && !strings.Contains(rec.Body.String(), `"code":"`+c.code+`"`) {
			t.Errorf("%s: code not %s: %s", c.path, c.code, rec.Body.String())
		}
	}
}
