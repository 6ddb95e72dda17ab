package fakewa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// WhatsApp's media path: the client asks for a media connection (an auth
// token and host names) over the websocket, uploads the encrypted file by
// HTTPS POST, and puts the key and both hashes in the message; the
// recipient downloads the blob by HTTPS GET and decrypts it. The fake
// keeps blobs in memory for its lifetime, on the same TLS listener as the
// websocket.

// mediaHost is the host name media_conn hands out. Every dial of a
// configured client reaches the fake whatever the host, so the name only
// has to look like WhatsApp's.
const mediaHost = "mmg.whatsapp.net"

// maxMediaUpload caps one upload: WhatsApp's largest documents are 2 GB,
// but nothing the fake serves needs more than a few hundred MB.
const maxMediaUpload = 256 << 20

// The encrypted media format (read in whatsmeow's upload.go and
// download.go, written here from scratch): a random 32-byte media key is
// expanded by HKDF-SHA256 with an info string per media class into an IV,
// an AES-256 key and an HMAC key; the file is AES-CBC encrypted with
// PKCS#7 padding and followed by the first 10 bytes of HMAC-SHA256(iv ‖
// ciphertext).
const (
	imageKeys    = "WhatsApp Image Keys"
	videoKeys    = "WhatsApp Video Keys"
	audioKeys    = "WhatsApp Audio Keys"
	documentKeys = "WhatsApp Document Keys"
	macLength    = 10
)

// sealedMedia is a file encrypted for upload, with what the message that
// carries it needs.
type sealedMedia struct {
	mediaKey      []byte
	body          []byte // ciphertext ‖ mac, what the server stores
	fileSHA256    []byte // of the plaintext
	fileEncSHA256 []byte // of body
}

type mediaKeys struct{ iv, cipherKey, macKey []byte }

func expandMediaKey(mediaKey []byte, info string) (mediaKeys, error) {
	if len(mediaKey) != 32 {
		return mediaKeys{}, fmt.Errorf("media key is %d bytes, want 32", len(mediaKey))
	}
	exp, err := hkdf.Key(sha256.New, mediaKey, nil, info, 112)
	if err != nil {
		return mediaKeys{}, err
	}
	return mediaKeys{iv: exp[:16], cipherKey: exp[16:48], macKey: exp[48:80]}, nil
}

func mediaMAC(k mediaKeys, ciphertext []byte) []byte {
	h := hmac.New(sha256.New, k.macKey)
	h.Write(k.iv)
	h.Write(ciphertext)
	return h.Sum(nil)[:macLength]
}

// sealMedia encrypts plaintext with a new media key for the class info.
func sealMedia(plaintext []byte, info string) (sealedMedia, error) {
	mediaKey := make([]byte, 32)
	rand.Read(mediaKey)
	k, err := expandMediaKey(mediaKey, info)
	if err != nil {
		return sealedMedia{}, err
	}
	block, err := aes.NewCipher(k.cipherKey)
	if err != nil {
		return sealedMedia{}, err
	}
	// PKCS#7 always pads, a whole block when the length is already a
	// multiple of the block size.
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := make([]byte, len(plaintext)+n)
	copy(padded, plaintext)
	for i := len(plaintext); i < len(padded); i++ {
		padded[i] = byte(n)
	}
	cipher.NewCBCEncrypter(block, k.iv).CryptBlocks(padded, padded)
	body := append(padded, mediaMAC(k, padded)...)
	fileHash, encHash := sha256.Sum256(plaintext), sha256.Sum256(body)
	return sealedMedia{mediaKey: mediaKey, body: body, fileSHA256: fileHash[:], fileEncSHA256: encHash[:]}, nil
}

// openMedia checks and decrypts a downloaded body as a recipient does:
// the encrypted hash, the MAC, the padding, then the plaintext's hash and
// length (length < 0 skips that check).
func openMedia(body, mediaKey []byte, info string, fileEncSHA256, fileSHA256 []byte, length int) ([]byte, error) {
	if len(body) <= macLength {
		return nil, errors.New("media blob too short")
	}
	if h := sha256.Sum256(body); !bytes.Equal(h[:], fileEncSHA256) {
		return nil, errors.New("media blob does not match FileEncSHA256")
	}
	k, err := expandMediaKey(mediaKey, info)
	if err != nil {
		return nil, err
	}
	ciphertext, mac := body[:len(body)-macLength], body[len(body)-macLength:]
	if !hmac.Equal(mediaMAC(k, ciphertext), mac) {
		return nil, errors.New("media blob fails its HMAC")
	}
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, errors.New("media ciphertext is not whole AES blocks")
	}
	block, err := aes.NewCipher(k.cipherKey)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, k.iv).CryptBlocks(plain, ciphertext)
	n := int(plain[len(plain)-1])
	if n == 0 || n > aes.BlockSize || !bytes.Equal(plain[len(plain)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, errors.New("media plaintext has bad padding")
	}
	plain = plain[:len(plain)-n]
	if h := sha256.Sum256(plain); !bytes.Equal(h[:], fileSHA256) {
		return nil, errors.New("media plaintext does not match FileSHA256")
	}
	if length >= 0 && len(plain) != length {
		return nil, fmt.Errorf("media plaintext is %d bytes, FileLength says %d", len(plain), length)
	}
	return plain, nil
}

// DownloadFault is what a download of a blob gets instead of the blob.
// Both fail whatsmeow's Download at once: 5xx answers would cost it about
// 15 s of retries per host.
type DownloadFault int

const (
	// DownloadMissing answers 404, as for an expired blob; whatsmeow
	// returns ErrMediaDownloadFailedWith404.
	DownloadMissing DownloadFault = iota + 1
	// DownloadCorrupt serves the blob with one byte changed; whatsmeow
	// returns ErrInvalidMediaEncSHA256 (or ErrInvalidMediaHMAC when the
	// message carries no encrypted hash).
	DownloadCorrupt
)

// mediaStore holds the uploaded blobs and the media faults.
type mediaStore struct {
	auth string // the media_conn token uploads must carry

	mu          sync.Mutex
	blobs       map[string][]byte          // by path, /v/fake/<hex of FileEncSHA256>
	faults      []DownloadFault            // the next downloads of any blob
	blobFaults  map[string][]DownloadFault // the next downloads of one blob
	uploadFails int                        // uploads still to refuse
	uploads     int                        // uploads accepted
	downloads   int                        // download requests answered
}

func newMediaStore() *mediaStore {
	b := make([]byte, 16)
	rand.Read(b)
	return &mediaStore{
		auth:       base64.RawURLEncoding.EncodeToString(b),
		blobs:      map[string][]byte{},
		blobFaults: map[string][]DownloadFault{},
	}
}

// blobPath is where a blob lives: named by its encrypted hash, so the
// same bytes uploaded twice are stored once.
func blobPath(fileEncSHA256 []byte) string { return "/v/fake/" + hex.EncodeToString(fileEncSHA256) }

// put stores body and returns its path.
func (m *mediaStore) put(body []byte) string {
	h := sha256.Sum256(body)
	p := blobPath(h[:])
	m.mu.Lock()
	m.blobs[p] = body
	m.uploads++
	m.mu.Unlock()
	return p
}

// get returns the blob a direct path or URL names (its query ignored),
// or nil.
func (m *mediaStore) get(ref string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blobs[pathOf(ref)]
}

// mediaConnNode answers the client's media_conn query. The ttl is short
// because whatsmeow keeps the answer (with its auth) until it expires,
// across reconnects, and a restarted standalone fake has a new auth.
func (s *Server) mediaConnNode() waBinary.Node {
	return waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth": s.media.auth, "ttl": "60", "auth_ttl": "60", "max_buckets": "12",
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": mediaHost}}}}
}

// uploadResponse is the JSON whatsmeow decodes after an upload.
type uploadResponse struct {
	URL        string `json:"url"`
	DirectPath string `json:"direct_path"`
	Handle     string `json:"handle"`
	ObjectID   string `json:"object_id"`
}

// serveUpload is POST /mms/{type}/{token}?auth=…&token=…: the body is the
// encrypted file and token the padded URL-safe base64 of its SHA-256.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	m := s.media
	if r.URL.Query().Get("auth") != m.auth {
		http.Error(w, "bad media auth", http.StatusUnauthorized)
		return
	}
	m.mu.Lock()
	refuse := m.uploadFails > 0
	if refuse {
		m.uploadFails--
	}
	m.mu.Unlock()
	if refuse {
		http.Error(w, "upload refused (injected fault)", http.StatusInternalServerError)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMediaUpload))
	if err != nil {
		http.Error(w, "upload too large", http.StatusRequestEntityTooLarge)
		return
	}
	h := sha256.Sum256(body)
	if len(body) <= macLength || r.PathValue("token") != base64.URLEncoding.EncodeToString(h[:]) {
		http.Error(w, "token does not match the body's hash", http.StatusBadRequest)
		return
	}
	p := m.put(body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(uploadResponse{
		URL: "https://" + mediaHost + p + "?ccb=1", DirectPath: p + "?ccb=1",
		Handle: hex.EncodeToString(h[:8]), ObjectID: hex.EncodeToString(h[8:16]),
	})
}

// serveDownload is GET /v/…: the blob by path, whatever the query (the
// client adds hash, mms-type and more), unless a fault says otherwise.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	m := s.media
	m.mu.Lock()
	m.downloads++
	body := m.blobs[r.URL.Path]
	var fault DownloadFault
	if fs := m.blobFaults[r.URL.Path]; len(fs) > 0 {
		fault, m.blobFaults[r.URL.Path] = fs[0], fs[1:]
	} else if len(m.faults) > 0 {
		fault, m.faults = m.faults[0], m.faults[1:]
	}
	m.mu.Unlock()
	if body == nil || fault == DownloadMissing {
		http.NotFound(w, r)
		return
	}
	if fault == DownloadCorrupt {
		body = bytes.Clone(body)
		body[len(body)/2] ^= 0x5a
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}

// FailDownloads makes the next n media downloads, of any blob, get f.
func (s *Server) FailDownloads(f DownloadFault, n int) {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	for range n {
		s.media.faults = append(s.media.faults, f)
	}
}

// FailBlobDownloads makes the next n downloads of the blob at path (a
// message's DirectPath or URL) get f; they come before FailDownloads'.
func (s *Server) FailBlobDownloads(path string, f DownloadFault, n int) {
	path = pathOf(path)
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	for range n {
		s.media.blobFaults[path] = append(s.media.blobFaults[path], f)
	}
}

// FailUploads answers the next n media uploads with HTTP 500; whatsmeow's
// Upload returns "upload failed with status code 500" without retrying.
func (s *Server) FailUploads(n int) {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	s.media.uploadFails = n
}

// MediaStats counts the blobs stored, the uploads accepted (from clients
// and contacts) and the download requests answered, faults included.
type MediaStats struct{ Blobs, Uploads, Downloads int }

// MediaStats reports the media path's counters.
func (s *Server) MediaStats() MediaStats {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	return MediaStats{Blobs: len(s.media.blobs), Uploads: s.media.uploads, Downloads: s.media.downloads}
}

func (m *mediaStore) clearFaults() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults, m.uploadFails = nil, 0
	clear(m.blobFaults)
}

// pathOf is the path of a direct path or an https URL, without its query.
func pathOf(ref string) string {
	if rest, ok := strings.CutPrefix(ref, "https://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			ref = rest[i:]
		}
	}
	ref, _, _ = strings.Cut(ref, "?")
	return ref
}
