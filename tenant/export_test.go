package tenant

import "time"

// SetNow replaces the store's clock, so tests in package tenant_test can
// reach expiry and ordering by moving time instead of sleeping.
func SetNow(s *Store, now func() time.Time) { s.now = now }
