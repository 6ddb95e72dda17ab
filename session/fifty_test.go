package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
)

func TestFiftyTenantsAtOnceAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	before := rigtest.ClientGoroutines()
	// 50 tenants beating every 200ms under the race detector keep
	// SQLite's one writer so busy that a lease renewal, handed the
	// connection after a random number of other waiters, can wait longer
	// than the default 10 s before the watchdog stops every session; this
	// test is about connecting and stopping, so leases last longer here.
	r := newRig(t, fakewa.Options{}, func(c *Config) { c.LeaseValid = time.Minute })
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.newTenant("Many " + string(rune('A'+i%26)) + string(rune('a'+i/26)))
	}
	r.start()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.linkWithin(id, 120*time.Second)
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.m.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with %d connected: %v", n, err)
	}
	t.Logf("shutdown of %d connected tenants took %s", n, time.Since(start))
	for _, id := range ids {
		if w := r.worker(id); w.Status != tenant.WorkerStopped {
			t.Fatalf("worker %s after shutdown", w.Status)
		}
	}
	before.WaitNoneNew(t, 5*time.Second)
}
