package bot

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// WhatsApp addresses people by linked ids (…@lid) more and more; the
// real whatsmeow client receives them from the fake as WhatsApp sends
// them, and the log must keep one conversation per person.

// A person who writes by number, then by LID with the number alongside,
// then by LID alone (whatsmeow learned the pair earlier), is one chat:
// every message and reply is logged under the number, the welcome comes
// once, {{phone}} is the number, and every reply reaches the person.
func TestAPersonWritingByNumberAndByLIDIsOneChat(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "Hi {{name}}, we have {{phone}}"})
	cfg.WelcomeReply = "Welcome, {{name}}."
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("15550004242", "Ann")
	const number = "+15550004242"

	// By number, with the LID alongside: how WhatsApp tells a client the
	// pair before it addresses the person by LID.
	ann.SetAddressing(fakewa.ByPhoneWithLID)
	if _, err := ann.Send("hi by number"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "Welcome, Ann.")
	expect(t, ann, "Hi Ann, we have "+number)

	ann.SetAddressing(fakewa.ByLID)
	if _, err := ann.Send("hi by lid"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "Hi Ann, we have "+number) // no second welcome: the same chat

	// No number in the message: whatsmeow's LID store has it.
	ann.SetAddressing(fakewa.ByLIDOnly)
	if _, err := ann.Send("hi by lid alone"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "Hi Ann, we have "+number)

	ms := r.waitLogs(id, "three messages answered", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied) == 3 && count(ms, "out", tenant.MsgReplied) == 4
	})
	for _, m := range ms {
		if m.Chat != ann.JID().String() {
			t.Errorf("%s %q logged in chat %s, want %s", m.Direction, m.Body, m.Chat, ann.JID())
		}
		if m.Direction == "in" && (m.Sender != ann.JID().String() || tenant.PhoneOf(m.Sender) != number) {
			t.Errorf("%q logged from %s, want %s", m.Body, m.Sender, ann.JID())
		}
	}
	expectNothing(t, ann, 500*time.Millisecond)
}

// A LID whose number whatsmeow does not know is kept: the message is
// stored and answered under the LID, and {{phone}} stays empty rather
// than show the LID as a number. Once a message brings the number, the
// LID's earlier messages move under it: still one chat, welcomed once.
func TestALIDWithNoKnownNumberIsAnsweredUnderTheLIDUntilTheNumberComes(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "Hi {{name}} [{{phone}}]"})
	cfg.WelcomeReply = "Welcome, {{name}}."
	id, phone := r.tenant(cfg)
	bob := phone.NewContact("15550005151", "Bob")
	bob.SetAddressing(fakewa.ByLIDOnly)
	if _, err := bob.Send("hi"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, "Welcome, Bob.")
	expect(t, bob, "Hi Bob []")
	ms := r.waitLogs(id, "the message answered", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied) == 1 && count(ms, "out", tenant.MsgReplied) == 2
	})
	for _, m := range ms {
		if m.Chat != bob.LID().String() {
			t.Errorf("%s %q logged in chat %s, want the LID %s", m.Direction, m.Body, m.Chat, bob.LID())
		}
	}

	bob.SetAddressing(fakewa.ByLID) // the number comes along
	if _, err := bob.Send("hi again"); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, "Hi Bob [+15550005151]")
	ms = r.waitLogs(id, "the second message answered", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied) == 2 && count(ms, "out", tenant.MsgReplied) == 3
	})
	for _, m := range ms {
		if m.Chat != bob.JID().String() {
			t.Errorf("%s %q logged in chat %s, want %s", m.Direction, m.Body, m.Chat, bob.JID())
		}
	}
	expectNothing(t, bob, 500*time.Millisecond)
}

// In a group a member who writes by LID, the number alongside, is logged
// by number, and {{phone}} is the number.
func TestAGroupMemberWritingByLIDIsLoggedByNumber(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hello", Reply: "hi {{phone}}"})
	cfg.ReplyInGroups = true
	id, phone := r.tenant(cfg)
	group, _ := types.ParseJID("120363000000000002@g.us")
	ann := phone.NewContact("15550006363", "Ann")
	ann.SetAddressing(fakewa.ByLID)
	if _, err := ann.SendGroup(group, "hello group"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "hi +15550006363")
	ms := r.waitLogs(id, "the group message answered", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied) == 1 && count(ms, "out", tenant.MsgReplied) == 1
	})
	if in := ms[0]; in.Chat != group.String() || in.Sender != ann.JID().String() {
		t.Fatalf("the group message logged in %s from %s, want %s from %s", in.Chat, in.Sender, group, ann.JID())
	}
}
