package session

import "sync"

// subscribers signals in-process readers of a tenant's session and worker
// rows after the supervisor writes them, so a live page re-reads a row
// when it changed instead of polling the database.
type subscribers struct {
	mu       sync.Mutex
	byTenant map[string]map[chan struct{}]struct{}
}

// Subscribe returns a channel that is signalled after the tenant's session
// or worker row is written, so a page showing them can re-read them then
// instead of polling. One signal may stand for several writes. Call
// unsubscribe when done; the channel is never closed.
func (m *Manager) Subscribe(tenantID string) (changed <-chan struct{}, unsubscribe func()) {
	return m.subscribers.add(tenantID)
}

func (b *subscribers) add(tenantID string) (<-chan struct{}, func()) {
	// Capacity 1: a signal waits for a reader that is busy, and notify
	// never blocks the supervisor.
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byTenant == nil {
		b.byTenant = map[string]map[chan struct{}]struct{}{}
	}
	set := b.byTenant[tenantID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		b.byTenant[tenantID] = set
	}
	set[ch] = struct{}{}
	return ch, func() { b.remove(tenantID, ch) }
}

func (b *subscribers) remove(tenantID string, ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.byTenant[tenantID]
	delete(set, ch)
	if len(set) == 0 {
		delete(b.byTenant, tenantID)
	}
}

func (b *subscribers) notify(tenantID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.byTenant[tenantID] {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending: the reader re-reads once for both
		}
	}
}

// tenants lists the tenants someone subscribed to.
func (b *subscribers) tenants() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.byTenant))
	for id := range b.byTenant {
		out = append(out, id)
	}
	return out
}
