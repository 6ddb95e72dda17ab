package portal

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"wabot/tenant"
)

// limiter says whether one more attempt for key is allowed, and if not,
// how long until it will be.
type limiter interface {
	allow(key string) (ok bool, wait time.Duration)
	// max is how many attempts a window allows.
	max() int
}

func (l *sharedLimiter) max() int { return l.limit }
func (l *rateLimiter) max() int   { return l.limit }

// sharedLimiter counts in the database, so every instance on a shared
// PostgreSQL database draws from one budget: a client cannot multiply
// its rate by the number of instances behind the load balancer.
type sharedLimiter struct {
	st     *tenant.Store
	log    *slog.Logger
	bucket string
	limit  int
	window time.Duration
}

func (l *sharedLimiter) allow(key string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok, wait, err := l.st.Hit(ctx, l.bucket, key, l.limit, l.window)
	if err != nil {
		// A limit is a guard, not a gate: the database being slow must not
		// refuse every request.
		l.log.Warn("rate limit not counted", "limit", l.bucket, "err", err)
		return true, 0
	}
	return ok, wait
}

// rateLimiter counts attempts per key (a client network, a tenant, a phone
// number) in fixed windows: enough to stop guessing and flooding.
type rateLimiter struct {
	limit  int
	window time.Duration
	// maxKeys bounds the map: past it, new keys share one bucket, so a
	// flood of fresh addresses costs neither memory nor the others' budget.
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	hits      map[string]*windowCount
	nextSweep time.Time
}

// windowCount is one key's attempts in its current window.
type windowCount struct {
	start time.Time
	n     int
}

// overflowKey is the bucket shared by keys that arrive while the map is full.
const overflowKey = "\x00overflow"

func newRateLimiter(limit int, per time.Duration) *rateLimiter {
	return &rateLimiter{limit: limit, window: per, maxKeys: 10000, now: time.Now, hits: map[string]*windowCount{}}
}

// allow counts one attempt for key and says whether it is within the
// limit; when it is not, wait is how long until the key's window ends.
func (l *rateLimiter) allow(key string) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Expired windows are swept at most once per window, so the cost of a
	// sweep is spread over a window's worth of calls instead of paid by each.
	if !now.Before(l.nextSweep) {
		for k, count := range l.hits {
			if now.Sub(count.start) >= l.window {
				delete(l.hits, k)
			}
		}
		l.nextSweep = now.Add(l.window)
	}
	count := l.hits[key]
	if count == nil && len(l.hits) >= l.maxKeys {
		key = overflowKey
		count = l.hits[key]
	}
	if count == nil || now.Sub(count.start) >= l.window {
		count = &windowCount{start: now}
		l.hits[key] = count
	}
	count.n++
	if count.n <= l.limit {
		return true, 0
	}
	return false, count.start.Add(l.window).Sub(now)
}

// clientKey is the rate-limit key of a client address: the address itself
// for IPv4, its /64 for IPv6, since one subscriber commonly holds a whole
// /64 and could otherwise rotate through it for fresh budgets.
func clientKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	prefix, _ := addr.Prefix(64)
	return prefix.String()
}

// retryAfter renders a wait as a Retry-After header: whole seconds,
// rounded up, at least one.
func retryAfter(wait time.Duration) string {
	secs := int((wait + time.Second - 1) / time.Second)
	return strconv.Itoa(max(secs, 1))
}
