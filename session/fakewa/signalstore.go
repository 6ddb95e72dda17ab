package fakewa

import (
	"context"
	"sync"

	"go.mau.fi/libsignal/ecc"
	groupRecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/whatsmeow/util/keys"
)

var serializer = serialize.NewProtoBufSerializer()

// signalStore is the in-memory Signal state of a simulated peer (a contact
// or the primary phone). Records are kept serialized and keyed by address
// string, so nothing aliases between loads.
type signalStore struct {
	mu           sync.Mutex
	identity     *keys.KeyPair
	regID        uint32
	signedPreKey *keys.PreKey
	preKeys      map[uint32]*keys.PreKey
	nextPreKey   uint32
	sessions     map[string][]byte
	identities   map[string][32]byte
	senderKeys   map[string][]byte
}

func newSignalStore(identityKey *keys.KeyPair, regID uint32) *signalStore {
	return &signalStore{
		identity:     identityKey,
		regID:        regID,
		signedPreKey: identityKey.CreateSignedPreKey(1),
		preKeys:      map[uint32]*keys.PreKey{},
		nextPreKey:   1,
		sessions:     map[string][]byte{},
		identities:   map[string][32]byte{},
		senderKeys:   map[string][]byte{},
	}
}

// bundle hands out a prekey bundle with a fresh one-time prekey, as the
// server does when another device wants to start a session.
func (s *signalStore) bundle(deviceID uint32) *prekey.Bundle {
	s.mu.Lock()
	pk := keys.NewPreKey(s.nextPreKey)
	s.preKeys[pk.KeyID] = pk
	s.nextPreKey++
	s.mu.Unlock()
	return prekey.NewBundle(s.regID, deviceID,
		optional.NewOptionalUint32(pk.KeyID), s.signedPreKey.KeyID,
		ecc.NewDjbECPublicKey(*pk.Pub), ecc.NewDjbECPublicKey(*s.signedPreKey.Pub), *s.signedPreKey.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*s.identity.Pub)))
}

func (s *signalStore) GetIdentityKeyPair() *identity.KeyPair {
	return identity.NewKeyPair(identity.NewKey(ecc.NewDjbECPublicKey(*s.identity.Pub)), ecc.NewDjbECPrivateKey(*s.identity.Priv))
}

func (s *signalStore) GetLocalRegistrationID() uint32 { return s.regID }

func (s *signalStore) SaveIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[addr.String()] = key.PublicKey().PublicKey()
	return nil
}

// IsTrustedIdentity trusts on first use, like WhatsApp clients.
func (s *signalStore) IsTrustedIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known, ok := s.identities[addr.String()]
	return !ok || known == key.PublicKey().PublicKey(), nil
}

func (s *signalStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pk, ok := s.preKeys[id]
	if !ok {
		return nil, nil
	}
	return record.NewPreKey(pk.KeyID, ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*pk.Pub), ecc.NewDjbECPrivateKey(*pk.Priv)), nil), nil
}

func (s *signalStore) StorePreKey(context.Context, uint32, *record.PreKey) error { return nil }

func (s *signalStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.preKeys[id]
	return ok, nil
}

func (s *signalStore) RemovePreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.preKeys, id)
	return nil
}

func (s *signalStore) LoadSession(_ context.Context, addr *protocol.SignalAddress) (*record.Session, error) {
	s.mu.Lock()
	raw, ok := s.sessions[addr.String()]
	s.mu.Unlock()
	if !ok {
		return record.NewSession(serializer.Session, serializer.State), nil
	}
	return record.NewSessionFromBytes(raw, serializer.Session, serializer.State)
}

func (s *signalStore) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	return nil, nil
}

func (s *signalStore) StoreSession(_ context.Context, addr *protocol.SignalAddress, rec *record.Session) error {
	raw := rec.Serialize()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[addr.String()] = raw
	return nil
}

func (s *signalStore) ContainsSession(_ context.Context, addr *protocol.SignalAddress) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[addr.String()]
	return ok, nil
}

func (s *signalStore) DeleteSession(_ context.Context, addr *protocol.SignalAddress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, addr.String())
	return nil
}

func (s *signalStore) DeleteAllSessions(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string][]byte{}
	return nil
}

func (s *signalStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	if id != s.signedPreKey.KeyID {
		return nil, nil
	}
	spk := s.signedPreKey
	return record.NewSignedPreKey(id, 0, ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*spk.Pub), ecc.NewDjbECPrivateKey(*spk.Priv)), *spk.Signature, nil), nil
}

func (s *signalStore) LoadSignedPreKeys(ctx context.Context) ([]*record.SignedPreKey, error) {
	spk, err := s.LoadSignedPreKey(ctx, s.signedPreKey.KeyID)
	return []*record.SignedPreKey{spk}, err
}

func (s *signalStore) StoreSignedPreKey(context.Context, uint32, *record.SignedPreKey) error {
	return nil
}

func (s *signalStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	return id == s.signedPreKey.KeyID, nil
}

func (s *signalStore) RemoveSignedPreKey(context.Context, uint32) error { return nil }

func (s *signalStore) StoreSenderKey(_ context.Context, name *protocol.SenderKeyName, rec *groupRecord.SenderKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.senderKeys[name.GroupID()+"|"+name.Sender().String()] = rec.Serialize()
	return nil
}

func (s *signalStore) LoadSenderKey(_ context.Context, name *protocol.SenderKeyName) (*groupRecord.SenderKey, error) {
	s.mu.Lock()
	raw, ok := s.senderKeys[name.GroupID()+"|"+name.Sender().String()]
	s.mu.Unlock()
	if !ok {
		return groupRecord.NewSenderKey(serializer.SenderKeyRecord, serializer.SenderKeyState), nil
	}
	return groupRecord.NewSenderKeyFromBytes(raw, serializer.SenderKeyRecord, serializer.SenderKeyState)
}
