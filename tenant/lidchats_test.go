package tenant_test

import (
	"context"
	"testing"

	"wabot/tenant"
)

// A person first known only by LID, then by number, is one chat: the
// LID's messages, welcome and state move under the number; an inbound
// message stored under both stays put; another tenant's chat with the
// same LID is not touched.
func TestMergeChatMovesALIDChatUnderTheNumber(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	const lid, pn = "123456789012345@lid", "15550001111@s.whatsapp.net"

	in := storeIn(t, st, a.ID, tenant.Inbound{Chat: lid, Sender: lid, SenderName: "Ann", WAID: "W1", Body: "hi by lid"})
	if _, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: in, Chat: lid, Body: "hello", Status: tenant.MsgReplied, WAID: "R1", Sender: "15550009999@s.whatsapp.net"}); err != nil {
		t.Fatal(err)
	}
	storeIn(t, st, a.ID, tenant.Inbound{Chat: lid, Sender: lid, WAID: "W2", Body: "twice"})
	storeIn(t, st, a.ID, tenant.Inbound{Chat: pn, Sender: pn, WAID: "W2", Body: "twice"})
	storeIn(t, st, b.ID, tenant.Inbound{Chat: lid, Sender: lid, WAID: "W1", Body: "other tenant"})
	if _, err := st.MarkWelcomed(ctx, a.ID, lid); err != nil {
		t.Fatal(err)
	}
	if err := st.PauseBot(ctx, a.ID, lid, tenant.PausedByKeyword, true); err != nil {
		t.Fatal(err)
	}

	moved, err := st.MergeChat(ctx, a.ID, lid, pn)
	if err != nil || moved != 2 {
		t.Fatalf("MergeChat = %d, %v; want 2 moved", moved, err)
	}
	ms, _, err := st.Messages(ctx, a.ID, tenant.MessageQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		want := pn
		if m.WAID == "W2" && m.Chat == lid {
			want = lid // the copy under the number is the one kept
		}
		if m.Chat != want || m.Direction == "in" && m.Sender != want {
			t.Errorf("%s %q in %s from %s, want %s", m.Direction, m.Body, m.Chat, m.Sender, want)
		}
	}
	if first, _ := st.MarkWelcomed(ctx, a.ID, pn); first {
		t.Error("the number's chat was welcomed again")
	}
	if c, _ := st.ChatStateOf(ctx, a.ID, pn); !c.BotPaused || !c.Waiting {
		t.Errorf("the paused bot did not move: %+v", c)
	}
	if c, _ := st.ChatStateOf(ctx, a.ID, lid); c.BotPaused {
		t.Errorf("the LID's chat kept its state: %+v", c)
	}
	other, _, _ := st.Messages(ctx, b.ID, tenant.MessageQuery{Limit: 50})
	if len(other) != 1 || other[0].Chat != lid {
		t.Errorf("tenant B's chat moved: %+v", other)
	}
	if _, err := st.MergeChat(ctx, a.ID, pn, lid); err == nil {
		t.Error("a number merged into a LID")
	}
}
