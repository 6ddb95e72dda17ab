// Package fakewa is a WhatsApp server on loopback for tests and the demo
// build: the real, unmodified whatsmeow client connects to it over TLS and
// a Noise handshake, pairs by QR code or phone code, logs in, and exchanges
// Signal-encrypted messages with simulated contacts. Faults (cut
// connections, refusals, unlinking, bans, outdated clients, latency) are
// injected on demand.
//
// It is never linked into the production binary: only tests and the
// fakewa build tag import it.
package fakewa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// rootKey is this process's stand-in for WhatsApp's certificate root: every
// server in the process signs its Noise certificate chain under it, and it
// is installed into whatsmeow.WACertPubKey once.
var rootKey = sync.OnceValue(func() *keys.KeyPair { return keys.NewKeyPair() })

var (
	installOnce sync.Once
	installed   [32]byte
	installMu   sync.Mutex
)

// installRootKey puts pub into whatsmeow.WACertPubKey the first time it is
// called in the process. whatsmeow reads that variable from its own
// goroutines, so it is never changed again; a second, different key is an
// error.
func installRootKey(pub [32]byte) error {
	installMu.Lock()
	defer installMu.Unlock()
	installOnce.Do(func() {
		whatsmeow.WACertPubKey = pub
		installed = pub
	})
	if installed != pub {
		return fmt.Errorf("fakewa: a different root key is already installed in this process")
	}
	return nil
}

// testCA is a self-signed certificate for web.whatsapp.com and loopback,
// shared by every server of the process.
type testCA struct {
	certPEM []byte
	tls     tls.Certificate
	pool    *x509.CertPool
}

var processCA = sync.OnceValues(func() (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fakewa test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"web.whatsapp.com", "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		tls:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		pool:    pool,
	}, nil
})

// certChain builds the Noise certificate chain that proves static belongs
// to a server vouched for by root: an intermediate signed by the root, and
// a leaf for static signed by the intermediate.
func certChain(root *keys.KeyPair, static *keys.KeyPair) ([]byte, error) {
	intermediate := keys.NewKeyPair()
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(1),
		IssuerSerial: proto.Uint32(0),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(uint64(time.Now().Add(-time.Hour).Unix())),
		NotAfter:     proto.Uint64(uint64(time.Now().Add(24 * 365 * time.Hour).Unix())),
	})
	if err != nil {
		return nil, err
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(2),
		IssuerSerial: proto.Uint32(1),
		Key:          static.Pub[:],
	})
	if err != nil {
		return nil, err
	}
	interSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*root.Priv), interDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*intermediate.Priv), leafDetails)
	return proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: interSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
}
