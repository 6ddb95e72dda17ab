package fakewa

import (
	"context"
	"net"
	"net/http"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Faults for reliability tests, beyond the ones in server.go: login
// failures that repeat, keepalive answers withheld from one device, a peer
// that accepts connections but never completes TLS or the websocket
// upgrade, and a count of the conflicts that mean two clients of one
// device ran at once.

// faultState is the Server's fault switches; every field is under s.mu.
type faultState struct {
	stop          chan struct{}              // closed by Close: held connections end
	changed       chan struct{}              // closed and replaced when a stall changes
	loginFailFor  map[types.JID]timedFailure // every login of a device fails until then
	pingsWithheld map[types.JID]time.Time    // a device's pings go unanswered until then
	stallTLS      time.Time                  // new connections get no TLS answer until then
	stallUpgrade  time.Time                  // websocket upgrades get no answer until then
	stalled       int                        // connections held by a stall now
	conflicts     map[types.JID]int          // older connections replaced while still open
}

type timedFailure struct {
	f     Failure
	until time.Time
}

func newFaultState() faultState {
	return faultState{
		stop:          make(chan struct{}),
		changed:       make(chan struct{}),
		loginFailFor:  map[types.JID]timedFailure{},
		pingsWithheld: map[types.JID]time.Time{},
		conflicts:     map[types.JID]int{},
	}
}

// FailLogins makes the next n logins of dev fail with f, as n calls of
// FailNextLogin would.
func (s *Server) FailLogins(dev types.JID, f Failure, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.loginFaults[dev] = append(s.loginFaults[dev], f)
	}
}

// FailLoginsFor makes every login of dev fail with f for d; d <= 0 ends it.
// Faults queued by FailNextLogin come first.
func (s *Server) FailLoginsFor(dev types.JID, f Failure, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.faults.loginFailFor, dev)
		return
	}
	s.faults.loginFailFor[dev] = timedFailure{f: f, until: time.Now().Add(d)}
}

// timedLoginFaultLocked is the failure FailLoginsFor set for dev, if it
// still lasts; s.mu is held.
func (s *Server) timedLoginFaultLocked(dev types.JID) *Failure {
	tf, ok := s.faults.loginFailFor[dev]
	if !ok {
		return nil
	}
	if !time.Now().Before(tf.until) {
		delete(s.faults.loginFailFor, dev)
		return nil
	}
	return &tf.f
}

// WithholdPings leaves the keepalive pings of dev unanswered for d, on
// whichever connection it has then; d <= 0 answers them again. Unlike
// SetPingsAnswered it touches no other device.
func (s *Server) WithholdPings(dev types.JID, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.faults.pingsWithheld, dev)
		return
	}
	s.faults.pingsWithheld[dev] = time.Now().Add(d)
}

// pingsWithheldLocked reports whether c's pings go unanswered now; s.mu is
// held.
func (s *Server) pingsWithheldLocked(c *conn) bool {
	if s.deafPings {
		return true
	}
	if c.dev == nil {
		return false
	}
	return time.Now().Before(s.faults.pingsWithheld[c.dev.jid])
}

// StallTLS makes the server a stalled peer for d: new TCP connections are
// accepted but their TLS handshake gets no answer, so a client's dial hangs
// until its own timeout or the end of the stall, when the server closes
// them. d <= 0 ends a stall now.
func (s *Server) StallTLS(d time.Duration) { s.setStall(&s.faults.stallTLS, d) }

// StallUpgrade is StallTLS one step later: TLS completes, but websocket
// upgrades get no answer for d, then HTTP 503. whatsmeow sets no timeout
// on this step of its dial.
func (s *Server) StallUpgrade(d time.Duration) { s.setStall(&s.faults.stallUpgrade, d) }

func (s *Server) setStall(until *time.Time, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*until = time.Now().Add(max(d, 0))
	close(s.faults.changed)
	s.faults.changed = make(chan struct{})
}

// Stalled is how many connections a stall holds now.
func (s *Server) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.stalled
}

// stalling reports whether the stall whose end until reads is on.
func (s *Server) stalling(until func() time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(until())
}

// holdWhileStalled waits until the stall whose end until reads is over, the
// server closes or ctx ends.
func (s *Server) holdWhileStalled(ctx context.Context, until func() time.Time) {
	s.mu.Lock()
	s.faults.stalled++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.faults.stalled--
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		left, changed := time.Until(until()), s.faults.changed
		s.mu.Unlock()
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-changed:
		case <-s.faults.stop:
		case <-ctx.Done():
		}
		t.Stop()
		select {
		case <-s.faults.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
	}
}

// stallListener holds the raw TCP connections that arrive during a TLS
// stall instead of handing them to the TLS server, and closes them when
// the stall ends.
type stallListener struct {
	net.Listener
	s *Server
}

func (l stallListener) Accept() (net.Conn, error) {
	s := l.s
	tlsUntil := func() time.Time { return s.faults.stallTLS }
	for {
		c, err := l.Listener.Accept()
		if err != nil || !s.stalling(tlsUntil) {
			return c, err
		}
		// Accept runs in the server's goroutine, which s.wg counts, so
		// Close has not started waiting yet.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.holdWhileStalled(context.Background(), tlsUntil)
			c.Close()
		}()
	}
}

// holdUpgrade leaves a websocket upgrade unanswered while an upgrade stall
// lasts. It reports whether it held the request, which is then refused.
func (s *Server) holdUpgrade(r *http.Request) bool {
	until := func() time.Time { return s.faults.stallUpgrade }
	if !s.stalling(until) {
		return false
	}
	s.holdWhileStalled(r.Context(), until)
	return true
}

// conflictGrace is how long a login waits for the device's older
// connection to close before it counts as a second client of the device:
// a client that reconnects closes its old socket first, but the server
// may notice that a moment after the new login arrives.
const conflictGrace = 2 * time.Second

// replaceOlder ends the older connection of a device that logged in again.
// One that is still open after conflictGrace belongs to a client still
// running: it is counted as a conflict and gets what WhatsApp sends then,
// <stream:error><conflict type="replaced"/>.
func (s *Server) replaceOlder(old *conn) {
	t := time.NewTimer(conflictGrace)
	defer t.Stop()
	select {
	case <-old.done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	s.faults.conflicts[old.dev.jid]++
	s.mu.Unlock()
	old.sendNode(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{},
		Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"}}}})
	old.closeAfterQueue()
}

// Conflicts is how many times a newer login of dev replaced an older
// connection that was still open: each one means two clients of the
// device ran at once.
func (s *Server) Conflicts(dev types.JID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.conflicts[dev]
}

// AllConflicts is Conflicts for every device that had one.
func (s *Server) AllConflicts() map[types.JID]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[types.JID]int, len(s.faults.conflicts))
	for d, n := range s.faults.conflicts {
		out[d] = n
	}
	return out
}

// ClearFaults turns every injected fault off: refusals, stalls, login
// failures, withheld pings, latency and media faults. Counted conflicts
// stay.
func (s *Server) ClearFaults() {
	s.SetLatency(0)
	s.media.clearFaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseCount, s.refuseUntil, s.deafPings = 0, time.Time{}, false
	clear(s.loginFaults)
	clear(s.faults.loginFailFor)
	clear(s.faults.pingsWithheld)
	s.faults.stallTLS, s.faults.stallUpgrade = time.Time{}, time.Time{}
	close(s.faults.changed)
	s.faults.changed = make(chan struct{})
}
