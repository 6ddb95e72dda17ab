package views

import (
	"context"
	"strconv"
	"strings"
)

// Words the portal and several components share, looked up by a code
// that comes from the database.

// languageName is a language's own name, for the menu's summary.
func languageName(code string) string {
	for _, l := range Languages {
		if l.Code == code {
			return l.Name
		}
	}
	return code
}

// roleLabel is a member's role ("owner", "agent") in words.
func roleLabel(ctx context.Context, role string) string { return RoleLabel(LocaleOf(ctx), role) }

// RoleLabel is a member's role ("owner", "agent") in words.
func RoleLabel(l *Locale, role string) string {
	switch role {
	case "owner":
		return l.T("RoleOwner")
	case "agent":
		return l.T("RoleAgent")
	}
	return role
}

// kindLabel is a message's kind ("image", "voice") in words.
func kindLabel(ctx context.Context, kind string) string { return KindLabel(LocaleOf(ctx), kind) }

// KindLabel is a message's kind ("image", "voice") in lower-case words,
// as it shows in brackets after a name or in place of a text.
func KindLabel(l *Locale, kind string) string {
	switch kind {
	case "text":
		return l.T("KindText")
	case "image":
		return l.T("KindImage")
	case "sticker":
		return l.T("KindSticker")
	case "audio":
		return l.T("KindAudio")
	case "voice":
		return l.T("KindVoice")
	case "video":
		return l.T("KindVideo")
	case "document":
		return l.T("KindDocument")
	case "location":
		return l.T("KindLocation")
	case "contact":
		return l.T("KindContact")
	}
	return kind
}

// originLabel is what wrote a bot reply ("rule 2", "welcome") in words.
func originLabel(ctx context.Context, origin string) string {
	return OriginLabel(LocaleOf(ctx), origin)
}

// OriginLabel is what wrote a bot reply ("rule 2", "welcome") in words.
func OriginLabel(l *Locale, origin string) string {
	switch origin {
	case "welcome":
		return l.T("OriginWelcome")
	case "fallback":
		return l.T("OriginFallback")
	case "webhook":
		return l.T("OriginWebhook")
	case "hand-over":
		return l.T("OriginHandover")
	case "busy":
		return l.T("OriginBusy")
	case "ai":
		return l.T("OriginAI")
	}
	if n, ok := strings.CutPrefix(origin, "rule "); ok {
		if i, err := strconv.Atoi(n); err == nil {
			return l.T("OriginRule", "N", i)
		}
	}
	return origin
}

// deliveryLabel is a webhook delivery's status (pending, delivered,
// failed) in words.
func deliveryLabel(ctx context.Context, status string) string {
	switch status {
	case "pending":
		return T(ctx, "DeliveryPending")
	case "delivered":
		return T(ctx, "DeliveryDelivered")
	case "failed":
		return T(ctx, "DeliveryFailed")
	}
	return status
}
