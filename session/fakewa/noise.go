package fakewa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// noiseState is the responder side of Noise_XX_25519_AESGCM_SHA256 as
// WhatsApp uses it: a running hash, a chaining key (salt) and a cipher
// whose nonce counter restarts at every key mix.
type noiseState struct {
	hash    []byte
	salt    []byte
	aead    cipher.AEAD
	counter uint32
}

const noisePattern = "Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"

func newNoiseState(header []byte) (*noiseState, error) {
	h := []byte(noisePattern) // exactly 32 bytes: used as is
	ns := &noiseState{hash: h, salt: h}
	var err error
	if ns.aead, err = newGCM(h); err != nil {
		return nil, err
	}
	ns.authenticate(header)
	return ns, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}

func (ns *noiseState) authenticate(data []byte) {
	sum := sha256.Sum256(append(append([]byte{}, ns.hash...), data...))
	ns.hash = sum[:]
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ct := ns.aead.Seal(nil, nonce(ns.counter), plaintext, ns.hash)
	ns.counter++
	ns.authenticate(ct)
	return ct
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ns.aead.Open(nil, nonce(ns.counter), ciphertext, ns.hash)
	ns.counter++
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return pt, nil
}

func (ns *noiseState) mixDH(priv, pub [32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return err
	}
	write, read, err := expand(ns.salt, secret)
	if err != nil {
		return err
	}
	ns.salt = write
	ns.counter = 0
	ns.aead, err = newGCM(read)
	return err
}

// split derives the transport keys. The client writes with the first and
// reads with the second, so the server does the opposite.
func (ns *noiseState) split() (recv, send cipher.AEAD, err error) {
	clientWrite, clientRead, err := expand(ns.salt, nil)
	if err != nil {
		return nil, nil, err
	}
	if recv, err = newGCM(clientWrite); err != nil {
		return nil, nil, err
	}
	send, err = newGCM(clientRead)
	return recv, send, err
}

func expand(salt, secret []byte) (a, b []byte, err error) {
	r := hkdf.New(sha256.New, secret, salt, nil)
	a, b = make([]byte, 32), make([]byte, 32)
	if _, err = io.ReadFull(r, a); err == nil {
		_, err = io.ReadFull(r, b)
	}
	if err != nil {
		err = fmt.Errorf("noise key expansion: %w", err)
	}
	return a, b, err
}
