package session

import (
	"context"
	"sync"
	"testing"
	"time"

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
