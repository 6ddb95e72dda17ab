// Package fakewatest starts the fake WhatsApp server for tests and links
// tenants to it the way a person does: wait for the QR code, scan it with
// a new phone, wait until the tenant is connected. It names no session
// type, so session's own tests can use it too.
package fakewatest

import (
	"context"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// NewServer starts a fake WhatsApp server on loopback, closed when the
// test ends (after anything started later, such as the app using it).
func NewServer(t testing.TB, opts fakewa.Options) *fakewa.Server {
	t.Helper()
	srv, err := fakewa.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Links reads a tenant's link row; *tenant.Store is one.
type Links interface {
	LinkOf(ctx context.Context, tenantID string) (tenant.Link, error)
}

// Linker starts a link attempt; *session.Manager is one.
type Linker interface {
	Link(ctx context.Context, tenantID string) error
}

// WaitSession polls the tenant's session row until cond holds, failing t
// after timeout with the state the row was left in.
func WaitSession(t testing.TB, st Links, id string, timeout time.Duration, what string, cond func(tenant.Link) bool) tenant.Link {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := st.LinkOf(context.Background(), id)
		if err == nil && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("tenant %s: timed out waiting for %s; reading its session: %v", id, what, err)
			}
			t.Fatalf("tenant %s: timed out waiting for %s; session is %s (%s: %s)", id, what, s.State, s.ErrorCode, s.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// InState is the WaitSession condition "the session is in state".
func InState(state tenant.LinkState) func(tenant.Link) bool {
	return func(s tenant.Link) bool { return s.State == state }
}

// Link starts a link attempt for the tenant through m, scans its first QR
// code with a new phone of srv, and waits until the tenant is CONNECTED;
// every step gets at most timeout. The phone is the tenant's from then on.
func Link(t testing.TB, srv *fakewa.Server, m Linker, st Links, id string, timeout time.Duration) *fakewa.Phone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := WaitSession(t, st, id, timeout, "a QR code", InState(tenant.StateQRReady))
	phone := srv.NewPhone("")
	if _, err := phone.Scan(ctx, s.QRCode); err != nil {
		t.Fatal(err)
	}
	WaitSession(t, st, id, timeout, "CONNECTED", InState(tenant.StateConnected))
	return phone
}
