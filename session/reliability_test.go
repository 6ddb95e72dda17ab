package session

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// Paths found by the reliability review, each driven with the real
// whatsmeow client against the fake.

// WhatsApp's 515 "restart the stream" mid-session, with the reconnect
// refused once: the supervisor keeps reconnecting (whatsmeow tried once and
// gave up silently, leaving the row CONNECTED and the client offline).
func TestRestartStreamMidSessionReconnectsEvenIfTheFirstTryFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Shop")
	r.start()
	phone := r.link(id)
	dev := phone.LinkedDevices()[0].JID
	r.srv.RefuseConnections(1)
	if !r.srv.StreamError(dev, "515") {
		t.Fatal("the device was not connected")
	}
	waitUntil(t, 20*time.Second, "the device online again", func() bool { return r.srv.Online(dev) })
	r.waitSession(id, 20*time.Second, "CONNECTED", inState(tenant.StateConnected))
}

// The 515 right after pairing, with that reconnect refused: the link
// completes instead of leaving a dead QR code on the page.
func TestRestartStreamAfterPairingReconnectsEvenIfTheFirstTryFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Shop")
	r.start()
	ctx := context.Background()
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := r.waitSession(id, 20*time.Second, "QR", inState(tenant.StateQRReady))
	r.srv.RefuseConnections(1)
	if _, err := r.srv.NewPhone("").Scan(ctx, s.QRCode); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "CONNECTED", inState(tenant.StateConnected))
}

// Logins refused after a successful dial (<failure reason="503">) count
// as failed attempts: the cap applies and the session goes to ERROR
// instead of retrying forever on whatsmeow's uncounted linear delay.
func TestRefusedLoginsCountTowardsTheReconnectCap(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Shop")
	r.start()
	phone := r.link(id)
	dev := phone.LinkedDevices()[0].JID
	for range 3 * r.cfg.ReconnectMaxAttempts {
		r.srv.FailNextLogin(dev, fakewa.Failure{Reason: 503})
	}
	r.srv.Cut(dev)
	s := r.waitSession(id, 30*time.Second, "ERROR after the capped attempts", inState(tenant.StateError))
	if s.ErrorCode != tenant.ProblemReconnectFailed || s.ReconnectAttempts != r.cfg.ReconnectMaxAttempts {
		t.Fatalf("session %s/%s after %d attempts, want %s after %d", s.State, s.ErrorCode, s.ReconnectAttempts,
			tenant.ProblemReconnectFailed, r.cfg.ReconnectMaxAttempts)
	}
}

// A panic in the message pipeline leaves the message unacknowledged and
// the client reconnects, so WhatsApp delivers it again and it is handled;
// whatsmeow alone would swallow the panic and acknowledge a lost message.
func TestAPanicWhileHandlingAMessageGetsItDeliveredAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Shop")
	p := &panicFirstMessage{}
	r.pipeline = p
	r.start()
	phone := r.link(id)
	msgID, err := phone.NewContact("", "Ann").Send("hello")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the message handled after the panic", func() bool { return p.handled(msgID) })
	if w := r.worker(id); w.Restarts < 1 {
		t.Fatalf("the panic was not counted: %+v", w)
	}
}

// panicFirstMessage panics on the first message it is given and records
// the ones it handles after.
type panicFirstMessage struct {
	mu       sync.Mutex
	panicked bool
	ids      map[string]bool
}

func (p *panicFirstMessage) Attach(string, Sender) TenantPipeline { return p }
func (p *panicFirstMessage) Online(bool)                          {}
func (p *panicFirstMessage) Detach()                              {}

func (p *panicFirstMessage) HandleMessage(evt *events.Message) bool {
	if evt.Info.IsFromMe || evt.Message.GetConversation() == "" {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.panicked {
		p.panicked = true
		panic("injected panic in the pipeline")
	}
	if p.ids == nil {
		p.ids = map[string]bool{}
	}
	p.ids[evt.Info.ID] = true
	return true
}

func (p *panicFirstMessage) handled(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids[id]
}

// stallingConnector points clients at the fake, or, while stall is set,
// at a peer that accepts TCP connections and never answers the TLS
// handshake (a network that swallows packets).
type stallingConnector struct {
	srv   *fakewa.Server
	peer  net.Listener
	stall atomic.Bool
}

func newStallingConnector(t *testing.T, srv *fakewa.Server) *stallingConnector {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return &stallingConnector{srv: srv, peer: ln}
}

func (c *stallingConnector) Prepare(cli *whatsmeow.Client) error {
	if err := c.srv.Configure(cli); err != nil {
		return err
	}
	pool, err := fakewa.CertPoolFromPEM(c.srv.CACertPEM())
	if err != nil {
		return err
	}
	var d net.Dialer
	h := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if c.stall.Load() {
				return d.DialContext(ctx, network, c.peer.Addr().String())
			}
			return d.DialContext(ctx, network, c.srv.Addr())
		},
		TLSClientConfig: &tls.Config{ServerName: "web.whatsapp.com", RootCAs: pool, NextProtos: []string{"http/1.1"}},
	}}
	cli.SetWebsocketHTTPClient(h)
	cli.SetPreLoginHTTPClient(h)
	return nil
}

// A restart while a reconnect hangs in a handshake that never completes
// abandons that dial instead of waiting for it (it held Restart, and
// shutdown past its deadline), and the new client connects.
func TestRestartDoesNotWaitForADialThatHangs(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, func(c *Config) { c.DialTimeout = 3 * time.Second })
	conn := newStallingConnector(t, r.srv)
	r.connector = conn
	id := r.newTenant("Shop")
	r.start()
	phone := r.link(id)
	dev := phone.LinkedDevices()[0].JID
	conn.stall.Store(true)
	r.srv.Cut(dev)
	r.waitSession(id, 20*time.Second, "DISCONNECTED", inState(tenant.StateDisconnected))
	time.Sleep(500 * time.Millisecond) // the reconnect is dialing the silent peer

	conn.stall.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.m.Restart(ctx, id); err != nil {
		t.Fatalf("restart during a hanging dial: %v", err)
	}
	r.waitSession(id, 20*time.Second, "CONNECTED after the network is back", inState(tenant.StateConnected))
}

// A dial that hangs is abandoned after DialTimeout and counted as a
// failed attempt; the next one connects once the network is back.
func TestADialThatHangsIsAbandonedAndRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, func(c *Config) { c.DialTimeout = time.Second })
	conn := newStallingConnector(t, r.srv)
	r.connector = conn
	id := r.newTenant("Shop")
	r.start()
	phone := r.link(id)
	dev := phone.LinkedDevices()[0].JID
	conn.stall.Store(true)
	r.srv.Cut(dev)
	r.waitSession(id, 20*time.Second, "a failed attempt counted", func(s tenant.Link) bool { return s.ReconnectAttempts >= 1 })
	conn.stall.Store(false)
	r.waitSession(id, 20*time.Second, "CONNECTED after the network is back", inState(tenant.StateConnected))
}

// A reset while a pairing code is being asked for answers that request at
// once, instead of leaving it to its deadline.
func TestAResetAnswersAPairingRequestInFlight(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Shop")
	r.start()
	r.srv.SetLatency(2 * time.Second) // the pairing code is slow to come
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		_, err := r.m.LinkPhone(ctx, id, "+15551234567")
		answered <- err
	}()
	r.waitSession(id, 20*time.Second, "the link socket up", inState(tenant.StateQRReady))
	if err := r.m.Reset(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-answered:
		if err == nil {
			t.Fatal("the pairing request of the reset link got a code")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the pairing request was left waiting after the reset")
	}
}
