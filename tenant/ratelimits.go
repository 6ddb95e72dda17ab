package tenant

import (
	"context"
	"fmt"
	"time"
)

// Hit counts one attempt for key under the limit named bucket: at most
// limit in each window, windows starting at a key's first attempt after
// the last one ended. It returns whether the attempt is within the limit
// and, when not, how long until its window ends. Every instance on the
// database shares the count.
func (s *Store) Hit(ctx context.Context, bucket, key string, limit int, window time.Duration) (ok bool, wait time.Duration, err error) {
	now := s.now()
	var hits, start int64
	err = s.db.write.QueryRowContext(ctx, `INSERT INTO rate_limits (bucket, key, window_start, hits) VALUES (?, ?, ?, 1)
		ON CONFLICT (bucket, key) DO UPDATE SET
			hits = CASE WHEN rate_limits.window_start <= ? THEN 1 ELSE rate_limits.hits + 1 END,
			window_start = CASE WHEN rate_limits.window_start <= ? THEN excluded.window_start ELSE rate_limits.window_start END
		RETURNING hits, window_start`,
		bucket, key, ms(now), ms(now.Add(-window)), ms(now.Add(-window))).Scan(&hits, &start)
	if err != nil {
		return false, 0, fmt.Errorf("counting a %s attempt: %w", bucket, err)
	}
	if hits <= int64(limit) {
		return true, 0, nil
	}
	return false, fromMS(start).Add(window).Sub(now), nil
}

// SweepRateLimits removes windows that ended before now minus longest.
func (s *Store) SweepRateLimits(ctx context.Context, longest time.Duration) error {
	if _, err := s.db.write.ExecContext(ctx, `DELETE FROM rate_limits WHERE window_start < ?`, ms(s.now().Add(-longest))); err != nil {
		return fmt.Errorf("removing old rate-limit windows: %w", err)
	}
	return nil
}
