package portal

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// statusOf maps a domain error code to its HTTP status.
var statusOf = map[tenant.Code]int{
	tenant.CodeInvalid:      http.StatusUnprocessableEntity,
	tenant.CodeBadRequest:   http.StatusBadRequest,
	tenant.CodeNotFound:     http.StatusNotFound,
	tenant.CodeConflict:     http.StatusConflict,
	tenant.CodeUnauthorized: http.StatusUnauthorized,
	tenant.CodeForbidden:    http.StatusForbidden,
	tenant.CodeUnavailable:  http.StatusServiceUnavailable,
	tenant.CodeTooMany:      http.StatusTooManyRequests,
	// A media file over its cap, or over the workspace's quota: the
	// client's to fix, with the store's sentence.
	tenant.CodeTooLarge:      http.StatusRequestEntityTooLarge,
	tenant.CodeQuotaExceeded: http.StatusInsufficientStorage,
}

// ErrorHandler renders every error: JSON {"error": ...} under /api/ and an
// HTML page elsewhere. Only internal errors (5xx) are logged, and their
// detail never reaches the client.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, msg, fields := http.StatusInternalServerError, "internal error", map[string]string(nil)
		var de *tenant.Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &de):
			status, msg, fields = statusOf[de.Code], de.Msg, de.Fields
			if status == 0 {
				status = http.StatusInternalServerError
			}
		case errors.As(err, &he):
			status = he.Code
			if m, ok := he.Message.(string); ok && status < 500 {
				msg = strings.ToLower(m)
			} else {
				msg = strings.ToLower(http.StatusText(status))
			}
		}
		if status >= 500 && status != http.StatusInsufficientStorage {
			// The route pattern, not the raw method and path: those are the
			// client's to choose, and the request log already has them, bounded.
			log.Error("request failed", "route", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
			msg = "internal error"
			if status == http.StatusServiceUnavailable && de != nil {
				msg = de.Msg
			}
		}
		if isAPIV1Path(c.Request().URL.Path) {
			renderAPIV1Error(c, err, status, msg, fields)
			return
		}
		if isAPI(c) {
			body := map[string]any{"error": msg}
			if len(fields) > 0 {
				body["fields"] = fields
			}
			if c.Request().Method == http.MethodHead {
				_ = c.NoContent(status)
				return
			}
			_ = c.JSON(status, body)
			return
		}
		l := loc(c)
		_ = Render(c, status, views.ErrorPage(views.ErrorView{Status: status, Title: statusTitle(l, status), Message: pageMessage(l, status, msg)}))
	}
}

func isAPI(c echo.Context) bool { return isAPIPath(c.Request().URL.Path) }

func isAPIPath(path string) bool {
	return path == "/api" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/dev/")
}

// statusTitle is an error page's heading: the status in words.
func statusTitle(l *views.Locale, status int) string {
	switch status {
	case http.StatusBadRequest:
		return l.T("Status400")
	case http.StatusUnauthorized:
		return l.T("Status401")
	case http.StatusForbidden:
		return l.T("Status403")
	case http.StatusNotFound:
		return l.T("Status404")
	case http.StatusMethodNotAllowed:
		return l.T("Status405")
	case http.StatusConflict:
		return l.T("Status409")
	case http.StatusRequestEntityTooLarge:
		return l.T("Status413")
	case http.StatusUnprocessableEntity:
		return l.T("Status422")
	case http.StatusTooManyRequests:
		return l.T("Status429")
	case http.StatusInternalServerError:
		return l.T("Status500")
	case http.StatusServiceUnavailable:
		return l.T("Status503")
	}
	return http.StatusText(status)
}

func pageMessage(l *views.Locale, status int, msg string) string {
	switch status {
	case http.StatusNotFound:
		return l.T("PageNotFound")
	case http.StatusInternalServerError:
		return l.T("PageInternalError")
	case http.StatusForbidden:
		if msg == "forbidden" {
			return l.T("PageForbidden")
		}
	}
	if msg != "" {
		if t := errorText(l, msg); t != msg {
			return t
		}
		return strings.ToUpper(msg[:1]) + msg[1:]
	}
	return http.StatusText(status)
}
