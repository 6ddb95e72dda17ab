package bot

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wabot/tenant"
)

// ReadReceipts tells the customers' WhatsApp that a person read msgs (the
// inbound ones among them) in chat, when the tenant's configuration asks
// for it. It does not wait: the receipts go out in the background, and a
// session that is offline sends none (reading stays recorded in wabot).
func (b *Bot) ReadReceipts(tenantID, chat string, msgs []tenant.Message) {
	t := b.tenant(tenantID)
	if t == nil || !t.cfg.Load().ReadReceipts || !t.online.Load() {
		return
	}
	chatJID, err := types.ParseJID(chat)
	if err != nil {
		return
	}
	bySender := map[string][]string{}
	for _, m := range msgs {
		if m.Direction == "in" && m.WAID != "" && m.Status != tenant.MsgDuplicate {
			bySender[m.Sender] = append(bySender[m.Sender], m.WAID)
		}
	}
	if len(bySender) == 0 {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
		defer cancel()
		for sender, ids := range bySender {
			senderJID, err := types.ParseJID(sender)
			if err != nil {
				continue
			}
			if err := t.out.MarkRead(ctx, chatJID, senderJID, ids); err != nil && t.ctx.Err() == nil {
				t.log.Warn("cannot send read receipts", "chat", chat, "err", err)
			}
		}
	}()
}
