package session

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
)

func TestRenderQRDecodesToTheCode(t *testing.T) {
	for range 50 {
		ref, key := make([]byte, 24), make([]byte, 32)
		rand.Read(ref)
		rand.Read(key)
		k := base64.StdEncoding.EncodeToString(key)
		code := "2@" + base64.StdEncoding.EncodeToString(ref) + "," + k + "," + k + "," + k
		uri, err := RenderQR(code)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeQR(t, uri); got != code {
			t.Fatalf("decoded %q, want %q", got, code)
		}
	}
}
