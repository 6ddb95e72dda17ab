package fakewa

import (
	"errors"
	"slices"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Receipts and contact lookups: a contact's phone acknowledges every
// message it decrypts with a delivery receipt, reads messages when a test
// (or the demo's control route) says so, and the server answers
// IsOnWhatsApp for the numbers it knows.

// deliveryReceipt tells the sending device that contact's phone got
// message id: <receipt from=contact id t/>, which whatsmeow surfaces as
// events.Receipt with Type "" (delivered). In a group the receipt names
// the group and the member.
func (s *Server) deliveryReceipt(d *device, contact *Contact, chat types.JID, id string) {
	attrs := waBinary.Attrs{"from": contact.jid, "id": id, "t": unixString(time.Now())}
	if chat.Server == types.HiddenUserServer {
		attrs["from"] = contact.lid // the receipt comes from the address the message went to
	}
	if chat.Server == types.GroupServer {
		attrs["from"], attrs["participant"] = chat, contact.jid
	}
	s.deliver(d, id, waBinary.Node{Tag: "receipt", Attrs: attrs})
}

// Read makes the contact read messages the linked devices sent it, as when
// its user opens the chat: every device of the number gets one read
// receipt (type "read") listing the ids. Without ids it reads everything
// received and not read yet. It returns the ids it read.
func (c *Contact) Read(ids ...string) ([]string, error) {
	c.inboxMu.Lock()
	if len(ids) == 0 {
		ids = slices.Clone(c.unread)
	}
	c.unread = slices.DeleteFunc(c.unread, func(id string) bool { return slices.Contains(ids, id) })
	c.inboxMu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	devs := c.s.devicesOf(c.phone)
	if len(devs) == 0 {
		return nil, errors.New("fakewa: the number has no linked device")
	}
	attrs := waBinary.Attrs{"from": c.jid, "id": ids[0], "t": unixString(time.Now()), "type": "read"}
	node := waBinary.Node{Tag: "receipt", Attrs: attrs}
	if len(ids) > 1 {
		items := make([]waBinary.Node, 0, len(ids)-1)
		for _, id := range ids[1:] {
			items = append(items, waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}})
		}
		node.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	for _, d := range devs {
		c.s.deliver(d, ids[0], node)
	}
	return ids, nil
}

// Phone is the number the contact writes to.
func (c *Contact) Phone() *Phone { return c.phone }

// Contact returns the contact with number (digits, "+" allowed), or nil.
func (s *Server) Contact(number string) *Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contacts[strings.TrimPrefix(number, "+")]
}

// usyncContacts answers IsOnWhatsApp's query: each <user><contact>+number@c.us</contact></user>
// gets type "in" when the number is a contact or a phone the fake knows,
// "out" otherwise, always with a jid so the client keeps the entry.
func (s *Server) usyncContacts(list waBinary.Node) waBinary.Node {
	var users []waBinary.Node
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range list.GetChildren() {
		cn, ok := u.GetOptionalChildByTag("contact")
		if !ok {
			continue
		}
		query, _ := cn.Content.([]byte)
		number := strings.TrimPrefix(strings.TrimSuffix(string(query), "@c.us"), "+")
		typ := "out"
		if s.contacts[number] != nil || s.phones[number] != nil {
			typ = "in"
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": types.NewJID(number, types.DefaultUserServer)},
			Content: []waBinary.Node{{Tag: "contact", Attrs: waBinary.Attrs{"type": typ}, Content: query}}})
	}
	return waBinary.Node{Tag: "usync", Content: []waBinary.Node{{Tag: "list", Content: users}}}
}
