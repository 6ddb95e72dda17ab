package portal

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// Serving media files: the tenant's users by message id (/app/media/:id),
// webhook receivers by a signed expiring link (/media/:token) and
// programs by API key (/api/v1/messages/:id/media). Every route takes the
// tenant from the session, the token or the key, never from the request,
// and serves the file so that nothing a customer sent can run in the
// portal's origin: the sniffed type with nosniff, inline only for the
// types a browser merely draws or plays (tenant.InlineMIME), and a
// sandboxing CSP in case a browser renders it anyway.

// mediaCSP lets a browser show an image or play audio and video opened
// directly (its own built-in document) and nothing else: no script, no
// same-origin access (sandbox).
const mediaCSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"

// DefaultMediaLinkTTL is how long a signed media link works when the
// configuration sets no MediaLinkTTL; the app's own default is the same.
const DefaultMediaLinkTTL = 24 * time.Hour

var (
	errNoMediaFile  = &tenant.Error{Code: tenant.CodeNotFound, Msg: "this message has no file"}
	errMediaPending = &tenant.Error{Code: tenant.CodeConflict,
		Msg: "The file is still being downloaded from WhatsApp; try again in a moment."}
)

// mediaLink is the signed link to a message's file that works without a
// session until the configured TTL passes; "" when media are not served.
func (p *Portal) mediaLink(tenantID string, messageID int64) string {
	if p.cfg.MediaLinks == nil || p.cfg.BaseURL == nil {
		return ""
	}
	ttl := p.cfg.MediaLinkTTL
	if ttl <= 0 {
		ttl = DefaultMediaLinkTTL
	}
	base := strings.TrimSuffix(p.cfg.BaseURL.String(), "/")
	return base + "/media/" + p.cfg.MediaLinks.Token(tenantID, messageID, time.Now().Add(ttl))
}

// messageFile returns the media of the tenant's message when its file is
// stored; otherwise an error that says why not.
func (p *Portal) messageFile(ctx context.Context, tenantID string, messageID int64) (tenant.MessageMedia, error) {
	if p.cfg.Media == nil || messageID <= 0 {
		return tenant.MessageMedia{}, tenant.ErrNotFound
	}
	md, err := p.store.MessageMediaOf(ctx, tenantID, messageID)
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		return md, errNoMediaFile
	case err != nil:
		return md, err
	case !md.Kind.HasFile():
		return md, errNoMediaFile
	case md.Status == tenant.MediaPending:
		return md, errMediaPending
	case md.Status == tenant.MediaFailed:
		return md, &tenant.Error{Code: tenant.CodeNotFound, Msg: "the file could not be downloaded from WhatsApp: " + md.Error}
	}
	return md, nil
}

// serveFile writes the message's stored file with Range support, so audio
// and video can seek.
func (p *Portal) serveFile(c echo.Context, tenantID string, md tenant.MessageMedia, cacheControl string) error {
	f, fh, err := p.cfg.Media.Open(c.Request().Context(), tenantID, md.SHA256)
	if errors.Is(err, tenant.ErrNotFound) {
		return errNoMediaFile
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, f.MIME)
	h.Set(echo.HeaderContentDisposition, contentDisposition(md, f.MIME))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", mediaCSP)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", `"`+f.SHA256+`"`)
	http.ServeContent(c.Response(), c.Request(), "", f.CreatedAt, fh)
	return nil
}

// contentDisposition is inline for the types the portal may show, else
// attachment, with the file's name (RFC 2231/6266 encoded when it is not
// plain ASCII).
func contentDisposition(md tenant.MessageMedia, mimeType string) string {
	kind := "attachment"
	if tenant.InlineMIME(mimeType) {
		kind = "inline"
	}
	name := mediaFileName(md, mimeType)
	if v := mime.FormatMediaType(kind, map[string]string{"filename": name}); v != "" {
		return v
	}
	return kind // a name FormatMediaType cannot write: the browser picks one
}

// mediaFileName is the sender's name for the file, or one made of its
// kind, message id and type.
func mediaFileName(md tenant.MessageMedia, mimeType string) string {
	if md.FileName != "" {
		return md.FileName
	}
	return string(md.Kind) + "-" + strconv.FormatInt(md.MessageID, 10) + extensionOf(mimeType)
}

// commonExtensions keeps default file names the same on every system,
// whatever its MIME tables say.
var commonExtensions = map[string]string{
	"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
	"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr",
	"video/mp4": ".mp4", "video/3gpp": ".3gp", "application/pdf": ".pdf",
	"image/svg+xml": ".svg", "text/html": ".html", "text/plain": ".txt",
}

func extensionOf(mimeType string) string {
	base, _, _ := strings.Cut(mimeType, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	if ext, ok := commonExtensions[base]; ok {
		return ext
	}
	if exts, _ := mime.ExtensionsByType(base); len(exts) > 0 {
		return exts[0]
	}
	return ".bin"
}

// mediaShow serves a file of the signed-in user's tenant by message id.
func (p *Portal) mediaShow(c echo.Context) error {
	t := currentTenant(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	md, err := p.messageFile(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cross-Origin-Resource-Policy", "same-origin")
	return p.serveFile(c, t.ID, md, "private, max-age=3600")
}

// mediaLinkShow serves a file by a signed link, without a session: what
// webhook and event receivers get. An expired link is 403 with a
// sentence; a malformed or foreign one is 404.
func (p *Portal) mediaLinkShow(c echo.Context) error {
	if p.cfg.MediaLinks == nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	tenantID, id, err := p.cfg.MediaLinks.Check(c.Param("token"), time.Now())
	if err != nil {
		return err
	}
	md, err := p.messageFile(c.Request().Context(), tenantID, id)
	if err != nil {
		return err
	}
	return p.serveFile(c, tenantID, md, "private, max-age=300")
}

// apiV1MessageMediaShow serves a message's file to an API key holding
// messages:read.
func (p *Portal) apiV1MessageMediaShow(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return newAPIError(http.StatusNotFound, "not_found", "there is no message with this id")
	}
	tenantID := apiTenantID(c)
	md, err := p.messageFile(c.Request().Context(), tenantID, id)
	switch {
	case errors.Is(err, errMediaPending):
		return newAPIError(http.StatusConflict, "media_pending", errMediaPending.Msg)
	case errors.Is(err, errNoMediaFile):
		return newAPIError(http.StatusNotFound, "not_found", "this workspace has no message with this id that carries a file")
	case err != nil:
		return err
	}
	return p.serveFile(c, tenantID, md, "private, no-cache")
}

// mediaInfoFor is the API's media of each message on a page that has
// any, read in one query, with a signed download link for each file.
func (p *Portal) mediaInfoFor(ctx context.Context, tenantID string, ids []int64) (map[int64]*tenant.MediaInfo, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	mds, err := p.store.MessageMediaFor(ctx, tenantID, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*tenant.MediaInfo, len(mds))
	for id, md := range mds {
		link := ""
		if p.cfg.Media != nil && md.Kind.HasFile() && md.Status == tenant.MediaStored {
			link = p.mediaLink(tenantID, id)
		}
		out[id] = md.Info(link)
	}
	return out, nil
}

// withMedia sets the media of those of ms that carry any (one query).
func (p *Portal) withMedia(ctx context.Context, tenantID string, ms []messageV1) error {
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	infos, err := p.mediaInfoFor(ctx, tenantID, ids)
	if err != nil {
		return err
	}
	for i := range ms {
		ms[i].Media = infos[ms[i].ID]
	}
	return nil
}

// mediaOfMessages reads the media of a page of the log in one query.
func (p *Portal) mediaOfMessages(ctx context.Context, tenantID string, ms []tenant.Message) (map[int64]tenant.MessageMedia, error) {
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return p.store.MessageMediaFor(ctx, tenantID, ids)
}

// mediaUsageView is the disk the tenant's files take against its quota;
// nil when the portal serves no media.
func (p *Portal) mediaUsageView(ctx context.Context, tenantID string) (*views.MediaUsageView, error) {
	if p.cfg.Media == nil {
		return nil, nil
	}
	u, err := p.store.MediaUsage(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	l := views.LocaleOf(ctx)
	v := &views.MediaUsageView{Bytes: humanSize(l, u.Bytes), Files: u.Files}
	if quota := p.cfg.Media.Limits().TenantQuota; quota > 0 {
		v.Quota = humanSize(l, quota)
		v.Percent = int(min(100, u.Bytes*100/quota))
	}
	return v, nil
}
