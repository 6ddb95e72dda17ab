package bot

import (
	"context"
	"errors"

	"go.mau.fi/whatsmeow/types"

	"wabot/tenant"
)

// sendReply sends a logged bot reply with its id: the rule's attachment,
// uploaded on each try, with the reply as its caption, or else the text.
// A disconnect during the upload is a disconnect of the send (tried again
// with the same id); any other upload error fails the reply. ctx bounds
// a text; a file's upload and send take their own time.
func (t *tenantBot) sendReply(ctx context.Context, chat types.JID, r tenant.Reply) error {
	if r.TextOnly {
		return t.out.SendText(ctx, chat, r.WAID, r.Body)
	}
	md, err := t.b.store.MessageMediaOf(ctx, t.id, r.ID)
	if errors.Is(err, tenant.ErrNotFound) {
		return t.out.SendText(ctx, chat, r.WAID, r.Body)
	}
	if err != nil {
		return err
	}
	msg, err := t.uploadMedia(md, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.b.opts.SendTimeout)
	defer cancel()
	return t.out.SendMessage(ctx, chat, r.WAID, msg)
}
