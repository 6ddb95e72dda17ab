package session

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay before retry number attempt (1, 2, ...): base
// doubled each time, capped at limit, then jittered over [d/2, d) so tenants
// that failed together do not retry together.
func Backoff(base, limit time.Duration, attempt int) time.Duration {
	d := min(base<<min(max(attempt-1, 0), 20), limit)
	return jitter(d)
}

// jitter spreads d over [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
