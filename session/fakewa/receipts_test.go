package fakewa

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// A contact who never wrote gets a message, its phone acknowledges
// delivery at once, and reading it sends a read receipt: the client sees
// both as events.Receipt for the message's id.
func TestReceiptsDeliveredThenRead(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	carl := phone.NewContact("", "Carl") // known to WhatsApp, silent so far

	var ids []string
	for _, text := range []string{"your order shipped", "tracking: 42"} {
		resp, err := tc.cli.SendMessage(context.Background(), carl.JID(), &waE2E.Message{Conversation: proto.String(text)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := carl.Next(10 * time.Second)
		if err != nil || got.Text != text {
			t.Fatalf("contact got %q (%v), want %q", got.Text, err, text)
		}
		ids = append(ids, resp.ID)
	}
	for _, id := range ids {
		r := waitFor[*events.Receipt](tc, 10*time.Second, func(r *events.Receipt) bool { return slices.Contains(r.MessageIDs, id) })
		if r.Type != types.ReceiptTypeDelivered || r.Chat.User != carl.JID().User {
			t.Fatalf("receipt for %s: type %q chat %s, want delivered from %s", id, r.Type, r.Chat, carl.JID())
		}
	}
	if n := tc.count(func(e any) bool { r, ok := e.(*events.Receipt); return ok && r.Type == types.ReceiptTypeRead }); n != 0 {
		t.Fatalf("%d read receipts before the contact read anything", n)
	}

	read, err := carl.Read()
	if err != nil || !slices.Equal(read, ids) {
		t.Fatalf("read %v (%v), want %v", read, err, ids)
	}
	r := waitFor[*events.Receipt](tc, 10*time.Second, func(r *events.Receipt) bool { return r.Type == types.ReceiptTypeRead })
	if !slices.Equal(r.MessageIDs, ids) || r.Chat.User != carl.JID().User {
		t.Fatalf("read receipt for %v in %s, want %v", r.MessageIDs, r.Chat, ids)
	}
	if again, _ := carl.Read(); len(again) != 0 {
		t.Fatalf("read %v again", again)
	}
}

// IsOnWhatsApp answers true for the fake's contacts and phones and false
// for numbers it does not know.
func TestIsOnWhatsApp(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	dana := phone.NewContact("14440009999", "Dana")
	other := s.NewPhone("")

	res, err := tc.cli.IsOnWhatsApp(context.Background(), []string{"+" + dana.JID().User, "+19990000001", "+" + other.Number()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range res {
		got[r.Query] = r.IsIn
		if r.IsIn && r.JID.User == "" {
			t.Fatalf("%s is on WhatsApp without a JID", r.Query)
		}
	}
	want := map[string]bool{"+14440009999": true, "+19990000001": false, "+" + other.Number(): true}
	if len(got) != len(want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	for q, in := range want {
		if got[q] != in {
			t.Fatalf("answers %v, want %v", got, want)
		}
	}
}
