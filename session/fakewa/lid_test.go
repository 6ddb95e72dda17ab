package fakewa

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// A contact who writes by LID, its number alongside, reaches the client
// from the LID with the number as the alternate sender; whatsmeow stores
// the pair, and a reply to the LID reaches the contact, who acknowledges
// it from the LID.
func TestContactWritesByLID(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	ann.SetAddressing(ByLID)

	id, err := ann.Send("hello by lid")
	if err != nil {
		t.Fatal(err)
	}
	msg := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id })
	if msg.Message.GetConversation() != "hello by lid" || msg.Info.Chat != ann.LID() || msg.Info.Sender.ToNonAD() != ann.LID() || msg.Info.SenderAlt.ToNonAD() != ann.JID() {
		t.Fatalf("message %q in %s from %s (alt %s), want from %s alt %s", msg.Message.GetConversation(), msg.Info.Chat, msg.Info.Sender, msg.Info.SenderAlt, ann.LID(), ann.JID())
	}
	if pn, err := tc.cli.Store.LIDs.GetPNForLID(context.Background(), ann.LID()); err != nil || pn != ann.JID() {
		t.Fatalf("whatsmeow maps %s to %s (%v), want %s", ann.LID(), pn, err, ann.JID())
	}

	resp, err := tc.cli.SendMessage(context.Background(), ann.LID(), &waE2E.Message{Conversation: proto.String("reply to the lid")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ann.Next(10 * time.Second); err != nil || got.Text != "reply to the lid" {
		t.Fatalf("contact got %q (%v)", got.Text, err)
	}
	r := waitFor[*events.Receipt](tc, 10*time.Second, func(r *events.Receipt) bool { return slices.Contains(r.MessageIDs, resp.ID) })
	if r.Chat != ann.LID() {
		t.Fatalf("receipt from %s, want %s", r.Chat, ann.LID())
	}
}

// A contact that began by number cannot switch straight to its LID:
// whatsmeow keeps the session under the number and would not decrypt it.
// One message by number with the LID alongside moves it, as WhatsApp
// does; after that the LID works, with or without the number.
func TestContactMovesFromNumberToLID(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	bob := phone.NewContact("", "Bob")

	send := func(a Addressing, text string, wantChat types.JID) {
		t.Helper()
		bob.SetAddressing(a)
		id, err := bob.Send(text)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		msg := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id })
		if msg.Message.GetConversation() != text || msg.Info.Chat != wantChat {
			t.Fatalf("%s: %q in %s, want %q in %s", a, msg.Message.GetConversation(), msg.Info.Chat, text, wantChat)
		}
	}
	send(ByPhone, "by number", bob.JID())
	bob.SetAddressing(ByLID)
	if _, err := bob.Send("too early"); err == nil || !strings.Contains(err.Error(), "ByPhoneWithLID") {
		t.Fatalf("switching straight to the LID: %v, want a refusal naming ByPhoneWithLID", err)
	}
	send(ByPhoneWithLID, "by number, lid alongside", bob.JID())
	send(ByLID, "by lid", bob.LID())
	send(ByLIDOnly, "by lid alone", bob.LID())
	send(ByPhone, "by number again", bob.JID())
	if n := tc.count(func(e any) bool { _, ok := e.(*events.UndecryptableMessage); return ok }); n != 0 {
		t.Fatalf("%d undecryptable messages", n)
	}
}

// When the client writes first, its session lives where it sent: a
// contact first written to by LID answers by LID; one first written to
// by number must name both before it answers by LID.
func TestClientWritesFirstByLIDOrByNumber(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	cara, dan := phone.NewContact("", "Cara"), phone.NewContact("", "Dan")
	for _, to := range []struct {
		c   *Contact
		jid types.JID
	}{{cara, cara.LID()}, {dan, dan.JID()}} {
		if _, err := tc.cli.SendMessage(context.Background(), to.jid, &waE2E.Message{Conversation: proto.String("hello")}); err != nil {
			t.Fatal(err)
		}
		if got, err := to.c.Next(10 * time.Second); err != nil || got.Text != "hello" {
			t.Fatalf("%s got %q (%v)", to.jid, got.Text, err)
		}
	}
	cara.SetAddressing(ByLIDOnly)
	id, err := cara.Send("answer by lid")
	if err != nil {
		t.Fatal(err)
	}
	if msg := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id }); msg.Message.GetConversation() != "answer by lid" {
		t.Fatalf("got %q", msg.Message.GetConversation())
	}
	dan.SetAddressing(ByLID)
	if _, err := dan.Send("too early"); err == nil {
		t.Fatal("a contact written to by number answered by LID straight away")
	}
	if n := tc.count(func(e any) bool { _, ok := e.(*events.UndecryptableMessage); return ok }); n != 0 {
		t.Fatalf("%d undecryptable messages", n)
	}
}
