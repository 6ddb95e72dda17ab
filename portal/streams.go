package portal

import (
	"context"
	"sync"

	"wabot/tenant"
)

// streamAllowed re-reads the browser session behind token from the store:
// it must still exist and sign in userID, who must still be a member of
// tenantID, an owner when ownerOnly: a removed member's or demoted owner's
// open stream ends at the next check. Errors end the stream too; the page
// reconnects and is checked afresh.
func (p *Portal) streamAllowed(ctx context.Context, token, userID, tenantID string, ownerOnly bool) bool {
	if token == "" {
		return false
	}
	// Loading into a context without session data reads the store, not
	// the copy this request loaded when it began.
	fresh, err := p.browser.Load(detachedValues{ctx}, token)
	if err != nil || p.browser.GetString(fresh, sessionUserKey) != userID {
		return false
	}
	role, err := p.store.RoleOf(ctx, tenantID, userID)
	if err != nil || (ownerOnly && role != tenant.RoleOwner) {
		return false
	}
	_, err = p.store.TenantByID(ctx, tenantID)
	return err == nil
}

// detachedValues keeps a context's deadline and cancellation but none of
// its values.
type detachedValues struct{ context.Context }

func (detachedValues) Value(any) any { return nil }

// streamCounter counts each user's open live streams.
type streamCounter struct {
	mu   sync.Mutex
	open map[string]int
}

// acquire takes one of the user's max streams, or reports there is none.
func (s *streamCounter) acquire(userID string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[userID] >= max {
		return false
	}
	if s.open == nil {
		s.open = make(map[string]int)
	}
	s.open[userID]++
	return true
}

func (s *streamCounter) release(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[userID]--; s.open[userID] <= 0 {
		delete(s.open, userID)
	}
}
