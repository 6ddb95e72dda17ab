package tenant

import (
	"fmt"
	"net/url"
)

// MediaInfo is a message's media as the API, event webhooks and the bot's
// webhook show it: one shape everywhere.
type MediaInfo struct {
	Kind MediaKind `json:"kind"`
	// Status: pending (being downloaded from WhatsApp), stored, failed
	// (Error says why) or none (a location or a contact: no file).
	Status          MediaStatus   `json:"status"`
	Error           string        `json:"error,omitempty"`
	MIME            string        `json:"mime,omitempty"`
	Size            int64         `json:"size,omitempty"` // bytes; before the download, what the sender declared
	SHA256          string        `json:"sha256,omitempty"`
	FileName        string        `json:"file_name,omitempty"`
	Caption         string        `json:"caption,omitempty"`
	DurationSeconds int           `json:"duration_seconds,omitempty"`
	Width           int           `json:"width,omitempty"`
	Height          int           `json:"height,omitempty"`
	Location        *LocationInfo `json:"location,omitempty"`
	Contact         *ContactInfo  `json:"contact,omitempty"`
	// DownloadURL fetches the file without a session or key until it
	// expires (signed); GET /api/v1/messages/{id}/media does with a key.
	DownloadURL string `json:"download_url,omitempty"`
}

// LocationInfo is a shared location; Latitude and Longitude are absent
// when the sender gave none that is on the globe.
type LocationInfo struct {
	Latitude  *float64 `json:"latitude,omitempty"`
	Longitude *float64 `json:"longitude,omitempty"`
	Name      string   `json:"name,omitempty"`
	Address   string   `json:"address,omitempty"`
	MapURL    string   `json:"map_url,omitempty"`
}

// ContactInfo is a shared contact card.
type ContactInfo struct {
	Name  string `json:"name"`
	VCard string `json:"vcard"`
}

// Info is md as MediaInfo, with downloadURL (empty: none) for a file.
func (md MessageMedia) Info(downloadURL string) *MediaInfo {
	in := &MediaInfo{
		Kind: md.Kind, Status: md.Status, Error: md.Error, MIME: md.MIME, Size: md.Size, SHA256: md.SHA256,
		FileName: md.FileName, Caption: md.Caption, DurationSeconds: md.DurationSeconds, Width: md.Width, Height: md.Height,
	}
	switch md.Kind {
	case MediaLocation:
		loc := &LocationInfo{Name: md.PlaceName, Address: md.Address}
		if md.Positioned {
			lat, lng := md.Latitude, md.Longitude
			loc.Latitude, loc.Longitude, loc.MapURL = &lat, &lng, MapURL(lat, lng)
		}
		in.Location = loc
	case MediaContact:
		in.Contact = &ContactInfo{Name: md.ContactName, VCard: md.VCard}
	default:
		if md.Status != MediaFailed {
			in.DownloadURL = downloadURL
		}
	}
	return in
}

// MapURL shows a position on OpenStreetMap.
func MapURL(lat, lng float64) string {
	q := url.Values{"mlat": {fmt.Sprintf("%.6f", lat)}, "mlon": {fmt.Sprintf("%.6f", lng)}}
	return fmt.Sprintf("https://www.openstreetmap.org/?%s#map=17/%.6f/%.6f", q.Encode(), lat, lng)
}

// SetMediaLink makes message.received events carry a download link for a
// message's file: link returns it for a tenant's message id (signed and
// expiring; see MediaLinks). Call it once, before the store is used.
func (s *Store) SetMediaLink(link func(tenantID string, messageID int64) string) {
	s.mediaLink = link
}

// mediaLinkOf is the link for a message's file, or "" when none is set.
func (s *Store) mediaLinkOf(tenantID string, messageID int64) string {
	if s.mediaLink == nil {
		return ""
	}
	return s.mediaLink(tenantID, messageID)
}
