package fakewa

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

var connHeader = []byte{'W', 'A', 6, 3}

// conn is one client websocket: the Noise transport, an ordered writer
// (which also applies added latency) and the node dispatcher.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc

	inbuf       []byte
	noiseStatic [32]byte // the client's Noise key, as its QR code shows it
	recv        cipher.AEAD
	recvCtr     uint32

	sendMu  sync.Mutex // orders encryption with queueing
	send    cipher.AEAD
	sendCtr uint32
	queue   chan outFrame

	// Set by the read goroutine once, before loggedIn/ready; read under s.mu.
	dev      *device
	reg      *registration
	loggedIn atomic.Bool
	ready    bool // under s.mu: pending messages may be pushed

	waitMu  sync.Mutex
	waiters map[string]chan *waBinary.Node
	nextID  atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
}

type outFrame struct {
	data  []byte
	due   time.Time
	close bool // close the socket once the frames before it are written
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		s: s, ws: ws, ctx: ctx, cancel: cancel,
		queue:   make(chan outFrame, 4096),
		waiters: map[string]chan *waBinary.Node{},
		done:    make(chan struct{}),
	}
}

func (c *conn) who() string {
	if c.dev != nil {
		return c.dev.jid.String()
	}
	return "unpaired"
}

// close ends the connection. graceful sends a websocket close frame;
// otherwise the TCP connection is dropped like a network failure.
func (c *conn) close(graceful bool) {
	c.closeOnce.Do(func() {
		if graceful {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			go func() { <-ctx.Done() }()
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
			cancel()
		} else {
			_ = c.ws.CloseNow()
		}
		c.cancel()
		close(c.done)
	})
}

// closeGrace is how long the server leaves a socket it ended (stream
// error, failure) for the client to close. WhatsApp closes at once; the
// fake waits a little because whatsmeow's frame socket has data races when
// both sides close at the same moment, which -race reports in tests.
const closeGrace = 3 * time.Second

// closeAfterQueue closes the socket once every frame queued so far has been
// written and the client had closeGrace to close it itself.
func (c *conn) closeAfterQueue() {
	select {
	case c.queue <- outFrame{close: true, due: time.Now().Add(closeGrace)}:
	case <-c.done:
	}
}

func (c *conn) run() {
	defer c.close(false)
	go c.writeLoop()
	payload, err := c.handshake()
	if err != nil {
		return
	}
	if payload.DevicePairingData != nil {
		c.startRegistration(payload)
	} else {
		c.login(payload)
	}
	for {
		frame, err := c.readFrame()
		if err != nil {
			return
		}
		plain, err := c.recv.Open(nil, nonce(c.recvCtr), frame, nil)
		c.recvCtr++
		if err != nil {
			return
		}
		data, err := waBinary.Unpack(plain)
		if err != nil {
			return
		}
		node, err := waBinary.Unmarshal(data)
		if err != nil {
			return
		}
		c.s.trace("←", c.who(), node)
		c.handleNode(node)
	}
}

func (c *conn) writeLoop() {
	for {
		select {
		case f := <-c.queue:
			if d := time.Until(f.due); d > 0 {
				select {
				case <-time.After(d):
				case <-c.done:
					return
				}
			}
			if f.close {
				c.close(false)
				return
			}
			if err := c.ws.Write(c.ctx, websocket.MessageBinary, f.data); err != nil {
				c.close(false)
				return
			}
		case <-c.done:
			return
		}
	}
}

// readFrame returns the next length-prefixed frame, stripping the
// connection header the client sends once.
func (c *conn) readFrame() ([]byte, error) {
	for {
		if len(c.inbuf) >= 3 {
			n := int(c.inbuf[0])<<16 | int(c.inbuf[1])<<8 | int(c.inbuf[2])
			if len(c.inbuf) >= 3+n {
				frame := c.inbuf[3 : 3+n]
				c.inbuf = c.inbuf[3+n:]
				return frame, nil
			}
		}
		typ, msg, err := c.ws.Read(c.ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		c.inbuf = append(c.inbuf, msg...)
	}
}

// writeRaw queues one unencrypted frame (handshake).
func (c *conn) writeRaw(data []byte) {
	frame := make([]byte, 3+len(data))
	frame[0], frame[1], frame[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(frame[3:], data)
	c.enqueue(frame)
}

func (c *conn) enqueue(frame []byte) {
	select {
	case c.queue <- outFrame{data: frame, due: time.Now().Add(time.Duration(c.s.latency.Load()))}:
	case <-c.done:
	}
}

// sendNode encrypts and queues a node. Encryption and queueing happen
// under one lock so frames leave in counter order.
func (c *conn) sendNode(n waBinary.Node) {
	data, err := waBinary.Marshal(n)
	if err != nil {
		panic(fmt.Errorf("fakewa: marshalling %s: %w", n.Tag, err))
	}
	c.s.trace("→", c.who(), &n)
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	ct := c.send.Seal(nil, nonce(c.sendCtr), data, nil)
	c.sendCtr++
	frame := make([]byte, 3+len(ct))
	frame[0], frame[1], frame[2] = byte(len(ct)>>16), byte(len(ct)>>8), byte(len(ct))
	copy(frame[3:], ct)
	c.enqueue(frame)
}

// request sends an IQ to the client and waits for its answer.
func (c *conn) request(n waBinary.Node, timeout time.Duration) (*waBinary.Node, error) {
	id := fmt.Sprintf("fake.%d", c.nextID.Add(1))
	n.Attrs["id"] = id
	ch := make(chan *waBinary.Node, 1)
	c.waitMu.Lock()
	c.waiters[id] = ch
	c.waitMu.Unlock()
	defer func() {
		c.waitMu.Lock()
		delete(c.waiters, id)
		c.waitMu.Unlock()
	}()
	c.sendNode(n)
	select {
	case resp := <-ch:
		return resp, nil
	case <-time.After(timeout):
		return nil, errors.New("fakewa: the client did not answer in time")
	case <-c.done:
		return nil, errClosed
	}
}

func (c *conn) handshake() (*waWa6.ClientPayload, error) {
	typ, first, err := c.ws.Read(c.ctx)
	if err != nil || typ != websocket.MessageBinary || !bytes.HasPrefix(first, connHeader) {
		return nil, errors.New("fakewa: bad connection header")
	}
	c.inbuf = append(c.inbuf, first[len(connHeader):]...)
	hello, err := c.readFrame()
	if err != nil {
		return nil, err
	}
	var msg waWa6.HandshakeMessage
	if err := proto.Unmarshal(hello, &msg); err != nil || len(msg.GetClientHello().GetEphemeral()) != 32 {
		return nil, errors.New("fakewa: bad client hello")
	}
	clientEph := [32]byte(msg.GetClientHello().GetEphemeral())

	ns, err := newNoiseState(connHeader)
	if err != nil {
		return nil, err
	}
	ns.authenticate(clientEph[:])
	eph := keys.NewKeyPair()
	ns.authenticate(eph.Pub[:])
	if err := ns.mixDH(*eph.Priv, clientEph); err != nil {
		return nil, err
	}
	static := ns.encrypt(c.s.static.Pub[:])
	if err := ns.mixDH(*c.s.static.Priv, clientEph); err != nil {
		return nil, err
	}
	certs := ns.encrypt(c.s.certChain)
	reply, _ := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: eph.Pub[:], Static: static, Payload: certs,
	}})
	c.writeRaw(reply)

	finishRaw, err := c.readFrame()
	if err != nil {
		return nil, err
	}
	var finish waWa6.HandshakeMessage
	if err := proto.Unmarshal(finishRaw, &finish); err != nil || finish.GetClientFinish() == nil {
		return nil, errors.New("fakewa: bad client finish")
	}
	clientStatic, err := ns.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil || len(clientStatic) != 32 {
		return nil, errors.New("fakewa: cannot decrypt client static key")
	}
	if err := ns.mixDH(*eph.Priv, [32]byte(clientStatic)); err != nil {
		return nil, err
	}
	payloadRaw, err := ns.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return nil, errors.New("fakewa: cannot decrypt client payload")
	}
	var payload waWa6.ClientPayload
	if err := proto.Unmarshal(payloadRaw, &payload); err != nil {
		return nil, err
	}
	if c.recv, c.send, err = ns.split(); err != nil {
		return nil, err
	}
	c.noiseStatic = [32]byte(clientStatic)
	return &payload, nil
}

// login handles a returning device: <failure> for an unknown device or an
// injected fault, else <success>.
func (c *conn) login(p *waWa6.ClientPayload) {
	jid := types.JID{User: fmt.Sprint(p.GetUsername()), Device: uint16(p.GetDevice()), Server: types.DefaultUserServer}
	s := c.s
	s.mu.Lock()
	d := s.devices[jid]
	var fault *Failure
	if fs := s.loginFaults[jid]; len(fs) > 0 {
		fault = &fs[0]
		s.loginFaults[jid] = fs[1:]
	}
	if fault == nil {
		fault = s.timedLoginFaultLocked(jid)
	}
	if d == nil && fault == nil {
		fault = &Failure{Reason: 401}
	}
	if fault != nil && fault.Reason == 401 && d != nil {
		s.removeDeviceLocked(d)
	}
	var old *conn
	if fault == nil {
		old = d.conn
		d.conn = c
		c.dev = d
	}
	s.mu.Unlock()
	if old != nil && old != c {
		s.replaceOlder(old)
	}
	if fault != nil {
		attrs := waBinary.Attrs{"reason": fmt.Sprint(fault.Reason), "location": "fake"}
		if fault.Reason == 402 {
			attrs["code"] = fmt.Sprint(fault.Code)
			attrs["expire"] = fmt.Sprint(int(fault.Expire.Seconds()))
		}
		c.sendNode(waBinary.Node{Tag: "failure", Attrs: attrs})
		c.closeAfterQueue()
		return
	}
	c.loggedIn.Store(true)
	c.sendNode(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":        unixString(time.Now()),
		"lid":      d.lid,
		"props":    "1",
		"location": "fake",
		"creation": unixString(d.created),
	}})
}

func (c *conn) handleNode(n *waBinary.Node) {
	switch n.Tag {
	case "iq":
		c.handleIQ(n)
	case "message":
		c.handleOutgoingMessage(n)
	case "receipt":
		c.handleReceipt(n)
	case "chatstate":
		c.handleChatState(n)
	case "ack":
		// A message or receipt the fake delivered is done once acked.
		if class := n.AttrGetter().OptionalString("class"); class == "message" || class == "receipt" {
			c.acknowledge(n.AttrGetter().OptionalString("id"))
		}
	}
}

func (c *conn) result(req *waBinary.Node, content ...waBinary.Node) {
	n := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id":   req.Attrs["id"],
		"type": "result",
		"from": types.ServerJID,
	}}
	if len(content) > 0 {
		n.Content = content
	}
	c.sendNode(n)
}

func (c *conn) handleIQ(n *waBinary.Node) {
	ag := n.AttrGetter()
	typ := ag.OptionalString("type")
	id := ag.OptionalString("id")
	if typ == "result" || typ == "error" {
		c.waitMu.Lock()
		ch := c.waiters[id]
		c.waitMu.Unlock()
		if ch != nil {
			ch <- n
		}
		return
	}
	children := n.GetChildren()
	first := ""
	if len(children) > 0 {
		first = children[0].Tag
	}
	switch xmlns := ag.OptionalString("xmlns"); {
	case xmlns == "w:p":
		c.s.mu.Lock()
		deaf := c.s.pingsWithheldLocked(c)
		c.s.mu.Unlock()
		if !deaf {
			c.result(n)
		}
	case xmlns == "encrypt" && first == "count":
		c.result(n, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": fmt.Sprint(c.preKeyCount())}})
	case xmlns == "encrypt" && typ == "set":
		c.storePreKeys(n)
		c.result(n)
	case xmlns == "encrypt" && first == "key":
		c.result(n, c.s.preKeyBundles(children[0]))
	case xmlns == "usync":
		c.result(n, c.s.usync(c, children[0]))
	case xmlns == "passive" && first == "active":
		c.result(n)
		c.markReady()
	case xmlns == "w:m" && first == "media_conn":
		c.result(n, c.s.mediaConnNode())
	case xmlns == "w:g2" && first == "query":
		c.answerGroupInfo(n)
	case xmlns == "md" && first == "link_code_companion_reg":
		c.handleCodePairing(n, &children[0])
	case xmlns == "md" && first == "remove-companion-device":
		c.result(n)
		c.s.mu.Lock()
		if c.dev != nil {
			c.s.removeDeviceLocked(c.dev)
		}
		c.s.mu.Unlock()
	default:
		// Everything else (app state, privacy, presence subscriptions...)
		// gets an empty result, so no client call waits for its timeout.
		c.result(n)
	}
}

func (c *conn) preKeyCount() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.dev == nil {
		return 0
	}
	return len(c.dev.preKeys)
}

func (c *conn) storePreKeys(n *waBinary.Node) {
	list, ok := n.GetOptionalChildByTag("list")
	if !ok {
		return
	}
	var got []uploadedPreKey
	for _, k := range list.GetChildren() {
		id, _ := k.GetChildByTag("id").Content.([]byte)
		val, _ := k.GetChildByTag("value").Content.([]byte)
		if len(id) != 3 || len(val) != 32 {
			continue
		}
		got = append(got, uploadedPreKey{id: uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2]), pub: [32]byte(val)})
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.dev != nil {
		c.dev.preKeys = append(c.dev.preKeys, got...)
	}
}

// markReady lets queued messages flow: the client finished its login
// (prekeys, passive/active), as WhatsApp delivers offline messages then.
func (c *conn) markReady() {
	c.s.mu.Lock()
	if c.dev == nil || c.dev.conn != c {
		c.s.mu.Unlock()
		return
	}
	c.ready = true
	// Sent under the lock so a message delivered meanwhile cannot overtake
	// older ones.
	for _, p := range c.dev.pending {
		c.sendNode(p.node)
	}
	c.s.mu.Unlock()
}

func (c *conn) handleReceipt(n *waBinary.Node) {
	ag := n.AttrGetter()
	if ag.OptionalString("type") == "retry" {
		return
	}
	ids := []string{ag.OptionalString("id")}
	if list, ok := n.GetOptionalChildByTag("list"); ok {
		for _, item := range list.GetChildren() {
			ids = append(ids, item.AttrGetter().OptionalString("id"))
		}
	}
	for _, id := range ids {
		c.acknowledge(id)
	}
	// A read receipt for a contact's messages: the contact's phone shows
	// blue ticks (tests read them with Contact.ReadByLinkedDevice).
	if ag.OptionalString("type") == "read" {
		if to, ok := n.Attrs["to"].(types.JID); ok {
			c.s.mu.Lock()
			ct := c.s.contactOfLocked(to)
			c.s.mu.Unlock()
			if ct != nil {
				ct.inboxMu.Lock()
				ct.readByPeer = append(ct.readByPeer, ids...)
				ct.inboxMu.Unlock()
			}
		}
	}
}

// handleChatState shows a contact "typing…" (or its end): tests read
// what it saw with Contact.ChatStates. WhatsApp sends no answer.
func (c *conn) handleChatState(n *waBinary.Node) {
	to, ok := n.Attrs["to"].(types.JID)
	children := n.GetChildren()
	if !ok || len(children) == 0 {
		return
	}
	c.s.mu.Lock()
	ct := c.s.contactOfLocked(to)
	c.s.mu.Unlock()
	if ct != nil {
		ct.inboxMu.Lock()
		ct.chatStates = append(ct.chatStates, children[0].Tag)
		ct.inboxMu.Unlock()
	}
}

// acknowledge drops the oldest pending delivery with id: the client has
// handled it and WhatsApp will not deliver it again.
func (c *conn) acknowledge(id string) {
	if id == "" {
		return
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.dev == nil {
		return
	}
	for i, p := range c.dev.pending {
		if p.id == id {
			c.dev.pending = append(c.dev.pending[:i], c.dev.pending[i+1:]...)
			return
		}
	}
}

// answerGroupInfo describes a group the fake knows (one a contact wrote
// in), or answers 404.
func (c *conn) answerGroupInfo(n *waBinary.Node) {
	to, _ := n.Attrs["to"].(types.JID)
	c.s.mu.Lock()
	members, ok := c.s.groups[to.User]
	members = append([]types.JID(nil), members...)
	c.s.mu.Unlock()
	if !ok {
		c.sendNode(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": n.Attrs["id"], "type": "error", "from": to},
			Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"}}}})
		return
	}
	var parts []waBinary.Node
	for _, m := range members {
		parts = append(parts, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": m}})
	}
	c.sendNode(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": n.Attrs["id"], "type": "result", "from": to},
		Content: []waBinary.Node{{Tag: "group", Attrs: waBinary.Attrs{
			"id": to.User, "subject": "Group " + to.User, "creation": unixString(time.Now()), "creator": members[0],
		}, Content: parts}}})
}
