package bot

import (
	"context"
	"errors"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"wabot/session"
	"wabot/tenant"
)

// Inbound: classify an incoming message and store it before whatsmeow
// acknowledges it, then hand it to its chat's queue.

// inbound is what the pipeline keeps of an incoming message.
type inbound struct {
	id       int64
	chat     types.JID
	sender   types.JID
	name     string
	text     string
	kind     string
	waID     string
	isGroup  bool
	at       time.Time
	status   tenant.MessageStatus
	errorMsg string
	media    *tenant.MessageMedia // a media message's file, location or contact
}

// HandleMessage runs on whatsmeow's event goroutine: it classifies and
// stores the message and queues it, never waiting on the answer. Returning
// false (storage failed) leaves the message unacknowledged, so WhatsApp
// delivers it again.
func (t *tenantBot) HandleMessage(evt *events.Message) bool {
	info := evt.Info
	if info.IsFromMe || info.Chat.Server == types.BroadcastServer || info.Chat.Server == types.NewsletterServer {
		return true // status updates, broadcasts and our own messages are not for the bot
	}
	media := mediaOf(evt.Message)
	kind, text := classify(evt, media)
	if kind == "" {
		return true // protocol traffic (key shares, history sync, revokes...)
	}
	chat, sender := t.byPhone(info)
	in := inbound{
		chat: chat, sender: sender, name: info.PushName, text: text, kind: kind,
		waID: info.ID, isGroup: info.IsGroup, at: info.Timestamp, status: tenant.MsgReceived,
	}
	if in.at.IsZero() {
		in.at = time.Now()
	}
	in.media = media
	cfg := t.cfg.Load()
	switch {
	case !answerable(kind):
		in.status, in.errorMsg = tenant.MsgIgnored, kind+" messages are not answered"
	case in.isGroup && !cfg.ReplyInGroups:
		in.status, in.errorMsg = tenant.MsgIgnored, "group chats are not answered"
	}
	id, dup, err := t.storeInbound(&in)
	if err != nil {
		t.log.Error("cannot store an incoming message; WhatsApp will deliver it again", "err", err)
		return false
	}
	switch {
	case dup:
		t.b.opts.Observer.Message("in", tenant.MsgDuplicate)
	default:
		t.b.opts.Observer.Message("in", in.status)
	}
	if dup || in.status != tenant.MsgReceived {
		return true
	}
	t.enqueue(in.chat.String(), id, true, asStored(in, id))
	return true
}

// byPhone returns the message's chat and sender by phone number when the
// sender is a linked id (@lid) whose number whatsmeow knows: from the
// message's alternate sender, else from whatsmeow's LID store. One person
// is then one chat, whichever way WhatsApp addressed them, {{phone}} is a
// number, and replies go to the number (whatsmeow encrypts them for the
// LID's session). An unknown LID stays as it is: the message is kept and
// answered under the LID.
func (t *tenantBot) byPhone(info types.MessageInfo) (chat, sender types.JID) {
	chat, sender = info.Chat, info.Sender
	if sender.Server != types.HiddenUserServer {
		return chat, sender
	}
	pn := info.SenderAlt
	if pn.Server != types.DefaultUserServer {
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		var err error
		pn, err = t.out.PhoneOfLID(ctx, sender.ToNonAD())
		cancel()
		if err != nil {
			t.log.Warn("cannot look up the phone number of a linked id; keeping the LID", "lid", sender.ToNonAD().String(), "err", err)
			return chat, sender
		}
	}
	if pn.Server != types.DefaultUserServer || pn.User == "" {
		t.log.Debug("no phone number known for a linked id; keeping the LID", "lid", sender.ToNonAD().String())
		return chat, sender
	}
	pn = types.JID{User: pn.User, Server: types.DefaultUserServer, Device: sender.Device}
	if !info.IsGroup {
		chat = pn.ToNonAD() // a 1:1 chat is the sender
		t.mergeLIDChat(sender.ToNonAD(), chat)
	}
	return chat, pn
}

// mergeLIDChat moves what was stored under lid before its number was
// known (a person who first wrote by LID alone) into the number's chat,
// once per LID and run: the person stays one conversation.
func (t *tenantBot) mergeLIDChat(lid, pn types.JID) {
	t.mu.Lock()
	done := t.merged[lid]
	t.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	moved, err := t.b.store.MergeChat(ctx, t.id, lid.String(), pn.String())
	if err != nil {
		t.log.Warn("cannot merge a linked id's chat into its number's", "lid", lid.String(), "err", err)
		return // tried again with the next message
	}
	t.mu.Lock()
	if len(t.merged) > 10000 {
		t.merged = map[types.JID]bool{} // a bound; merging again finds nothing to move
	}
	t.merged[lid] = true
	t.mu.Unlock()
	if moved > 0 {
		t.log.Info("merged a linked id's chat into its number's", "lid", lid.String(), "chat", pn.String(), "messages", moved)
	}
}

// answerable reports whether the bot answers messages of kind: texts and
// media (rules see a caption, or the kind alone), not reactions, edits or
// polls.
func answerable(kind string) bool {
	switch kind {
	case "text", "image", "video", "audio", "voice", "document", "sticker", "location", "contact":
		return true
	}
	return false
}

// classify returns the kind of a message and its text (a media message's
// caption); an empty kind means it is not a message a person sent.
func classify(evt *events.Message, media *tenant.MessageMedia) (kind, text string) {
	m := evt.Message
	if evt.IsEdit {
		return "edit", m.GetProtocolMessage().GetEditedMessage().GetConversation()
	}
	switch {
	case m.GetConversation() != "":
		return "text", m.GetConversation()
	case m.GetExtendedTextMessage() != nil:
		return "text", m.GetExtendedTextMessage().GetText()
	case m.GetReactionMessage() != nil:
		return "reaction", m.GetReactionMessage().GetText()
	case media != nil:
		return string(media.Kind), mediaText(media)
	case m.GetPollCreationMessage() != nil, m.GetPollCreationMessageV3() != nil, m.GetPollUpdateMessage() != nil:
		return "poll", ""
	case m.GetProtocolMessage() != nil, m.GetSenderKeyDistributionMessage() != nil:
		// Key shares, history sync, revokes: whatsmeow's business. A group
		// message's text comes as its own event with the same id.
		return "", ""
	}
	return "other", ""
}

// withheldReason is logged for a message whose contents were not stored.
const withheldReason = "contents not stored: the workspace awaits an administrator's approval"

// storeInbound writes the inbound row; a message already stored (same
// chat and id) is logged once more as a duplicate and not answered. A
// busy or failing database is tried again for up to StoreRetryFor:
// WhatsApp delivers an unacknowledged message again only after a
// reconnect, which may be days away. A lease lost to another instance
// (tenant.ErrLeaseLost) is not retried.
//
// A workspace awaiting approval may link a number, but its messages are
// logged without their contents and not answered: an unapproved sign-up
// must not be a way to read someone's messages (a phished QR code or
// pairing code). in is marked ignored then.
func (t *tenantBot) storeInbound(in *inbound) (id int64, dup bool, err error) {
	deadline := time.Now().Add(t.b.opts.StoreRetryFor)
	for attempt := 1; ; attempt++ {
		var approved bool
		if approved, err = t.approved(); err == nil {
			if !approved {
				in.text, in.status, in.errorMsg = "", tenant.MsgIgnored, withheldReason
			}
			row := tenant.Inbound{
				Chat: in.chat.String(), Sender: in.sender.ToNonAD().String(), SenderName: in.name,
				WAID: in.waID, Kind: in.kind, Body: in.text, Status: in.status, Error: in.errorMsg,
			}
			if in.status == tenant.MsgReceived {
				// Ignored messages (groups not answered) and withheld
				// ones keep no media: nothing is downloaded for them.
				row.Media = in.media
			}
			ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
			id, dup, err = t.b.store.StoreInbound(ctx, t.id, row)
			cancel()
		}
		// A lease that moved never comes back to this session: the
		// message, unacknowledged, goes to the new owner, and this
		// session must stop now instead of retrying on whatsmeow's
		// event goroutine.
		if err == nil || t.ctx.Err() != nil || errors.Is(err, tenant.ErrLeaseLost) {
			return id, dup, err
		}
		wait := session.Backoff(500*time.Millisecond, 10*time.Second, attempt)
		if time.Now().Add(wait).After(deadline) {
			return 0, false, err
		}
		t.log.Warn("cannot store an incoming message; trying again", "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-t.ctx.Done():
			return 0, false, t.ctx.Err()
		}
	}
}

// asStored is in as load would read it back, or nil when the log keeps
// less of it (a body or name cut to the log's bounds).
func asStored(in inbound, id int64) *inbound {
	if len(in.text) > tenant.MaxBodyBytes || len(in.name) > tenant.MaxNameBytes {
		return nil
	}
	in.id, in.sender, in.media, in.at = id, in.sender.ToNonAD(), nil, time.Now()
	return &in
}

func (t *tenantBot) load(id int64) (inbound, error) {
	row, err := t.b.store.InboundByID(t.ctx, t.id, id)
	if err != nil {
		return inbound{}, err
	}
	in := inbound{id: row.ID, name: row.SenderName, text: row.Body, kind: row.Kind, waID: row.WAID, status: row.Status, errorMsg: row.Error, at: row.CreatedAt}
	in.chat, _ = types.ParseJID(row.Chat)
	in.sender, _ = types.ParseJID(row.Sender)
	in.isGroup = in.chat.Server == types.GroupServer
	return in, nil
}

func (t *tenantBot) setInbound(id int64, status tenant.MessageStatus, reason string) {
	t.b.opts.Observer.Message("in", status)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
	defer cancel()
	if err := t.b.store.SetInboundStatus(ctx, id, status, reason); err != nil {
		t.log.Error("cannot update a message's status", "err", err)
	}
}
