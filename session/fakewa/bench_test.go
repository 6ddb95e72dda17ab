package fakewa

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// BenchmarkPairing measures one QR pairing from connect to Connected,
// including the 812-prekey upload and the SQLite store writes.
func BenchmarkPairing(b *testing.B) {
	s := newServer(b, Options{})
	for b.Loop() {
		tc := newClient(b, s, b.TempDir()+"/device.db")
		pair(b, tc, s.NewPhone(""))
		tc.cli.Disconnect()
	}
}

// BenchmarkRoundTrip measures a contact's message to a linked device and
// the device's reply back to the contact, both Signal-encrypted.
func BenchmarkRoundTrip(b *testing.B) {
	s := newServer(b, Options{})
	tc := newClient(b, s, b.TempDir()+"/device.db")
	phone := s.NewPhone("")
	pair(b, tc, phone)
	ann := phone.NewContact("", "Ann")
	tc.cli.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			go tc.cli.SendMessage(context.Background(), m.Info.Chat, &waE2E.Message{Conversation: proto.String("re: " + m.Message.GetConversation())})
		}
	})
	for b.Loop() {
		if _, err := ann.Send("ping"); err != nil {
			b.Fatal(err)
		}
		if _, err := ann.Next(10 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
