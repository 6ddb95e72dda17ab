package fakewa

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
)

// The faults of faults.go, and the 515 of server.go mid-session, each
// against a real whatsmeow client.

func isConnected(e any) bool    { _, ok := e.(*events.Connected); return ok }
func isDisconnected(e any) bool { _, ok := e.(*events.Disconnected); return ok }

// A 515 in the middle of a session makes whatsmeow log in again by itself,
// announcing only Connected: no Disconnected, so an app that waits for one
// never learns its client was offline for a moment.
func TestStreamError515MidSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	if !s.StreamError(jid, "515") {
		t.Fatal("device not online")
	}
	waitUntil(t, 20*time.Second, "a second Connected", func() bool { return tc.count(isConnected) >= 2 })
	if n := tc.count(isDisconnected); n != 0 {
		t.Fatalf("%d Disconnected events after a 515", n)
	}
	// The new stream carries messages. Sent by the client, so the test's
	// Disconnect comes after its send: whatsmeow's frame socket races a
	// send from another goroutine against Disconnect, which -race reports.
	text := "after the restart"
	if _, err := tc.cli.SendMessage(context.Background(), ann.JID(), &waE2EMessage{Conversation: &text}); err != nil {
		t.Fatal(err)
	}
	if got, err := ann.Next(10 * time.Second); err != nil || got.Text != text {
		t.Fatalf("got %q (%v), want %q", got.Text, err, text)
	}
	if n := s.Conflicts(jid); n != 0 {
		t.Fatalf("a client that restarts its stream counted as %d conflicts", n)
	}
}

// FailLogins answers the next n logins <failure reason="503">: whatsmeow
// takes each for a dropped connection and reconnects, and the login after
// them works.
func TestFailLoginsRepeatsForNLogins(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	s.FailLogins(jid, Failure{Reason: 503}, 2)
	s.Cut(jid)
	waitUntil(t, 40*time.Second, "connected after two failed logins", func() bool { return tc.count(isConnected) >= 2 })
	// One Disconnected for the cut, one for each failed login.
	if n := tc.count(isDisconnected); n != 3 {
		t.Fatalf("%d Disconnected events, want 3", n)
	}
}

// FailLoginsFor fails every login for a while: the device is back only
// after it.
func TestFailLoginsForADuration(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	const d = 4 * time.Second
	start := time.Now()
	s.FailLoginsFor(jid, Failure{Reason: 503}, d)
	s.Cut(jid)
	waitUntil(t, 40*time.Second, "connected after the failures", func() bool { return tc.count(isConnected) >= 2 })
	if took := time.Since(start); took < d {
		t.Fatalf("logged in after %s, inside the %s of failures", took, d)
	}
	if n := tc.count(isDisconnected); n < 2 {
		t.Fatalf("%d Disconnected events, want the cut's and at least one failed login's", n)
	}
}

// During a TLS stall a connection is accepted and then nothing: the
// handshake hangs until the stall ends, when the server closes it.
func TestStallTLSHoldsHandshakesUntilItEnds(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	handshake := func() chan error {
		done := make(chan error, 1)
		go func() {
			raw, err := net.Dial("tcp", s.Addr())
			if err != nil {
				done <- err
				return
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(20 * time.Second))
			done <- tls.Client(raw, &tls.Config{ServerName: "web.whatsapp.com", RootCAs: s.ca.pool}).Handshake()
		}()
		return done
	}
	s.StallTLS(time.Hour)
	held := handshake()
	waitUntil(t, 5*time.Second, "the connection held", func() bool { return s.Stalled() == 1 })
	select {
	case err := <-held:
		t.Fatalf("the handshake ended during the stall: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.ClearFaults()
	select {
	case err := <-held:
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("the held handshake ended with %v, want the server's close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held connection outlived the stall")
	}
	if err := <-handshake(); err != nil {
		t.Fatalf("handshake after the stall: %v", err)
	}
	if n := s.Stalled(); n != 0 {
		t.Fatalf("%d connections still held", n)
	}
}

// A whatsmeow client cut off during a TLS stall gets back only after it.
func TestStallTLSDelaysTheReconnect(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	const d = 2 * time.Second
	start := time.Now()
	s.StallTLS(d)
	s.Cut(jid)
	waitUntil(t, 5*time.Second, "the reconnect held", func() bool { return s.Stalled() == 1 })
	waitUntil(t, 30*time.Second, "connected after the stall", func() bool { return tc.count(isConnected) >= 2 })
	if took := time.Since(start); took < d {
		t.Fatalf("reconnected after %s, inside the %s stall", took, d)
	}
}

// During an upgrade stall TLS completes but the websocket upgrade gets no
// answer; at the end of it, a 503.
func TestStallUpgradeHoldsTheUpgrade(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	const d = time.Second
	s.StallUpgrade(d)
	start := time.Now()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://web.whatsapp.com/ws/chat", nil)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Error(err)
			done <- nil
			return
		}
		resp.Body.Close()
		done <- resp
	}()
	waitUntil(t, 5*time.Second, "the upgrade held", func() bool { return s.Stalled() == 1 })
	resp := <-done
	if resp == nil {
		return
	}
	if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || took < d {
		t.Fatalf("status %d after %s, want 503 after the %s stall", resp.StatusCode, took, d)
	}
}

// A second client of one device logging in while the first is still
// connected is a conflict: counted, and the first gets "replaced". A
// client that reconnects after closing its socket, or after a cut, is not.
func TestConflictsCountTwoClientsOfOneDevice(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	first := newClient(t, s, "")
	jid := pair(t, first, phone)

	s.Cut(jid)
	waitUntil(t, 20*time.Second, "the reconnect after the cut", func() bool { return first.count(isConnected) >= 2 })
	first.cli.Disconnect()
	again := newClient(t, s, first.dbPath)
	if err := again.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](again, 10*time.Second, nil)
	if n := s.Conflicts(jid); n != 0 {
		t.Fatalf("one client at a time counted as %d conflicts", n)
	}

	second := newClient(t, s, first.dbPath)
	if err := second.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](second, 20*time.Second, nil)
	waitFor[*events.StreamReplaced](again, 10*time.Second, nil)
	if n := s.Conflicts(jid); n != 1 {
		t.Fatalf("two clients at once counted as %d conflicts, want 1", n)
	}
	if all := s.AllConflicts(); len(all) != 1 || all[jid] != 1 {
		t.Fatalf("AllConflicts %v", all)
	}
}
