package tenant

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MediaLinks signs and checks the expiring download links of media files
// that webhook and event receivers get: a link works without a session or
// key until it expires, for one message's file only. The key is the
// installation's own, kept beside the database, so links survive restarts.
type MediaLinks struct {
	key []byte
}

// mediaLinkKeyFile is the key's file name in the data folder.
const mediaLinkKeyFile = "media-links.key"

// OpenMediaLinks loads the signing key from dataDir, creating it (32 random
// bytes, mode 0600) on first use.
func OpenMediaLinks(dataDir string) (*MediaLinks, error) {
	path := filepath.Join(dataDir, mediaLinkKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(cerr, os.ErrExist) {
			// Another process created it first: use that one.
			key, err = os.ReadFile(path)
		} else if cerr != nil {
			return nil, fmt.Errorf("creating the media link key: %w", cerr)
		} else {
			_, werr := f.Write(key)
			serr := f.Sync()
			if cerr := f.Close(); werr != nil || serr != nil || cerr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("writing the media link key: %w", errors.Join(werr, serr, cerr))
			}
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the media link key: %w", err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("the media link key %s is shorter than 32 bytes: remove it and a new one is made (links already sent stop working)", path)
	}
	return NewMediaLinks(key), nil
}

// NewMediaLinks uses key (at least 32 random bytes) to sign links.
func NewMediaLinks(key []byte) *MediaLinks { return &MediaLinks{key: key} }

// Token is the signed part of a link to message messageID's file of
// tenant tenantID, valid until expires.
func (l *MediaLinks) Token(tenantID string, messageID int64, expires time.Time) string {
	payload := tenantID + "." + strconv.FormatInt(messageID, 10) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + l.mac(payload)
}

func (l *MediaLinks) mac(payload string) string {
	h := hmac.New(sha256.New, l.key)
	h.Write([]byte("wabot media link\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// ErrMediaLinkExpired is a well-signed link past its time.
var ErrMediaLinkExpired = &Error{Code: CodeForbidden, Msg: "This download link has expired; ask for the message again to get a new one."}

// Check returns the tenant and message a token names, or ErrNotFound for
// a token that is malformed or not signed by this installation, or
// ErrMediaLinkExpired.
func (l *MediaLinks) Check(token string, now time.Time) (tenantID string, messageID int64, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 || !ValidTenantID(parts[0]) {
		return "", 0, ErrNotFound
	}
	payload := strings.Join(parts[:3], ".")
	if !hmac.Equal([]byte(parts[3]), []byte(l.mac(payload))) {
		return "", 0, ErrNotFound
	}
	messageID, err1 := strconv.ParseInt(parts[1], 10, 64)
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || messageID <= 0 {
		return "", 0, ErrNotFound
	}
	if now.Unix() > exp {
		return "", 0, ErrMediaLinkExpired
	}
	return parts[0], messageID, nil
}
