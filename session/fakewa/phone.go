package fakewa

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// Phone is the simulated primary device of one WhatsApp number: it links
// companion devices (by QR scan or by code), lists and unlinks them, and
// its contacts message them.
type Phone struct {
	s       *Server
	jid     types.JID // number@s.whatsapp.net
	lid     types.JID // the number's LID user
	account *keys.KeyPair
	signal  *signalStore // device 0, whose identity is the account key

	// under s.mu
	nextDevice uint16
	outbox     []Sent
}

// device is a linked companion device as the server knows it.
type device struct {
	jid          types.JID
	lid          types.JID
	phone        *Phone
	name         string
	created      time.Time
	regID        uint32
	identity     [32]byte
	signedPreKey uploadedSignedPreKey
	preKeys      []uploadedPreKey
	conn         *conn
	pending      []*pendingMsg // delivered, not yet acknowledged
}

type uploadedPreKey struct {
	id  uint32
	pub [32]byte
}

type uploadedSignedPreKey struct {
	id  uint32
	pub [32]byte
	sig [64]byte
}

type pendingMsg struct {
	id   string
	node waBinary.Node
}

// registration is a connection of a device not linked yet.
type registration struct {
	c        *conn
	data     *waWa6.ClientPayload_DevicePairingRegistrationData
	refs     []string
	identity [32]byte
}

// codePairing is a pairing by phone-number code waiting for the code to be
// typed on the phone.
type codePairing struct {
	reg          *registration
	ref          []byte
	wrappedEph   []byte // the companion's ephemeral key, encrypted with the code
	phoneEph     *keys.KeyPair
	companionEph []byte
	phone        *Phone
	done         chan error
	linked       types.JID
}

// LinkedDevice is a device as the phone's "Linked devices" screen lists it.
type LinkedDevice struct {
	JID    types.JID
	Name   string
	Online bool
}

// NewPhone creates the primary device of number (digits, international
// format without "+"); an empty number picks a free one.
func (s *Server) NewPhone(number string) *Phone {
	s.mu.Lock()
	defer s.mu.Unlock()
	if number == "" {
		for {
			number = fmt.Sprintf("1555%07d", s.nextNumber)
			s.nextNumber++
			if s.phones[number] == nil && s.contacts[number] == nil {
				break
			}
		}
	}
	if p := s.phones[number]; p != nil {
		return p
	}
	account := keys.NewKeyPair()
	p := &Phone{
		s:          s,
		jid:        types.NewJID(number, types.DefaultUserServer),
		lid:        types.NewJID(fmt.Sprintf("%d", 100000000000000+mrand.Int64N(800000000000000)), types.HiddenUserServer),
		account:    account,
		signal:     newSignalStore(account, mrand.Uint32N(16380)+1),
		nextDevice: 1,
	}
	s.phones[number] = p
	return p
}

// Number is the phone's number without "+".
func (p *Phone) Number() string { return p.jid.User }

// JID is the phone's user JID.
func (p *Phone) JID() types.JID { return p.jid }

// LinkedDevices lists the companion devices linked to this number.
func (p *Phone) LinkedDevices() []LinkedDevice {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	var out []LinkedDevice
	for _, d := range p.s.devices {
		if d.phone == p {
			out = append(out, LinkedDevice{JID: d.jid, Name: d.name, Online: d.conn != nil && d.conn.loggedIn.Load()})
		}
	}
	return out
}

// Outbox lists what the number's linked devices sent, as the contacts
// decrypted it, oldest first.
func (p *Phone) Outbox() []Sent {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return append([]Sent(nil), p.outbox...)
}

// Unlink removes dev from the phone's linked devices: a connected device
// gets <stream:error code=401><conflict type=device_removed/>, an offline
// one a 401 failure at its next login.
func (p *Phone) Unlink(dev types.JID) error {
	s := p.s
	s.mu.Lock()
	d := s.devices[dev]
	if d == nil || d.phone != p {
		s.mu.Unlock()
		return fmt.Errorf("fakewa: %s is not linked to %s", dev, p.jid)
	}
	c := d.conn
	s.removeDeviceLocked(d)
	s.mu.Unlock()
	if c != nil {
		c.sendNode(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "401"},
			Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}}})
		c.closeAfterQueue()
	}
	return nil
}

func (s *Server) removeDeviceLocked(d *device) {
	if s.devices[d.jid] == d {
		delete(s.devices, d.jid)
	}
}

// startRegistration offers QR references to a device without an identity,
// as WhatsApp does right after the registration handshake.
func (c *conn) startRegistration(p *waWa6.ClientPayload) {
	data := p.GetDevicePairingData()
	if len(data.GetEIdent()) != 32 || len(data.GetERegid()) != 4 || len(data.GetESkeyVal()) != 32 || len(data.GetESkeySig()) != 64 {
		c.close(false)
		return
	}
	reg := &registration{c: c, data: data, identity: [32]byte(data.GetEIdent())}
	refNodes := make([]waBinary.Node, c.s.opts.QRRefs)
	for i := range refNodes {
		ref := "2@" + base64.StdEncoding.EncodeToString(randomBytes(24))
		reg.refs = append(reg.refs, ref)
		refNodes[i] = waBinary.Node{Tag: "ref", Content: []byte(ref)}
	}
	c.s.mu.Lock()
	c.reg = reg
	for _, ref := range reg.refs {
		c.s.qrRefs[ref] = reg
	}
	c.s.mu.Unlock()
	c.sendNode(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "type": "set", "xmlns": "md", "id": fmt.Sprintf("pair.%d", c.nextID.Add(1)),
	}, Content: []waBinary.Node{{Tag: "pair-device", Content: refNodes}}})
}

// Scan does what the phone does when it scans qr, the string whatsmeow
// shows as a QR code ("ref,noise key,identity key,adv secret"): it links
// the device and returns its JID once the device confirmed the pairing.
func (p *Phone) Scan(ctx context.Context, qr string) (types.JID, error) {
	parts := strings.Split(qr, ",")
	if len(parts) != 4 {
		return types.EmptyJID, errors.New("fakewa: not a WhatsApp QR code")
	}
	noise, err1 := base64.StdEncoding.DecodeString(parts[1])
	ident, err2 := base64.StdEncoding.DecodeString(parts[2])
	adv, err3 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || err3 != nil || len(noise) != 32 || len(ident) != 32 || len(adv) != 32 {
		return types.EmptyJID, errors.New("fakewa: malformed QR code")
	}
	p.s.mu.Lock()
	reg := p.s.qrRefs[parts[0]]
	p.s.mu.Unlock()
	if reg == nil {
		return types.EmptyJID, errors.New("fakewa: QR code expired or unknown")
	}
	if reg.c.noiseStatic != [32]byte(noise) || reg.identity != [32]byte(ident) {
		return types.EmptyJID, errors.New("fakewa: QR code does not match the connection")
	}
	return p.link(ctx, reg, adv)
}

// link sends pair-success signed with the account key, waits for the
// device's signature, stores the device and restarts its stream (515).
func (p *Phone) link(ctx context.Context, reg *registration, advSecret []byte) (types.JID, error) {
	s := p.s
	s.mu.Lock()
	for _, ref := range reg.refs {
		delete(s.qrRefs, ref)
	}
	devID := p.nextDevice
	p.nextDevice++
	s.mu.Unlock()

	jid := types.JID{User: p.jid.User, Device: devID, Server: types.DefaultUserServer}
	lid := types.JID{User: p.lid.User, Device: devID, Server: types.HiddenUserServer}
	details, _ := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(mrand.Uint32()),
		Timestamp: proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:  proto.Uint32(uint32(devID)),
	})
	accountSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*p.account.Priv),
		concat([]byte{6, 0}, details, reg.identity[:]))
	signed, _ := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: p.account.Pub[:],
		AccountSignature:    accountSig[:],
	})
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, _ := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})

	resp, err := reg.c.request(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "type": "set", "xmlns": "md",
	}, Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
		{Tag: "device-identity", Attrs: waBinary.Attrs{"key-index": fmt.Sprint(devID)}, Content: container},
		{Tag: "platform", Attrs: waBinary.Attrs{"name": "android"}},
		{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
	}}}}, 15*time.Second)
	if err != nil {
		return types.EmptyJID, err
	}
	if resp.AttrGetter().OptionalString("type") != "result" {
		return types.EmptyJID, fmt.Errorf("fakewa: the device refused the pairing: %s", resp.XMLString())
	}
	ident, ok := resp.GetOptionalChildByTag("pair-device-sign", "device-identity")
	selfSigned, _ := ident.Content.([]byte)
	var dev waAdv.ADVSignedDeviceIdentity
	if !ok || proto.Unmarshal(selfSigned, &dev) != nil || len(dev.DeviceSignature) != 64 {
		return types.EmptyJID, errors.New("fakewa: the device sent no signed identity")
	}
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(reg.identity),
		concat([]byte{6, 1}, dev.Details, reg.identity[:], p.account.Pub[:]), [64]byte(dev.DeviceSignature)) {
		return types.EmptyJID, errors.New("fakewa: the device signature does not verify")
	}

	var props waCompanionReg.DeviceProps
	_ = proto.Unmarshal(reg.data.GetDeviceProps(), &props)
	d := &device{
		jid: jid, lid: lid, phone: p, name: props.GetOs(), created: time.Now(),
		regID:    binary.BigEndian.Uint32(reg.data.GetERegid()),
		identity: reg.identity,
		signedPreKey: uploadedSignedPreKey{
			id:  uint32(reg.data.GetESkeyID()[0])<<16 | uint32(reg.data.GetESkeyID()[1])<<8 | uint32(reg.data.GetESkeyID()[2]),
			pub: [32]byte(reg.data.GetESkeyVal()),
			sig: [64]byte(reg.data.GetESkeySig()),
		},
	}
	s.mu.Lock()
	s.devices[jid] = d
	s.mu.Unlock()
	// The client disconnects and logs in again by itself on 515; the server
	// only closes a socket the client left open, so both sides never close
	// it at once (whatsmeow's frame socket races on that).
	reg.c.sendNode(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}})
	go func() {
		select {
		case <-reg.c.done:
		case <-time.After(closeGrace):
			reg.c.close(false)
		}
	}()
	return jid, nil
}

// handleCodePairing answers both stages of pairing by phone-number code.
func (c *conn) handleCodePairing(n *waBinary.Node, req *waBinary.Node) {
	ag := req.AttrGetter()
	stage := ag.OptionalString("stage")
	jid, _ := req.Attrs["jid"].(types.JID)
	s := c.s
	switch stage {
	case "companion_hello":
		wrapped, _ := req.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		s.mu.Lock()
		phone := s.phones[jid.User]
		reg := c.reg
		s.mu.Unlock()
		if phone == nil || reg == nil || len(wrapped) != 80 {
			c.sendNode(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": n.Attrs["id"], "type": "error", "from": types.ServerJID},
				Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "400", "text": "bad-request"}}}})
			return
		}
		ref := []byte("fake-ref-" + base64.RawURLEncoding.EncodeToString(randomBytes(12)))
		s.mu.Lock()
		s.codePairs[jid.User] = &codePairing{reg: reg, ref: ref, wrappedEph: wrapped, phone: phone, done: make(chan error, 1)}
		s.mu.Unlock()
		c.result(n, waBinary.Node{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: ref},
		}})
	case "companion_finish":
		c.result(n)
		s.mu.Lock()
		cp := s.codePairs[jid.User]
		delete(s.codePairs, jid.User)
		s.mu.Unlock()
		if cp == nil || cp.phoneEph == nil {
			return
		}
		go func() { cp.done <- cp.finish(req) }()
	default:
		c.result(n)
	}
}

// EnterCode does what the phone does when its user types the 8-character
// code shown by the linking device ("ABCD-EFGH"). It returns once the
// device is linked.
func (p *Phone) EnterCode(ctx context.Context, code string) (types.JID, error) {
	code = strings.ToUpper(strings.ReplaceAll(code, "-", ""))
	p.s.mu.Lock()
	cp := p.s.codePairs[p.jid.User]
	p.s.mu.Unlock()
	if cp == nil || len(code) != 8 {
		return types.EmptyJID, errors.New("fakewa: no device is waiting for a code for this number")
	}
	key, err := pbkdf2.Key(sha256.New, code, cp.wrappedEph[:32], 2<<16, 32)
	if err != nil {
		return types.EmptyJID, err
	}
	cp.companionEph = ctrXOR(key, cp.wrappedEph[32:48], cp.wrappedEph[48:80])
	cp.phoneEph = keys.NewKeyPair()
	salt, iv := randomBytes(32), randomBytes(16)
	key2, err := pbkdf2.Key(sha256.New, code, salt, 2<<16, 32)
	if err != nil {
		return types.EmptyJID, err
	}
	wrappedPhone := concat(salt, iv, ctrXOR(key2, iv, cp.phoneEph.Pub[:]))
	cp.reg.c.sendNode(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "type": "link_code_companion_reg", "id": fmt.Sprintf("code.%d", cp.reg.c.nextID.Add(1)), "t": unixString(time.Now()),
	}, Content: []waBinary.Node{{Tag: "link_code_companion_reg", Content: []waBinary.Node{
		{Tag: "link_code_pairing_ref", Content: cp.ref},
		{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrappedPhone},
		{Tag: "primary_identity_pub", Content: p.account.Pub[:]},
	}}}})
	select {
	case err := <-cp.done:
		if err != nil {
			return types.EmptyJID, err
		}
	case <-ctx.Done():
		return types.EmptyJID, ctx.Err()
	}
	return cp.linked, nil
}

// finish decrypts the companion's key bundle, derives the adv secret both
// sides share and links the device.
func (cp *codePairing) finish(req *waBinary.Node) error {
	wrapped, _ := req.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
	if len(wrapped) < 32+12+16 {
		return errors.New("fakewa: short key bundle")
	}
	ephShared, err := curve25519.X25519(cp.phoneEph.Priv[:], cp.companionEph)
	if err != nil {
		return err
	}
	bundleKey := hkdfutil.SHA256(ephShared, wrapped[:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, _ := aes.NewCipher(bundleKey)
	gcm, _ := cipher.NewGCM(block)
	bundle, err := gcm.Open(nil, wrapped[32:44], wrapped[44:], nil)
	if err != nil || len(bundle) != 96 {
		return errors.New("fakewa: wrong code: the key bundle does not decrypt")
	}
	companionIdentity, primaryIdentity, advRandom := bundle[:32], bundle[32:64], bundle[64:]
	if [32]byte(primaryIdentity) != *cp.phone.account.Pub || [32]byte(companionIdentity) != cp.reg.identity {
		return errors.New("fakewa: key bundle names other identities")
	}
	identityShared, err := curve25519.X25519(cp.phone.account.Priv[:], companionIdentity)
	if err != nil {
		return err
	}
	advSecret := hkdfutil.SHA256(concat(ephShared, identityShared, advRandom), nil, []byte("adv_secret"), 32)
	jid, err := cp.phone.link(context.Background(), cp.reg, advSecret)
	cp.linked = jid
	return err
}

func ctrXOR(key, iv, data []byte) []byte {
	block, _ := aes.NewCipher(key)
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// usync answers device list queries: a contact has its phone (device 0);
// the tenant's own number lists only its primary phone, so whatsmeow does
// not fetch a bundle for itself before each send; unknown users have no
// devices.
func (s *Server) usync(c *conn, q waBinary.Node) waBinary.Node {
	list, _ := q.GetOptionalChildByTag("list")
	if _, ok := q.GetOptionalChildByTag("query", "contact"); ok {
		return s.usyncContacts(list)
	}
	var users []waBinary.Node
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range list.GetChildren() {
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		var devs []waBinary.Node
		if s.contactOfLocked(jid) != nil || s.phones[jid.User] != nil {
			devs = append(devs, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": "0"}})
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid.ToNonAD()}, Content: []waBinary.Node{
			{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: devs}}},
		}})
	}
	return waBinary.Node{Tag: "usync", Content: []waBinary.Node{{Tag: "list", Content: users}}}
}

// preKeyBundles answers <key> requests: contacts and phones hand out a
// fresh bundle; linked devices give one of their uploaded prekeys.
func (s *Server) preKeyBundles(req waBinary.Node) waBinary.Node {
	var users []waBinary.Node
	for _, u := range req.GetChildren() {
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		users = append(users, s.bundleNode(jid))
	}
	return waBinary.Node{Tag: "list", Content: users}
}

func (s *Server) bundleNode(jid types.JID) waBinary.Node {
	s.mu.Lock()
	var store *signalStore
	if jid.Device == 0 {
		if ct := s.contactOfLocked(jid); ct != nil {
			store = ct.signal
		} else if p := s.phones[jid.User]; p != nil {
			store = p.signal
		}
	}
	d := s.devices[jid]
	var dk *uploadedPreKey
	var dev device
	if d != nil {
		dev = *d
		if len(d.preKeys) > 0 {
			k := d.preKeys[0]
			d.preKeys = d.preKeys[1:]
			dk = &k
		}
	}
	s.mu.Unlock()
	notFound := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{
		{Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"}},
	}}
	switch {
	case store != nil:
		b := store.bundle(0)
		reg := make([]byte, 4)
		binary.BigEndian.PutUint32(reg, b.RegistrationID())
		spk := b.SignedPreKey().PublicKey()
		pk := b.PreKey().PublicKey()
		sig := b.SignedPreKeySignature()
		return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{
			{Tag: "registration", Content: reg},
			{Tag: "type", Content: []byte{ecc.DjbType}},
			{Tag: "identity", Content: b.IdentityKey().PublicKey().Serialize()[1:]},
			{Tag: "skey", Content: []waBinary.Node{
				{Tag: "id", Content: id3(b.SignedPreKeyID())},
				{Tag: "value", Content: spk[:]},
				{Tag: "signature", Content: sig[:]},
			}},
			{Tag: "key", Content: []waBinary.Node{
				{Tag: "id", Content: id3(b.PreKeyID().Value)},
				{Tag: "value", Content: pk[:]},
			}},
		}}
	case d != nil:
		reg := make([]byte, 4)
		binary.BigEndian.PutUint32(reg, dev.regID)
		content := []waBinary.Node{
			{Tag: "registration", Content: reg},
			{Tag: "type", Content: []byte{ecc.DjbType}},
			{Tag: "identity", Content: dev.identity[:]},
			{Tag: "skey", Content: []waBinary.Node{
				{Tag: "id", Content: id3(dev.signedPreKey.id)},
				{Tag: "value", Content: dev.signedPreKey.pub[:]},
				{Tag: "signature", Content: dev.signedPreKey.sig[:]},
			}},
		}
		if dk != nil {
			content = append(content, waBinary.Node{Tag: "key", Content: []waBinary.Node{
				{Tag: "id", Content: id3(dk.id)},
				{Tag: "value", Content: dk.pub[:]},
			}})
		}
		return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content}
	}
	return notFound
}

func id3(id uint32) []byte { return []byte{byte(id >> 16), byte(id >> 8), byte(id)} }
