package tenant_test

import (
	"context"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// Two instances on one database share a limit: what one counted, the
// other sees; a new window starts once the last one ended.
func TestHitsAreSharedAndWindowsEnd(t *testing.T) {
	st, c := openStore(t)
	other := tenanttest.Reopen(t, st)
	tenant.SetNow(other, c.Now)
	ctx := context.Background()
	hit := func(s *tenant.Store, key string) (bool, time.Duration) {
		t.Helper()
		ok, wait, err := s.Hit(ctx, "api", key, 3, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok, wait
	}
	for i, s := range []*tenant.Store{st, other, st} {
		if ok, _ := hit(s, "key1"); !ok {
			t.Fatalf("attempt %d refused within the limit", i+1)
		}
	}
	c.Advance(20 * time.Second)
	if ok, wait := hit(other, "key1"); ok || wait != 40*time.Second {
		t.Fatalf("the fourth attempt on the other instance: ok %v, wait %s; want refused for 40s", ok, wait)
	}
	if ok, _ := hit(st, "key2"); !ok {
		t.Fatal("another key is refused")
	}
	c.Advance(40 * time.Second)
	if ok, _ := hit(st, "key1"); !ok {
		t.Fatal("refused after the window ended")
	}
	if err := st.SweepRateLimits(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
}
