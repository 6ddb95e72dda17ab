package fakewa

import (
	"fmt"
	mrand "math/rand/v2"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// LID addressing: WhatsApp names more and more people by a linked id
// (<lid>@lid) instead of their number. Each contact has one; its messages
// come from the number, the LID, or one with the other alongside, as a
// test chooses. The contact's Signal session with a device does not
// change with the address, but whatsmeow keeps its side of the session
// under the address it decrypts as, and moves it from the number to the
// LID only when a message from the number names the LID (or the pair is
// stored already). The fake follows where whatsmeow keeps it, so a send
// that whatsmeow could not decrypt fails here with the reason instead.

// Addressing is how a contact's 1:1 messages name their sender.
type Addressing int

const (
	// ByPhone sends from=<number>@s.whatsapp.net, as before LIDs; the
	// default.
	ByPhone Addressing = iota
	// ByPhoneWithLID adds sender_lid=<lid>@lid: the client stores the
	// pair and moves the session to the LID.
	ByPhoneWithLID
	// ByLID sends from=<lid>@lid with sender_pn=<number> as the
	// alternate sender, as WhatsApp does for most LID messages.
	ByLID
	// ByLIDOnly sends from=<lid>@lid without the number: the client knows
	// the number only if it stored the pair earlier.
	ByLIDOnly
)

func (a Addressing) String() string {
	switch a {
	case ByPhone:
		return "ByPhone"
	case ByPhoneWithLID:
		return "ByPhoneWithLID"
	case ByLID:
		return "ByLID"
	case ByLIDOnly:
		return "ByLIDOnly"
	}
	return fmt.Sprintf("Addressing(%d)", int(a))
}

// clientView is what a linked device's whatsmeow knows of a contact.
type clientView struct {
	session string // "", "pn" or "lid": the address it keeps the session under
	mapped  bool   // it stored the LID↔number pair
}

// LID is the contact's linked id (<digits>@lid).
func (c *Contact) LID() types.JID { return c.lid }

// SetAddressing sets how the contact's next messages name it.
func (c *Contact) SetAddressing(a Addressing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addressing = a
}

// address returns the sender attributes of a message to d and records
// what d's client learns from it. It refuses a message the client could
// not decrypt: a LID message when the client keeps the session under the
// number (it moves it only on a ByPhoneWithLID message), or a number
// message when it keeps it under a LID it cannot tie to the number.
func (c *Contact) address(d *device) (waBinary.Attrs, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.views[d.jid]
	if v == nil {
		v = &clientView{}
		c.views[d.jid] = v
	}
	attrs := waBinary.Attrs{}
	mapped := v.mapped
	switch c.addressing {
	case ByPhone:
		attrs["from"] = c.jid
	case ByPhoneWithLID:
		attrs["from"], attrs["sender_lid"] = c.jid, c.lid
		mapped = true
	case ByLID:
		attrs["from"], attrs["sender_pn"] = c.lid, c.jid
		mapped = true
	case ByLIDOnly:
		attrs["from"] = c.lid
	}
	fromPN := c.addressing == ByPhone || c.addressing == ByPhoneWithLID
	// Where the client decrypts: a message from the number moves the
	// session to the LID when the client knows the pair.
	at, session := "lid", v.session
	if fromPN && !mapped {
		at = "pn"
	}
	if fromPN && mapped && session == "pn" {
		session = "lid"
	}
	switch {
	case session == "":
		session = at // a pkmsg starts the session where the client decrypts
	case session != at && at == "lid":
		return nil, fmt.Errorf("fakewa: %s cannot write %s yet: %s keeps its session under the number; send one message ByPhoneWithLID first, as WhatsApp does", c.jid.User, c.addressing, d.jid)
	case session != at:
		return nil, fmt.Errorf("fakewa: %s cannot write %s: %s keeps its session under the LID and does not know the number", c.jid.User, c.addressing, d.jid)
	}
	v.session, v.mapped = session, mapped
	return attrs, nil
}

// groupAddress is address for a group message: the sender is the
// participant, and a LID participant comes with addressing_mode="lid"
// and the number as participant_pn.
func (c *Contact) groupAddress(d *device) (waBinary.Attrs, error) {
	a, err := c.address(d)
	if err != nil {
		return nil, err
	}
	out := waBinary.Attrs{"participant": a["from"]}
	if lid, ok := a["sender_lid"]; ok {
		out["participant_lid"] = lid
	}
	if pn, ok := a["sender_pn"]; ok {
		out["participant_pn"] = pn
	}
	if from, _ := a["from"].(types.JID); from.Server == types.HiddenUserServer {
		out["addressing_mode"] = "lid"
	}
	return out, nil
}

// sawSession records where d's client keeps the session it used to send
// to the contact at jid: a client that wrote first starts it there (under
// the LID when it sends to the number and knows the pair).
func (c *Contact) sawSession(d *device, jid types.JID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.views[d.jid]
	if v == nil {
		v = &clientView{}
		c.views[d.jid] = v
	}
	if v.session != "" {
		return
	}
	v.session = "pn"
	if jid.Server == types.HiddenUserServer || v.mapped {
		v.session = "lid"
	}
}

// newLIDLocked picks a LID user no contact has.
func (s *Server) newLIDLocked() types.JID {
	for {
		user := fmt.Sprintf("%d", 100000000000000+mrand.Int64N(800000000000000))
		if s.lidContacts[user] == nil {
			return types.NewJID(user, types.HiddenUserServer)
		}
	}
}

// contactOfLocked finds a contact by its number's or its LID's JID.
func (s *Server) contactOfLocked(jid types.JID) *Contact {
	if jid.Server == types.HiddenUserServer {
		return s.lidContacts[jid.User]
	}
	return s.contacts[jid.User]
}
