package tenant

import (
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"regexp"
	"strings"
	"time"
)

// Store reads and writes wabot's domain rows. Writes go through the
// database's single writer; reads use the read pool.
type Store struct {
	db     *db
	now    func() time.Time
	events eventSignal // wakes the delivery engine (events.go)
	media  *MediaStore // its files, when NewMediaStore attached them (media.go)
	// mediaLink makes a message file's download link (mediainfo.go).
	mediaLink func(tenantID string, messageID int64) string
	// botDefaults translates the bot's built-in replies (languages.go).
	botDefaults func(lang string) (busy, handover string)
	group       groupCommit // the message pipeline's shared transactions (groupcommit.go)
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns prefix followed by 16 random lower-case base32
// characters (80 bits): the shape of every id wabot generates.
func NewID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b))
}

// PhoneOf turns a JID such as "15550001111@s.whatsapp.net" (or a device's,
// "15550001111:7@s.whatsapp.net") into "+15550001111"; "" when it has no
// user part or is not a phone number's JID: a linked id ("…@lid") or a
// group's digits are no number to call or show.
func PhoneOf(jid string) string {
	user, server, ok := strings.Cut(jid, "@")
	if !ok || server != "s.whatsapp.net" {
		return ""
	}
	user, _, _ = strings.Cut(user, ":")
	user, _, _ = strings.Cut(user, ".")
	if user == "" {
		return ""
	}
	return "+" + user
}

var tenantIDPattern = regexp.MustCompile(`^t[a-z2-7]{16}$`)

// ValidTenantID reports whether id has the shape wabot generates. A tenant
// id becomes a folder name under the sessions directory, so nothing else
// may pass.
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
