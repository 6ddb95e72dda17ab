package portal

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"wabot/tenant"
	"wabot/views"
)

// This file turns domain rows into the words the pages show.

func tenantView(t tenant.Tenant) views.TenantView {
	v := views.TenantView{ID: t.ID, Name: t.Name, Status: string(t.Status)}
	switch t.Status {
	case tenant.StatusPending:
		v.StatusLabel = "Waiting for approval"
		v.StatusLine = "An administrator must approve this workspace before the bot answers anyone. You can link your number meanwhile; its messages are logged without their text until then."
	case tenant.StatusActive:
		v.StatusLabel = "Active"
		v.StatusLine = "The bot answers messages while WhatsApp is connected."
	case tenant.StatusSuspended:
		v.StatusLabel = "Suspended"
		v.StatusLine = "An administrator suspended this workspace: its WhatsApp session is stopped and the bot answers nobody."
	case tenant.StatusError:
		v.StatusLabel = "Needs attention"
		v.StatusLine = "The WhatsApp session failed for good; the link page says what to do."
	}
	return v
}

// stateWords gives each session state a short label and a sentence.
func stateWords(st tenant.LinkState) (string, string) {
	switch st {
	case tenant.StateQRPending:
		return "Not linked", "No code yet: open the link page to get one."
	case tenant.StateQRReady:
		return "Waiting for a scan", "Scan the code with WhatsApp on your phone to link this number."
	case tenant.StateQRExpired:
		return "Code expired", "The codes ran out before a scan. Get a new code to try again."
	case tenant.StateConnected:
		return "Connected", "Linked and online: messages reach the bot."
	case tenant.StateDisconnected:
		return "Reconnecting", "The connection to WhatsApp dropped; wabot is reconnecting by itself."
	case tenant.StateError:
		return "Error", "The session stopped and needs a person: see what to do below."
	case tenant.StateLoggedOut:
		return "Logged out", "The phone unlinked this device. Link it again with a new code."
	}
	return string(st), ""
}

func sessionView(sess tenant.Link, worker tenant.Worker, now time.Time) views.SessionView {
	label, line := stateWords(sess.State)
	v := views.SessionView{
		State: string(sess.State), StateLabel: label, StateLine: line,
		PairCode: sess.PairCode, PushName: sess.PushName, Number: tenant.PhoneOf(sess.JID),
		WorkerStatus: string(worker.Status), Restarts: worker.Restarts,
		ErrorCode: string(sess.ErrorCode), LastError: sess.LastError, Attempts: sess.ReconnectAttempts,
		LastSeen: ago(worker.LastSeenAt, now),
	}
	// Only the PNG data URI wabot renders itself goes into the page, where
	// templ's URL check is bypassed for it.
	if sess.State == tenant.StateQRReady && strings.HasPrefix(sess.QRDataURI, "data:image/png;base64,") {
		v.QRDataURI = sess.QRDataURI
		v.QRExpiresAt = sess.QRExpiresAt.UTC().Format(time.RFC3339)
		v.QRSecondsLeft = max(0, int(sess.QRExpiresAt.Sub(now).Seconds()+0.5))
	}
	if !sess.ConnectedAt.IsZero() && (sess.State == tenant.StateConnected || sess.State == tenant.StateDisconnected) {
		v.ConnectedSince = sess.ConnectedAt.UTC().Format("2 Jan 2006 15:04 UTC")
	}
	return v
}

// ago says how long ago t was, in the largest unit that fits.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days ago"
}

// messageViews shows messages with their media (media may be nil: none).
func messageViews(ms []tenant.Message, media map[int64]tenant.MessageMedia) []views.MessageView {
	out := make([]views.MessageView, 0, len(ms))
	for _, m := range ms {
		sender := m.SenderName
		if m.Direction == "in" && m.Sender != "" && m.Sender != m.Chat {
			sender = strings.TrimSpace(m.SenderName + " " + tenant.PhoneOf(m.Sender))
		}
		out = append(out, views.MessageView{
			ID: m.ID, Direction: m.Direction, Chat: chatName(m.Chat), Sender: sender,
			Body: m.Body, Cut: m.Cut, URL: "/app/logs/" + strconv.FormatInt(m.ID, 10), Kind: m.Kind, Status: string(m.Status), StatusLabel: messageStatusLabel(m.Status), Error: m.Error, Origin: m.Origin,
			At: m.CreatedAt.UTC().Format("2 Jan 15:04:05"), AtISO: m.CreatedAt.UTC().Format(time.RFC3339),
		})
		if md, ok := media[m.ID]; ok {
			out[len(out)-1].Media = mediaView(md, m.Body)
		}
	}
	return out
}

// mediaKindLabels name each kind of media for people.
var mediaKindLabels = map[tenant.MediaKind]string{
	tenant.MediaImage: "Image", tenant.MediaSticker: "Sticker", tenant.MediaAudio: "Audio", tenant.MediaVoice: "Voice note",
	tenant.MediaVideo: "Video", tenant.MediaDocument: "Document", tenant.MediaLocation: "Location", tenant.MediaContact: "Contact",
}

// mediaView is a message's media for the log; body is the message's text,
// so a caption it already shows is not shown twice.
func mediaView(md tenant.MessageMedia, body string) *views.MediaView {
	v := &views.MediaView{
		Kind: string(md.Kind), KindLabel: cmp.Or(mediaKindLabels[md.Kind], string(md.Kind)), Status: string(md.Status), Error: md.Error,
		FileName: mediaFileName(md, md.MIME), Size: humanSize(md.Size), Width: md.Width, Height: md.Height,
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
		v.ContactName = "(no name)"
	}
	return v
}

// humanSize writes a byte count as people read it: 300 bytes, 12 KB,
// 1.5 MB, 2 GB.
func humanSize(n int64) string {
	switch {
	case n == 1:
		return "1 byte"
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1<<20:
		return oneDecimal(float64(n)/(1<<10)) + " KB"
	case n < 1<<30:
		return oneDecimal(float64(n)/(1<<20)) + " MB"
	}
	return oneDecimal(float64(n)/(1<<30)) + " GB"
}

// oneDecimal writes f with one decimal below 100, without a trailing ".0".
func oneDecimal(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0")
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
func statusChoices() []views.Choice {
	out := make([]views.Choice, len(tenant.MessageStatuses))
	for i, s := range tenant.MessageStatuses {
		out[i] = views.Choice{Value: string(s), Label: messageStatusLabel(s)}
	}
	return out
}

// messageStatusLabel is a message status in words.
func messageStatusLabel(s tenant.MessageStatus) string {
	switch s {
	case tenant.MsgReceived:
		return "Received"
	case tenant.MsgPending:
		return "Sending"
	case tenant.MsgReplied:
		return "Replied"
	case tenant.MsgIgnored:
		return "Ignored"
	case tenant.MsgRateLimited:
		return "Rate limited"
	case tenant.MsgDropped:
		return "Dropped (busy)"
	case tenant.MsgFailed:
		return "Failed"
	case tenant.MsgDuplicate:
		return "Duplicate"
	}
	return string(s)
}
