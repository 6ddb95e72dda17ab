package portal

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// This file turns domain rows into the words the pages show.

func tenantView(l *views.Locale, t tenant.Tenant) views.TenantView {
	v := views.TenantView{ID: t.ID, Name: t.Name, Status: string(t.Status)}
	switch t.Status {
	case tenant.StatusPending:
		v.StatusLabel = l.T("TenantPendingLabel")
		v.StatusLine = l.T("TenantPendingLine")
	case tenant.StatusActive:
		v.StatusLabel = l.T("TenantActiveLabel")
		v.StatusLine = l.T("TenantActiveLine")
	case tenant.StatusSuspended:
		v.StatusLabel = l.T("TenantSuspendedLabel")
		v.StatusLine = l.T("TenantSuspendedLine")
	case tenant.StatusError:
		v.StatusLabel = l.T("TenantErrorLabel")
		v.StatusLine = l.T("TenantErrorLine")
	}
	return v
}

// stateWords gives each session state a short label and a sentence.
func stateWords(l *views.Locale, st tenant.LinkState) (string, string) {
	switch st {
	case tenant.StateQRPending:
		return l.T("StateQRPending"), l.T("StateQRPendingLine")
	case tenant.StateQRReady:
		return l.T("StateQRReady"), l.T("StateQRReadyLine")
	case tenant.StateQRExpired:
		return l.T("StateQRExpired"), l.T("StateQRExpiredLine")
	case tenant.StateConnected:
		return l.T("StateConnected"), l.T("StateConnectedLine")
	case tenant.StateDisconnected:
		return l.T("StateDisconnected"), l.T("StateDisconnectedLine")
	case tenant.StateError:
		return l.T("StateError"), l.T("StateErrorLine")
	case tenant.StateLoggedOut:
		return l.T("StateLoggedOut"), l.T("StateLoggedOutLine")
	}
	return string(st), ""
}

func sessionView(l *views.Locale, sess tenant.Link, worker tenant.Worker, now time.Time) views.SessionView {
	label, line := stateWords(l, sess.State)
	v := views.SessionView{
		State: string(sess.State), StateLabel: label, StateLine: line,
		PairCode: sess.PairCode, PushName: sess.PushName, Number: tenant.PhoneOf(sess.JID),
		WorkerStatus: string(worker.Status), Restarts: worker.Restarts,
		ErrorCode: string(sess.ErrorCode), LastError: sess.LastError, Attempts: sess.ReconnectAttempts,
		LastSeen: l.Ago(worker.LastSeenAt, now),
	}
	// Only the PNG data URI wabot renders itself goes into the page, where
	// templ's URL check is bypassed for it.
	if text := problemText(l, sess.ErrorCode); text != "" && l.Code() != "en" && sess.LastError != "" {
		v.LastError, v.ErrorDetail = text, sess.LastError
	}
	if sess.State == tenant.StateQRReady && strings.HasPrefix(sess.QRDataURI, "data:image/png;base64,") {
		v.QRDataURI = sess.QRDataURI
		v.QRExpiresAt = sess.QRExpiresAt.UTC().Format(time.RFC3339)
		v.QRSecondsLeft = max(0, int(sess.QRExpiresAt.Sub(now).Seconds()+0.5))
	}
	if !sess.ConnectedAt.IsZero() && (sess.State == tenant.StateConnected || sess.State == tenant.StateDisconnected) {
		v.ConnectedSince = l.DateTime(sess.ConnectedAt) + " UTC"
	}
	return v
}

// messageViews shows messages with their media (media may be nil: none).
func messageViews(l *views.Locale, ms []tenant.Message, media map[int64]tenant.MessageMedia) []views.MessageView {
	out := make([]views.MessageView, 0, len(ms))
	for _, m := range ms {
		sender := m.SenderName
		if m.Direction == "in" && m.Sender != "" && m.Sender != m.Chat {
			sender = strings.TrimSpace(m.SenderName + " " + tenant.PhoneOf(m.Sender))
		}
		out = append(out, views.MessageView{
			ID: m.ID, Direction: m.Direction, Chat: chatName(m.Chat), Sender: sender,
			Body: m.Body, Cut: m.Cut, URL: "/app/logs/" + strconv.FormatInt(m.ID, 10), Kind: m.Kind, Status: string(m.Status), StatusLabel: messageStatusLabel(l, m.Status), Error: messageError(l, m.Error), Origin: m.Origin,
			At: l.Stamp(m.CreatedAt), AtISO: m.CreatedAt.UTC().Format(time.RFC3339),
		})
		if md, ok := media[m.ID]; ok {
			out[len(out)-1].Media = mediaView(l, md, m.Body)
		}
	}
	return out
}

// mediaKindLabel names a kind of media for people.
func mediaKindLabel(l *views.Locale, k tenant.MediaKind) string {
	switch k {
	case tenant.MediaImage:
		return l.T("MediaImage")
	case tenant.MediaSticker:
		return l.T("MediaSticker")
	case tenant.MediaAudio:
		return l.T("MediaAudio")
	case tenant.MediaVoice:
		return l.T("MediaVoice")
	case tenant.MediaVideo:
		return l.T("MediaVideo")
	case tenant.MediaDocument:
		return l.T("MediaDocument")
	case tenant.MediaLocation:
		return l.T("MediaLocation")
	case tenant.MediaContact:
		return l.T("MediaContact")
	}
	return string(k)
}

// mediaView is a message's media for the log; body is the message's text,
// so a caption it already shows is not shown twice.
func mediaView(l *views.Locale, md tenant.MessageMedia, body string) *views.MediaView {
	v := &views.MediaView{
		Kind: string(md.Kind), KindLabel: mediaKindLabel(l, md.Kind), Status: string(md.Status), Error: md.Error,
		FileName: mediaFileName(md, md.MIME), Size: humanSize(l, md.Size), Width: md.Width, Height: md.Height,
		ContactName: md.ContactName, VCard: md.VCard, Place: md.PlaceName, Address: md.Address,
	}
	if strings.TrimSpace(md.Caption) != strings.TrimSpace(body) {
		v.Caption = md.Caption
	}
	if md.Kind.HasFile() && md.Status == tenant.MediaStored {
		v.URL = "/app/media/" + strconv.FormatInt(md.MessageID, 10)
		v.Inline = tenant.InlineMIME(md.MIME)
	}
	if md.Kind == tenant.MediaLocation && md.Positioned {
		v.MapURL = tenant.MapURL(md.Latitude, md.Longitude)
		v.Coords = fmt.Sprintf("%.6f, %.6f", md.Latitude, md.Longitude)
	}
	if md.Kind == tenant.MediaContact && v.ContactName == "" {
		v.ContactName = l.T("ContactNoName")
	}
	return v
}

// humanSize writes a byte count as people read it: 300 bytes, 12 KB,
// 1.5 MB, 2 GB (with the locale's decimal mark).
func humanSize(l *views.Locale, n int64) string {
	switch {
	case n < 1<<10:
		return l.N("SizeBytes", int(n))
	case n < 1<<20:
		return oneDecimal(l, float64(n)/(1<<10)) + " KB"
	case n < 1<<30:
		return oneDecimal(l, float64(n)/(1<<20)) + " MB"
	}
	return oneDecimal(l, float64(n)/(1<<30)) + " GB"
}

// oneDecimal writes f with one decimal below 100, without a trailing zero.
func oneDecimal(l *views.Locale, f float64) string {
	if f >= 100 || math.Round(f*10) == math.Round(f)*10 {
		return l.Decimal(math.Round(f), 0)
	}
	return l.Decimal(f, 1)
}

func chatName(jid string) string {
	if phone := tenant.PhoneOf(jid); phone != "" && strings.HasSuffix(jid, "@s.whatsapp.net") {
		return phone
	}
	return jid
}

// panelVersion changes whenever the live link panel would look different.
func panelVersion(s tenant.Link) string {
	return fmt.Sprintf("%s|%d|%s|%s|%d|%s", s.State, s.QRUpdatedAt.UnixMilli(), s.PairCode, s.JID, s.ReconnectAttempts, s.ErrorCode)
}

// statusChoices lists the message statuses for the log's filter.
func statusChoices(l *views.Locale) []views.Choice {
	out := make([]views.Choice, len(tenant.MessageStatuses))
	for i, s := range tenant.MessageStatuses {
		out[i] = views.Choice{Value: string(s), Label: messageStatusLabel(l, s)}
	}
	return out
}

// messageStatusLabel is a message status in words.
func messageStatusLabel(l *views.Locale, s tenant.MessageStatus) string {
	switch s {
	case tenant.MsgReceived:
		return l.T("MsgReceived")
	case tenant.MsgPending:
		return l.T("MsgPending")
	case tenant.MsgReplied:
		return l.T("MsgReplied")
	case tenant.MsgIgnored:
		return l.T("MsgIgnored")
	case tenant.MsgRateLimited:
		return l.T("MsgRateLimited")
	case tenant.MsgDropped:
		return l.T("MsgDropped")
	case tenant.MsgFailed:
		return l.T("MsgFailed")
	case tenant.MsgDuplicate:
		return l.T("MsgDuplicate")
	}
	return string(s)
}

// loc is the request's locale, which the middleware chose.
func loc(c echo.Context) *views.Locale { return views.LocaleOf(c.Request().Context()) }

// messageError is the reason stored with a message in the reader's
// language. The pipeline stores its reasons in English (they are also the
// API's); the ones it writes are known here, anything else (WhatsApp's
// own errors) shows as stored.
func messageError(l *views.Locale, s string) string {
	switch s {
	case "":
		return ""
	case "group chats are not answered":
		return l.T("ReasonGroups")
	case "the chat's queue was full":
		return l.T("ReasonQueueFull")
	case "the bot is turned off":
		return l.T("ReasonBotOff")
	case "no rule matched and there is no fallback reply":
		return l.T("ReasonNoRule")
	case "over the tenant's or the chat's reply rate limit":
		return l.T("ReasonRateLimit")
	case "the workspace is pending: the bot answers only for active workspaces":
		return l.T("ReasonPending")
	case "the workspace is suspended: the bot answers only for active workspaces":
		return l.T("ReasonSuspended")
	}
	return s
}

// problemText says, in l's language, what a session's error code means and
// what to do; the session's own sentence (English, with the details) is
// shown beside it. "" for a code without one.
func problemText(l *views.Locale, p tenant.Problem) string {
	switch p {
	case tenant.ProblemReconnectFailed:
		return l.T("ProblemReconnectFailed")
	case tenant.ProblemReplaced:
		return l.T("ProblemReplaced")
	case tenant.ProblemOutdated:
		return l.T("ProblemOutdated")
	case tenant.ProblemTemporaryBan:
		return l.T("ProblemTemporaryBan")
	case tenant.ProblemConnectFailure:
		return l.T("ProblemConnectFailure")
	case tenant.ProblemPairFailed:
		return l.T("ProblemPairFailed")
	case tenant.ProblemLoggedOut:
		return l.T("ProblemLoggedOut")
	case tenant.ProblemStoreFailed:
		return l.T("ProblemStoreFailed")
	}
	return ""
}
