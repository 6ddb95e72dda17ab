package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// The supervisor is the pipeline's Sender: it sends through whichever
// client generation is live when a reply goes out.

// ErrOffline means the tenant's client is not logged in right now.
var ErrOffline = errors.New("the WhatsApp session is not connected")

// liveClient is the current client, or nil between generations. Safe from
// any goroutine.
func (s *supervisor) liveClient() *whatsmeow.Client {
	s.currentMu.RLock()
	defer s.currentMu.RUnlock()
	return s.current
}

// SendText sends a text message with a fixed id.
func (s *supervisor) SendText(ctx context.Context, chat types.JID, id, text string) error {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return ErrOffline
	}
	s.signalMu.Lock() // see signal.go
	defer s.signalMu.Unlock()
	_, err := cli.SendMessage(ctx, chat, &waE2E.Message{Conversation: &text}, whatsmeow.SendRequestExtra{ID: id, Timeout: 30 * time.Second})
	return s.sendErr(cli, err)
}

// SendMessage sends any message with a fixed id.
func (s *supervisor) SendMessage(ctx context.Context, chat types.JID, id string, msg *waE2E.Message) error {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return ErrOffline
	}
	s.signalMu.Lock() // see signal.go
	defer s.signalMu.Unlock()
	_, err := cli.SendMessage(ctx, chat, msg, whatsmeow.SendRequestExtra{ID: id, Timeout: 30 * time.Second})
	return s.sendErr(cli, err)
}

// sendErr is ErrOffline for a send whose client was torn down under it
// (a restart, or the tenant moving to another instance): its device
// store is closed by then, and the reply must wait for the next client,
// here or on the new owner, not fail for good.
func (s *supervisor) sendErr(cli *whatsmeow.Client, err error) error {
	if err != nil && s.liveClient() != cli {
		return fmt.Errorf("%w (the client was replaced during the send: %v)", ErrOffline, err)
	}
	return err
}

// Typing sets the chat presence the recipient sees.
func (s *supervisor) Typing(ctx context.Context, chat types.JID, on bool) error {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return ErrOffline
	}
	state := types.ChatPresencePaused
	if on {
		state = types.ChatPresenceComposing
	}
	return cli.SendChatPresence(ctx, chat, state, types.ChatPresenceMediaText)
}

// IsOnWhatsApp asks WhatsApp which numbers have an account.
func (s *supervisor) IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error) {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return nil, ErrOffline
	}
	return cli.IsOnWhatsApp(ctx, phones)
}

// DownloadToFile fetches and decrypts a media message's file into file.
func (s *supervisor) DownloadToFile(ctx context.Context, msg whatsmeow.DownloadableMessage, file *os.File) error {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return ErrOffline
	}
	return cli.DownloadToFile(ctx, msg, file)
}

// Upload encrypts and uploads a file for a media message.
func (s *supervisor) Upload(ctx context.Context, data []byte, kind whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return whatsmeow.UploadResponse{}, ErrOffline
	}
	return cli.Upload(ctx, data, kind)
}

// MarkRead sends a read receipt for messages of sender in chat.
func (s *supervisor) MarkRead(ctx context.Context, chat, sender types.JID, ids []string) error {
	cli := s.liveClient()
	if cli == nil || !cli.IsLoggedIn() {
		return ErrOffline
	}
	return cli.MarkRead(ctx, ids, time.Now(), chat, sender)
}

// NewMessageID returns an id in WhatsApp's format.
func (s *supervisor) NewMessageID() string {
	if cli := s.liveClient(); cli != nil {
		return cli.GenerateMessageID()
	}
	return whatsmeow.GenerateMessageID()
}

// OwnJID is the linked number.
func (s *supervisor) OwnJID() types.JID {
	if cli := s.liveClient(); cli != nil && cli.Store.ID != nil {
		return cli.Store.ID.ToNonAD()
	}
	return types.EmptyJID
}

// PhoneOfLID looks lid up in whatsmeow's LID store, which whatsmeow fills
// from messages' alternate senders, user info and history sync.
func (s *supervisor) PhoneOfLID(ctx context.Context, lid types.JID) (types.JID, error) {
	cli := s.liveClient()
	if cli == nil || cli.Store == nil || cli.Store.LIDs == nil {
		return types.EmptyJID, ErrOffline
	}
	return cli.Store.LIDs.GetPNForLID(ctx, lid)
}
