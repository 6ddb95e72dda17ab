package session

import (
	"context"
	"sync"

	"go.mau.fi/whatsmeow/store"
)

// whatsmeow encrypts a send by loading the Signal sessions, encrypting and
// saving them, holding only its own send lock; decrypting an incoming
// message loads, advances and saves the same sessions in the decryption
// transaction, under no lock a send takes. The two interleaved, the later
// save overwrites the earlier's ratchet step and the contact sees a reused
// message counter it cannot decrypt ("old counter"). It showed right after
// a tenant moved between instances, when the new owner answers a burst of
// redelivered messages while it decrypts more. So the supervisor's sends
// and the device's decryptions take one lock.

// signalLocked is a device's event buffer whose decryption transactions
// take mu, the lock the supervisor's sends take.
type signalLocked struct {
	store.EventBuffer
	mu *sync.Mutex
}

func (b signalLocked) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.EventBuffer.DoDecryptionTxn(ctx, fn)
}

// lockDecryption wraps dev's event buffer, once; a device gets its stores
// when it is opened linked, or when pairing saves it.
func (s *supervisor) lockDecryption(dev *store.Device) {
	if dev == nil || dev.EventBuffer == nil {
		return
	}
	if _, done := dev.EventBuffer.(signalLocked); done {
		return
	}
	dev.EventBuffer = signalLocked{EventBuffer: dev.EventBuffer, mu: &s.signalMu}
}
