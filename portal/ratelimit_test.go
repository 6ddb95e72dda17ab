package portal

import (
	"fmt"
	"testing"
	"time"
)

func TestRateLimiterWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(2, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 2 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("attempt %d refused within the limit", i+1)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait != time.Minute {
		t.Fatalf("third attempt: ok=%v wait=%v, want refused for a minute", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another key shares the first one's budget")
	}
	now = now.Add(time.Minute)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("a new window still refuses")
	}
}

func TestRateLimiterBoundsKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(3, time.Minute)
	l.maxKeys = 100
	l.now = func() time.Time { return now }
	for i := range 1000 {
		l.allow(fmt.Sprint("client-", i))
	}
	if n := len(l.hits); n > l.maxKeys+1 {
		t.Fatalf("limiter holds %d keys after a flood of fresh ones, want at most %d", n, l.maxKeys+1)
	}
	// Keys seen before the flood keep their own budget.
	if ok, _ := l.allow("client-1"); !ok {
		t.Fatal("an early key lost its budget to the flood")
	}
	// After the window the flood is swept away and new keys get their own bucket.
	now = now.Add(time.Minute)
	l.allow("fresh")
	if _, own := l.hits["fresh"]; !own {
		t.Fatal("expired keys were not swept")
	}
}

func TestClientKeyGroupsIPv6By64(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"192.0.2.1", "192.0.2.2", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
	} {
		if got := clientKey(tc.a) == clientKey(tc.b); got != tc.same {
			t.Errorf("clientKey(%s) == clientKey(%s) is %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
