package fakewa

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// Contact is a simulated WhatsApp user who writes to a phone's number and
// reads what the number's linked devices answer. It has its own Signal
// identity and sessions.
type Contact struct {
	s      *Server
	phone  *Phone
	jid    types.JID
	lid    types.JID // the contact's linked id, see lid.go
	name   string
	signal *signalStore

	mu         sync.Mutex // one Signal operation at a time
	sent       map[string]*waE2E.Message
	addressing Addressing                // how its messages name it
	views      map[types.JID]*clientView // by linked device, see lid.go

	inboxMu sync.Mutex
	inbox   []Received
	unread  []string // ids received and not read (see Read)
	// readByPeer are the ids of the contact's messages a linked device
	// sent read receipts for.
	readByPeer []string
	// chatStates are the chat states ("composing", "paused") a linked
	// device showed the contact, in order.
	chatStates []string
	notify     chan struct{}
}

// Received is a message a contact got from a linked device.
type Received struct {
	ID      string
	From    types.JID // the sending device
	Text    string    // a text message's text; a caption is in Media
	Message *waE2E.Message
	At      time.Time
	// Media is the attachment of an image, video, audio, document or
	// sticker message, downloaded and decrypted as the contact's phone
	// would; nil for other messages. When that failed (no such blob, a
	// hash or MAC mismatch), Media describes the attachment without Data
	// and MediaErr says why.
	Media    *Media
	MediaErr error
}

// Sent is a message a linked device sent, as its recipient decrypted it.
type Sent struct {
	ID    string
	From  types.JID // the sending device
	To    types.JID // the contact
	Text  string
	At    time.Time
	Media *Media // the attachment, described without its bytes; nil if none
}

// NewContact creates a contact who writes to p. number may be empty to
// pick a free one; name is the push name WhatsApp shows with its messages.
func (p *Phone) NewContact(number, name string) *Contact {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if number == "" {
		for {
			number = fmt.Sprintf("1444%07d", s.nextNumber)
			s.nextNumber++
			if s.phones[number] == nil && s.contacts[number] == nil {
				break
			}
		}
	}
	number = strings.TrimPrefix(number, "+")
	if c := s.contacts[number]; c != nil {
		return c
	}
	c := &Contact{
		s: s, phone: p, name: name,
		jid:    types.NewJID(number, types.DefaultUserServer),
		lid:    s.newLIDLocked(),
		signal: newSignalStore(keys.NewKeyPair(), mrand.Uint32N(16380)+1),
		sent:   map[string]*waE2E.Message{},
		views:  map[types.JID]*clientView{},
		notify: make(chan struct{}, 1),
	}
	s.contacts[number] = c
	s.lidContacts[c.lid.User] = c
	return c
}

// JID is the contact's user JID.
func (c *Contact) JID() types.JID { return c.jid }

// Name is the contact's push name.
func (c *Contact) Name() string { return c.name }

// Send writes a text to the phone's number: every linked device gets it,
// Signal-encrypted (a pkmsg to start a session, a msg after). It returns
// the message id.
func (c *Contact) Send(text string) (string, error) {
	return c.SendMessage(&waE2E.Message{Conversation: proto.String(text)})
}

// SendMessage is Send for any message (images, reactions, edits...).
func (c *Contact) SendMessage(msg *waE2E.Message) (string, error) {
	id := newMessageID()
	c.mu.Lock()
	c.sent[id] = msg
	c.mu.Unlock()
	return id, c.deliver(id, msg, false)
}

// Redeliver sends message id again with the same id, freshly encrypted, as
// a phone does when it is not sure the first copy arrived.
func (c *Contact) Redeliver(id string) error {
	c.mu.Lock()
	msg := c.sent[id]
	c.mu.Unlock()
	if msg == nil {
		return fmt.Errorf("fakewa: %s sent no message %s", c.jid, id)
	}
	return c.deliver(id, msg, false)
}

func (c *Contact) deliver(id string, msg *waE2E.Message, _ bool) error {
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	s := c.s
	devs := s.devicesOf(c.phone)
	if len(devs) == 0 {
		return errors.New("fakewa: the number has no linked device")
	}
	for _, d := range devs {
		attrs, err := c.address(d) // lid.go
		if err != nil {
			return err
		}
		encType, ct, err := c.encryptFor(d, plaintext)
		if err != nil {
			return fmt.Errorf("fakewa: encrypting for %s: %w", d.jid, err)
		}
		enc := waBinary.Attrs{"v": "2", "type": encType}
		if mt := encMediaType(msg); mt != "" {
			enc["mediatype"] = mt
		}
		attrs["id"], attrs["t"], attrs["type"], attrs["notify"] = id, unixString(time.Now()), messageType(msg), c.name
		node := waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{{Tag: "enc", Attrs: enc, Content: ct}}}
		s.deliver(d, id, node)
	}
	return nil
}

func messageType(msg *waE2E.Message) string {
	switch {
	case msg.GetConversation() != "" || msg.GetExtendedTextMessage() != nil:
		return "text"
	case msg.GetReactionMessage() != nil:
		return "reaction"
	default:
		return "media"
	}
}

// encryptFor encrypts for one linked device, starting a session from the
// device's uploaded prekeys when there is none.
func (c *Contact) encryptFor(d *device, plaintext []byte) (string, []byte, error) {
	ctx := context.Background()
	c.mu.Lock()
	defer c.mu.Unlock()
	addr := d.jid.SignalAddress()
	builder := session.NewBuilderFromSignal(c.signal, addr, serializer)
	has, _ := c.signal.ContainsSession(ctx, addr)
	if !has {
		b, err := c.s.deviceBundle(d)
		if err != nil {
			return "", nil, err
		}
		if err := builder.ProcessBundle(ctx, b); err != nil {
			return "", nil, err
		}
	}
	ct, err := session.NewCipher(builder, addr).Encrypt(ctx, pad(plaintext))
	if err != nil {
		return "", nil, err
	}
	if ct.Type() == protocol.PREKEY_TYPE {
		return "pkmsg", ct.Serialize(), nil
	}
	return "msg", ct.Serialize(), nil
}

// decryptFrom decrypts what device from sent this contact.
func (c *Contact) decryptFrom(from types.JID, encType string, content []byte) (*waE2E.Message, error) {
	ctx := context.Background()
	c.mu.Lock()
	defer c.mu.Unlock()
	addr := from.SignalAddress()
	cipher := session.NewCipher(session.NewBuilderFromSignal(c.signal, addr, serializer), addr)
	var pt []byte
	var err error
	if encType == "pkmsg" {
		var m *protocol.PreKeySignalMessage
		if m, err = protocol.NewPreKeySignalMessageFromBytes(content, serializer.PreKeySignalMessage, serializer.SignalMessage); err == nil {
			pt, err = cipher.DecryptMessage(ctx, m)
		}
	} else {
		var m *protocol.SignalMessage
		if m, err = protocol.NewSignalMessageFromBytes(content, serializer.SignalMessage); err == nil {
			pt, err = cipher.Decrypt(ctx, m)
		}
	}
	if err != nil {
		return nil, err
	}
	return unpadMessage(pt)
}

func (c *Contact) push(r Received) {
	c.inboxMu.Lock()
	c.inbox = append(c.inbox, r)
	if !slices.Contains(c.unread, r.ID) {
		c.unread = append(c.unread, r.ID)
	}
	c.inboxMu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Next returns the oldest message the contact received and has not read
// yet, waiting up to timeout for one.
func (c *Contact) Next(timeout time.Duration) (Received, error) {
	deadline := time.After(timeout)
	for {
		c.inboxMu.Lock()
		if len(c.inbox) > 0 {
			r := c.inbox[0]
			c.inbox = c.inbox[1:]
			c.inboxMu.Unlock()
			return r, nil
		}
		c.inboxMu.Unlock()
		select {
		case <-c.notify:
		case <-deadline:
			return Received{}, fmt.Errorf("fakewa: %s received nothing within %s", c.jid.User, timeout)
		}
	}
}

// Pending is how many received messages Next has not returned yet.
func (c *Contact) Pending() int {
	c.inboxMu.Lock()
	defer c.inboxMu.Unlock()
	return len(c.inbox)
}

// unpadMessage strips the padding pad added and decodes the message.
func unpadMessage(pt []byte) (*waE2E.Message, error) {
	if len(pt) == 0 || int(pt[len(pt)-1]) > len(pt) {
		return nil, errors.New("bad padding")
	}
	var msg waE2E.Message
	if err := proto.Unmarshal(pt[:len(pt)-int(pt[len(pt)-1])], &msg); err != nil {
		return nil, err
	}
	return &msg, nil
}

// devicesOf lists the devices linked to p.
func (s *Server) devicesOf(p *Phone) []*device {
	s.mu.Lock()
	defer s.mu.Unlock()
	var devs []*device
	for _, d := range s.devices {
		if d.phone == p {
			devs = append(devs, d)
		}
	}
	return devs
}

func pad(b []byte) []byte {
	n := byte(mrand.IntN(15) + 1)
	out := make([]byte, len(b), len(b)+int(n))
	copy(out, b)
	for range n {
		out = append(out, n)
	}
	return out
}

func newMessageID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b))
}

// deviceBundle builds a prekey bundle from what the device uploaded,
// consuming one one-time prekey.
func (s *Server) deviceBundle(d *device) (*prekey.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pkID, pkPub := optional.NewEmptyUint32(), ecc.ECPublicKeyable(nil)
	if len(d.preKeys) > 0 {
		k := d.preKeys[0]
		d.preKeys = d.preKeys[1:]
		pkID = optional.NewOptionalUint32(k.id)
		pkPub = ecc.NewDjbECPublicKey(k.pub)
	}
	return prekey.NewBundle(d.regID, uint32(d.jid.Device), pkID, d.signedPreKey.id,
		pkPub, ecc.NewDjbECPublicKey(d.signedPreKey.pub), d.signedPreKey.sig,
		identity.NewKey(ecc.NewDjbECPublicKey(d.identity))), nil
}

// deliver queues a message for a device until it acknowledges it, and
// sends it now when the device is online.
func (s *Server) deliver(d *device, id string, node waBinary.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.pending = append(d.pending, &pendingMsg{id: id, node: node})
	if c := d.conn; c != nil && c.ready {
		c.sendNode(node)
	}
}

// handleOutgoingMessage acks a message a linked device sends and lets each
// addressed contact decrypt its copy: 1:1 messages directly, group
// messages through the sender key each member got in its 1:1 copy.
func (c *conn) handleOutgoingMessage(n *waBinary.Node) {
	ag := n.AttrGetter()
	id := ag.OptionalString("id")
	to, _ := n.Attrs["to"].(types.JID)
	c.sendNode(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{
		"class": "message", "id": id, "from": to, "t": unixString(time.Now()),
	}})
	if c.dev == nil {
		return
	}
	if to.Server == types.GroupServer {
		c.handleGroupMessage(n, id, to)
		return
	}
	participants, _ := n.GetOptionalChildByTag("participants")
	for _, p := range participants.GetChildren() {
		jid, _ := p.Attrs["jid"].(types.JID)
		c.s.mu.Lock()
		contact := c.s.contactOfLocked(jid) // by number or by LID
		c.s.mu.Unlock()
		if contact == nil || jid.Device != 0 {
			continue
		}
		for _, enc := range p.GetChildren() {
			content, _ := enc.Content.([]byte)
			msg, err := contact.decryptFrom(c.dev.jid, enc.AttrGetter().OptionalString("type"), content)
			if err != nil {
				if c.s.opts.Trace != nil {
					fmt.Fprintf(c.s.opts.Trace, "fakewa: %s cannot decrypt %s: %v\n", jid.User, id, err)
				}
				continue
			}
			contact.sawSession(c.dev, jid) // lid.go
			c.s.recordSent(c.dev, contact, id, msg)
			c.s.deliveryReceipt(c.dev, contact, to, id)
		}
	}
}

func (s *Server) recordSent(d *device, to *Contact, id string, msg *waE2E.Message) {
	text := msg.GetConversation()
	if text == "" {
		text = msg.GetExtendedTextMessage().GetText()
	}
	now := time.Now()
	sent := Sent{ID: id, From: d.jid, To: to.jid, Text: text, At: now}
	media, mediaErr := s.openAttachment(msg)
	if media != nil {
		described := *media
		described.Data = nil
		sent.Media = &described
	}
	s.mu.Lock()
	// WhatsApp keeps one message per sender and id: a client that sends
	// again after a connection dropped before the ack does not double it.
	for _, earlier := range d.phone.outbox {
		if earlier.ID == id && earlier.To == to.jid {
			s.mu.Unlock()
			return
		}
	}
	d.phone.outbox = append(d.phone.outbox, sent)
	if len(d.phone.outbox) > 1000 {
		d.phone.outbox = d.phone.outbox[len(d.phone.outbox)-1000:]
	}
	fn := s.onSent
	s.mu.Unlock()
	to.push(Received{ID: id, From: d.jid, Text: text, Message: msg, At: now, Media: media, MediaErr: mediaErr})
	if fn != nil {
		fn(sent)
	}
}

// SendGroup writes text in group (a JID on g.us) as this contact: the
// linked devices get the sender key in a 1:1 pkmsg/msg and the text as a
// skmsg, as WhatsApp delivers group messages.
func (c *Contact) SendGroup(group types.JID, text string) (string, error) {
	id := newMessageID()
	ctx := context.Background()
	plaintext, err := proto.Marshal(&waE2E.Message{Conversation: proto.String(text)})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	name := protocol.NewSenderKeyName(group.String(), c.jid.SignalAddress())
	builder := groups.NewGroupSessionBuilder(c.signal, serializer)
	skdm, err := builder.Create(ctx, name)
	var skmsg []byte
	if err == nil {
		var ct protocol.GroupCiphertextMessage
		if ct, err = groups.NewGroupCipher(builder, name, c.signal).Encrypt(ctx, pad(plaintext)); err == nil {
			skmsg = ct.SignedSerialize()
		}
	}
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	dist, _ := proto.Marshal(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{
		GroupID: proto.String(group.String()), AxolotlSenderKeyDistributionMessage: skdm.Serialize(),
	}})
	s := c.s
	devs := s.devicesOf(c.phone)
	s.mu.Lock()
	// The group's members: its writers and the linked number.
	members := s.groups[group.User]
	for _, m := range []types.JID{c.jid, c.phone.jid} {
		if !slices.Contains(members, m) {
			members = append(members, m)
		}
	}
	s.groups[group.User] = members
	s.mu.Unlock()
	if len(devs) == 0 {
		return "", errors.New("fakewa: the number has no linked device")
	}
	for _, d := range devs {
		attrs, err := c.groupAddress(d) // lid.go
		if err != nil {
			return "", err
		}
		encType, ct, err := c.encryptFor(d, dist)
		if err != nil {
			return "", err
		}
		attrs["from"], attrs["id"], attrs["t"], attrs["type"], attrs["notify"] = group, id, unixString(time.Now()), "text", c.name
		s.deliver(d, id, waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{
			{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: ct},
			{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "skmsg"}, Content: skmsg},
		}})
	}
	return id, nil
}

func (c *conn) handleGroupMessage(n *waBinary.Node, id string, group types.JID) {
	ctx := context.Background()
	participants, _ := n.GetOptionalChildByTag("participants")
	for _, p := range participants.GetChildren() {
		jid, _ := p.Attrs["jid"].(types.JID)
		c.s.mu.Lock()
		contact := c.s.contacts[jid.User]
		c.s.mu.Unlock()
		if contact == nil {
			continue
		}
		for _, enc := range p.GetChildren() {
			content, _ := enc.Content.([]byte)
			msg, err := contact.decryptFrom(c.dev.jid, enc.AttrGetter().OptionalString("type"), content)
			if err != nil || msg.GetSenderKeyDistributionMessage() == nil {
				continue
			}
			skdm, err := protocol.NewSenderKeyDistributionMessageFromBytes(msg.GetSenderKeyDistributionMessage().GetAxolotlSenderKeyDistributionMessage(), serializer.SenderKeyDistributionMessage)
			if err != nil {
				continue
			}
			contact.mu.Lock()
			groups.NewGroupSessionBuilder(contact.signal, serializer).Process(ctx, protocol.NewSenderKeyName(group.String(), c.dev.jid.SignalAddress()), skdm)
			contact.mu.Unlock()
		}
	}
	sk, ok := n.GetOptionalChildByTag("enc")
	content, _ := sk.Content.([]byte)
	if !ok || sk.AttrGetter().OptionalString("type") != "skmsg" {
		return
	}
	c.s.mu.Lock()
	members := slices.Clone(c.s.groups[group.User])
	c.s.mu.Unlock()
	for _, m := range members {
		c.s.mu.Lock()
		contact := c.s.contacts[m.User]
		c.s.mu.Unlock()
		if contact == nil {
			continue
		}
		msg, err := contact.decryptGroup(group, c.dev.jid, content)
		if err != nil {
			continue
		}
		c.s.recordSent(c.dev, contact, id, msg)
		c.s.deliveryReceipt(c.dev, contact, group, id)
	}
}

// decryptGroup decrypts a group message with the sender key the device
// distributed.
func (c *Contact) decryptGroup(group, from types.JID, content []byte) (*waE2E.Message, error) {
	ctx := context.Background()
	c.mu.Lock()
	defer c.mu.Unlock()
	skm, err := protocol.NewSenderKeyMessageFromBytes(content, serializer.SenderKeyMessage)
	if err != nil {
		return nil, err
	}
	name := protocol.NewSenderKeyName(group.String(), from.SignalAddress())
	pt, err := groups.NewGroupCipher(groups.NewGroupSessionBuilder(c.signal, serializer), name, c.signal).Decrypt(ctx, skm)
	if err != nil {
		return nil, err
	}
	return unpadMessage(pt)
}

// ChatStates returns the chat states ("composing" for "typing…",
// "paused") linked devices showed the contact, in order.
func (c *Contact) ChatStates() []string {
	c.inboxMu.Lock()
	defer c.inboxMu.Unlock()
	return append([]string(nil), c.chatStates...)
}

// ReadByLinkedDevice returns the ids of the contact's messages that the
// linked device marked read (read receipts it sent), in order.
func (c *Contact) ReadByLinkedDevice() []string {
	c.inboxMu.Lock()
	defer c.inboxMu.Unlock()
	return append([]string(nil), c.readByPeer...)
}
