package fakewa

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"wabot/session/internal/signallog"
)

// Options tune a Server. The zero value is ready to use.
type Options struct {
	// Trace, when set, receives every node in both directions as XML.
	Trace io.Writer
	// QRRefs is how many QR references a pairing connection gets (WhatsApp
	// sends 6: about 160 s of codes). Fewer make expiry quick in tests.
	QRRefs int
	// Addr is the address to listen on; default 127.0.0.1:0.
	Addr string
}

// Server is a fake WhatsApp server: a TLS websocket listener that speaks
// the Noise protocol and WhatsApp's binary XML to real whatsmeow clients.
type Server struct {
	opts      Options
	latency   atomic.Int64 // nanoseconds added before each frame to a client
	ln        net.Listener
	http      *http.Server
	static    *keys.KeyPair
	certChain []byte
	ca        *testCA
	wg        sync.WaitGroup
	traceMu   sync.Mutex

	mu          sync.Mutex
	closed      bool
	conns       map[*conn]struct{}
	phones      map[string]*Phone        // by phone number
	devices     map[types.JID]*device    // by device JID (number:device)
	contacts    map[string]*Contact      // by contact number
	lidContacts map[string]*Contact      // by contact LID user, see lid.go
	groups      map[string][]types.JID   // group id → members
	qrRefs      map[string]*registration // QR reference → pairing connection
	codePairs   map[string]*codePairing  // phone number → pending code pairing
	loginFaults map[types.JID][]Failure  // next logins of a device that fail
	refuseCount int                      // connections still to refuse
	refuseUntil time.Time                // refuse connections until then
	deafPings   bool                     // leave keepalive pings unanswered
	nextNumber  int                      // for generated phone numbers
	onSent      func(Sent)               // observer of decrypted outgoing messages
	faults      faultState               // more faults, see faults.go
	media       *mediaStore              // uploaded blobs, see media.go
}

// NewServer starts a fake WhatsApp server on loopback.
func NewServer(opts Options) (*Server, error) {
	signallog.Install()
	if opts.QRRefs <= 0 {
		opts.QRRefs = 6
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	ca, err := processCA()
	if err != nil {
		return nil, fmt.Errorf("fakewa: making a test CA: %w", err)
	}
	root := rootKey()
	static := keys.NewKeyPair()
	chain, err := certChain(root, static)
	if err != nil {
		return nil, fmt.Errorf("fakewa: signing the certificate chain: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("fakewa: listening: %w", err)
	}
	s := &Server{
		opts:        opts,
		ln:          ln,
		static:      static,
		certChain:   chain,
		ca:          ca,
		conns:       map[*conn]struct{}{},
		phones:      map[string]*Phone{},
		devices:     map[types.JID]*device{},
		contacts:    map[string]*Contact{},
		lidContacts: map[string]*Contact{},
		groups:      map[string][]types.JID{},
		qrRefs:      map[string]*registration{},
		codePairs:   map[string]*codePairing{},
		loginFaults: map[types.JID][]Failure{},
		nextNumber:  1,
		faults:      newFaultState(),
		media:       newMediaStore(),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/chat", s.serveWebsocket)
	mux.HandleFunc("POST /mms/{type}/{token}", s.serveUpload)
	mux.HandleFunc("GET /v/", s.serveDownload)
	s.http = &http.Server{
		Handler:   mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.tls}, NextProtos: []string{"http/1.1"}},
		ErrorLog:  nil,
	}
	tlsLn := tls.NewListener(stallListener{Listener: ln, s: s}, s.http.TLSConfig)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.http.Serve(tlsLn)
	}()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CACertPEM is the certificate clients must trust to reach this server.
func (s *Server) CACertPEM() []byte { return s.ca.certPEM }

// RootKey is the public key that signs this server's Noise certificate;
// clients in another process install it with UseRootKey.
func (s *Server) RootKey() [32]byte { return *rootKey().Pub }

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.faults.stop)
	conns := s.connsLocked()
	s.mu.Unlock()
	err := s.http.Close()
	for _, c := range conns {
		c.close(false)
	}
	s.wg.Wait()
	return err
}

// OnSent registers fn to observe every message a linked device sends, as
// the receiving contact decrypted it. It runs on the connection's goroutine
// and must not block.
func (s *Server) OnSent(fn func(Sent)) {
	s.mu.Lock()
	s.onSent = fn
	s.mu.Unlock()
}

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if s.holdUpgrade(r) || s.refuseConnection() {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 24)
	c := newConn(s, ws)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.CloseNow()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if c.dev != nil && c.dev.conn == c {
			c.dev.conn = nil
		}
		if c.reg != nil {
			for _, ref := range c.reg.refs {
				delete(s.qrRefs, ref)
			}
			for n, cp := range s.codePairs {
				if cp.reg == c.reg {
					delete(s.codePairs, n)
				}
			}
		}
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.run()
}

func (s *Server) refuseConnection() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuseCount > 0 {
		s.refuseCount--
		return true
	}
	return time.Now().Before(s.refuseUntil)
}

func (s *Server) trace(dir string, who string, n *waBinary.Node) {
	if s.opts.Trace == nil {
		return
	}
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	fmt.Fprintf(s.opts.Trace, "%s %s %s\n", time.Now().Format("15:04:05.000"), dir, who)
	fmt.Fprintln(s.opts.Trace, n.XMLString())
}

// Client wiring.

// HTTPClient returns an HTTP client that reaches this server whatever
// host it is asked for and trusts the server's test certificate. HTTP/2 is
// off: the websocket library needs HTTP/1.1.
func (s *Server) HTTPClient() *http.Client {
	return DialClient(s.Addr(), s.ca.pool)
}

// DialClient is HTTPClient for a server in another process: every dial
// goes to addr, and pool holds the certificate to trust (see
// CertPoolFromPEM).
func DialClient(addr string, pool *x509.CertPool) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{ServerName: "web.whatsapp.com", RootCAs: pool, NextProtos: []string{"http/1.1"}},
		ForceAttemptHTTP2: false,
		// As http.DefaultTransport, which whatsmeow's own clients use: a
		// peer that never finishes TLS fails the dial after 10 s.
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// CertPoolFromPEM parses a CA certificate printed by a standalone server.
func CertPoolFromPEM(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("fakewa: no certificate in PEM")
	}
	return pool, nil
}

// Configure points cli at this server: its websocket, pre-login and media
// HTTP clients dial the listener and trust the test CA, and the process's
// root key is installed into whatsmeow (once per process).
func (s *Server) Configure(cli *whatsmeow.Client) error {
	if err := installRootKey(*rootKey().Pub); err != nil {
		return err
	}
	h := s.HTTPClient()
	cli.SetWebsocketHTTPClient(h)
	cli.SetPreLoginHTTPClient(h)
	cli.SetMediaHTTPClient(h)
	return nil
}

// Prepare is Configure under the name session.Connector asks for: it makes
// the server a session.Connector, so a Manager (or app.WithConnector) takes
// the server itself.
func (s *Server) Prepare(cli *whatsmeow.Client) error { return s.Configure(cli) }

// Faults.

// Failure is a connect failure a device gets at its next login.
type Failure struct {
	Reason int // 401 logged out, 402 temporary ban, 405 client outdated, 503 unavailable
	Code   int // ban code (402)
	Expire time.Duration
}

// FailNextLogin makes the next login of dev answer <failure> with f and
// close the socket, as WhatsApp does.
func (s *Server) FailNextLogin(dev types.JID, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginFaults[dev] = append(s.loginFaults[dev], f)
}

// RefuseConnections answers the next n websocket upgrades with HTTP 503.
func (s *Server) RefuseConnections(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseCount = n
}

// RefuseFor answers every websocket upgrade with HTTP 503 for d.
func (s *Server) RefuseFor(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseUntil = time.Now().Add(d)
}

// SetLatency delays every frame sent to clients by d.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// SetPingsAnswered turns keepalive answers on or off.
func (s *Server) SetPingsAnswered(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deafPings = !on
}

// connOf is dev's current connection, or nil.
func (s *Server) connOf(dev types.JID) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[dev]; d != nil {
		return d.conn
	}
	return nil
}

// connsLocked lists the open connections; s.mu is held.
func (s *Server) connsLocked() []*conn {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Cut drops the connection of dev abruptly, like a network failure. It
// reports whether the device was connected.
func (s *Server) Cut(dev types.JID) bool {
	c := s.connOf(dev)
	if c == nil {
		return false
	}
	c.close(false)
	return true
}

// CutAll drops every connection.
func (s *Server) CutAll() {
	s.mu.Lock()
	conns := s.connsLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.close(false)
	}
}

// Replace ends dev's stream with a "replaced" conflict, as when the same
// session is opened elsewhere.
func (s *Server) Replace(dev types.JID) bool {
	return s.streamError(dev, "", "replaced")
}

// StreamError ends dev's stream with <stream:error code=code>.
func (s *Server) StreamError(dev types.JID, code string) bool {
	return s.streamError(dev, code, "")
}

func (s *Server) streamError(dev types.JID, code, conflict string) bool {
	c := s.connOf(dev)
	if c == nil {
		return false
	}
	n := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{}}
	if code != "" {
		n.Attrs["code"] = code
	}
	if conflict != "" {
		n.Content = []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": conflict}}}
	}
	c.sendNode(n)
	c.closeAfterQueue()
	return true
}

// Online reports whether dev has a logged-in connection.
func (s *Server) Online(dev types.JID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[dev]
	return d != nil && d.conn != nil && d.conn.loggedIn.Load()
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

var errClosed = errors.New("fakewa: connection closed")

// Unacknowledged is how many messages delivered to dev the client has not
// acknowledged yet; tests wait for 0 before closing a client, since
// whatsmeow races with itself when it closes while sending a receipt.
func (s *Server) Unacknowledged(dev types.JID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[dev]; d != nil {
		return len(d.pending)
	}
	return 0
}
