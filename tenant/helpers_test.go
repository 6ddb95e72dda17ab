package tenant_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// t0 is where every test clock starts: UTC and whole milliseconds, as the
// store keeps times, so round trips compare equal.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a store's time, moved by the test that owns it.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// openStore returns a migrated store over a file in t.TempDir() whose
// clock stands at t0 until the test moves it.
func openStore(t *testing.T) (*tenant.Store, *clock) {
	t.Helper()
	st := tenanttest.Open(t)
	c := &clock{now: t0}
	tenant.SetNow(st, c.Now)
	return st, c
}

// newTenant creates a user with email and an active tenant for them.
func newTenant(t *testing.T, st *tenant.Store, email, name string) (tenant.User, tenant.Tenant) {
	t.Helper()
	ctx := context.Background()
	u, err := st.EnsureUser(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, u.ID, name, true)
	if err != nil {
		t.Fatal(err)
	}
	u.TenantID = tn.ID
	return u, tn
}

// storeIn stores an inbound message that must be new.
func storeIn(t *testing.T, st *tenant.Store, tenantID string, in tenant.Inbound) int64 {
	t.Helper()
	if in.Status == "" {
		in.Status = tenant.MsgReceived
	}
	if in.Kind == "" {
		in.Kind = "text"
	}
	id, dup, err := st.StoreInbound(context.Background(), tenantID, in)
	if err != nil || dup || id <= 0 {
		t.Fatalf("StoreInbound(%+v) = %d, dup %v, %v; want a new id", in, id, dup, err)
	}
	return id
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code tenant.Code) {
	t.Helper()
	if got := tenant.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

// wantNotFound fails the test unless err is tenant.ErrNotFound itself.
func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("got %v, want tenant.ErrNotFound", err)
	}
}

func ids[T any](xs []T, id func(T) int64) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}
