package portal

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// Uploads for sending: POST /api/v1/media takes one file as
// multipart/form-data, streamed into the workspace's media store (kept a
// day unless a message or a bot rule uses it), and answers with its id,
// the file's SHA-256, which POST /messages and the bot's rules name. Ids
// are scoped to the workspace: another workspace's is unknown here.

// uploadReadTime is how long an upload's body may take to arrive; the
// server's 30-second read timeout is for ordinary requests.
const uploadReadTime = 15 * time.Minute

// multipartSlack is what a multipart body may hold beyond its file:
// boundaries, part headers and the small fields beside it.
const multipartSlack = 1 << 20

// OwnsBodyLimit reports the routes that take files and bound their bodies
// themselves (by the media caps) instead of by the server's 1 MB limit.
func OwnsBodyLimit(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case apiV1Prefix + "/media", "/app/bot":
		return true
	}
	return false
}

// allowUpload bounds the request's body to limit bytes and gives it
// uploadReadTime to arrive.
func allowUpload(c echo.Context, limit int64) {
	req := c.Request()
	req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
	// Not every writer can (a test's recorder); the body limit holds anyway.
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(uploadReadTime))
}

// largestFile is the cap of the largest kind of file.
func largestFile(l tenant.MediaLimits) int64 {
	return max(l.MaxImage, l.MaxSticker, l.MaxAudio, l.MaxVideo, l.MaxDocument)
}

// mediaV1 is an upload as the API answers it.
type mediaV1 struct {
	UploadID string  `json:"upload_id"`
	MIME     string  `json:"mime"`
	Size     int64   `json:"size"`
	Kind     string  `json:"kind"`
	FileName *string `json:"file_name"` // as the upload named it; null for none
}

// mediaAPIError turns the media store's refusals into the API's errors:
// over a cap is 413 too_large, over the quota 507 quota_exceeded.
func mediaAPIError(err error) error {
	var de *tenant.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return newAPIError(http.StatusRequestEntityTooLarge, "too_large", "the file is larger than any file may be; it was not stored")
	case !errors.As(err, &de):
		return err
	case de.Code == tenant.CodeTooLarge:
		return newAPIError(http.StatusRequestEntityTooLarge, "too_large", de.Msg)
	case de.Code == tenant.CodeQuotaExceeded:
		return newAPIError(http.StatusInsufficientStorage, "quota_exceeded", de.Msg)
	}
	return err
}

// apiV1MediaCreate stores the file of a multipart/form-data body: a part
// named file, and before it, optionally, kind (image, video, audio,
// voice, document or sticker; default from the file's sniffed type),
// whose cap bounds it. 201 with the upload.
func (p *Portal) apiV1MediaCreate(c echo.Context) error {
	media := p.cfg.Media
	if media == nil {
		return newAPIError(http.StatusServiceUnavailable, "unavailable", "this server does not store media")
	}
	allowUpload(c, largestFile(media.Limits())+multipartSlack)
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return newAPIError(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send multipart/form-data with the file in a part named file")
	}
	invalid := func(field, msg string) error {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "the upload has errors", Fields: map[string]string{field: msg}}
	}
	var kind tenant.MediaKind
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return invalid("file", "Add the file in a part named file.")
		}
		if err != nil {
			if e := mediaAPIError(err); e != err {
				return e
			}
			return newAPIError(http.StatusBadRequest, "bad_request", "the body is not valid multipart/form-data")
		}
		switch part.FormName() {
		case "kind":
			raw, _ := io.ReadAll(io.LimitReader(part, 64))
			kind = tenant.MediaKind(strings.TrimSpace(string(raw)))
			if !kind.HasFile() {
				return invalid("kind", "Use image, video, audio, voice, document or sticker; leave it out to take it from the file's type.")
			}
		case "file":
			f, k, err := media.PutUpload(c.Request().Context(), apiTenantID(c), kind, part.Header.Get("Content-Type"), 0, part)
			if err != nil {
				return mediaAPIError(err)
			}
			out := mediaV1{UploadID: f.SHA256, MIME: f.MIME, Size: f.Size, Kind: string(k)}
			if name := path.Base(strings.ReplaceAll(part.FileName(), `\`, "/")); name != "." && name != "/" && name != "" {
				out.FileName = &name
			}
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.JSON(http.StatusCreated, out)
		default:
			return invalid(part.FormName(), "Unknown part: send file, and kind before it if you choose the kind.")
		}
	}
}
