package bot

import (
	"fmt"
	"time"

	"wabot/session"
	"wabot/tenant"

	"go.mau.fi/whatsmeow/types"
)

// The per-chat queue: one worker goroutine per chat with waiting
// messages answers them in order, at most ParallelChats chats at once.

// chatQueue holds one chat's stored messages in arrival order; a worker
// goroutine exists while it is not empty.
type chatQueue struct {
	items    []queued
	running  bool
	busySent bool // one busy reply per overflow
}

// queued is a stored message waiting in its chat's queue: its id and, for
// one stored moments ago by this run, the message as stored, so that
// answering it reads nothing back.
type queued struct {
	id int64
	in *inbound // nil: read it from the log
}

// enqueue adds a stored message to its chat's queue. When the queue is
// full the message is logged as dropped and the chat gets one busy reply.
// in is the message as just stored (nil when it comes from the log).
func (t *tenantBot) enqueue(chat string, id int64, fresh bool, in *inbound) {
	cfg := t.cfg.Load()
	t.mu.Lock()
	q := t.chats[chat]
	if q == nil {
		q = &chatQueue{}
		t.chats[chat] = q
	}
	if fresh && len(q.items) >= cfg.Limits.QueuePerChat {
		sendBusy := !q.busySent
		q.busySent = true
		t.mu.Unlock()
		t.setInbound(id, tenant.MsgDropped, "the chat's queue was full")
		if sendBusy && cfg.BusyReply != "" {
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				t.sendBusy(id, chat, cfg.BusyReply)
			}()
		}
		return
	}
	if in != nil && t.resumed[id] {
		in = nil // queued twice (stored as this run began): read back, so it is answered once
	}
	q.items = append(q.items, queued{id: id, in: in})
	start := !q.running
	q.running = true
	t.mu.Unlock()
	if start {
		t.wg.Add(1)
		go t.chatWorker(chat)
	}
}

// chatWorker answers one chat's messages in order, then exits. The
// message being answered is no longer in the queue: the queue bound counts
// waiting messages.
func (t *tenantBot) chatWorker(chat string) {
	defer t.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("chat worker panicked; its messages stay stored and are retried at the next start", "panic", fmt.Sprint(r))
			t.mu.Lock()
			if q := t.chats[chat]; q != nil {
				q.running = false
			}
			t.mu.Unlock()
		}
	}()
	for {
		t.mu.Lock()
		q := t.chats[chat]
		if len(q.items) == 0 || t.ctx.Err() != nil {
			q.running = false
			if len(q.items) == 0 {
				delete(t.chats, chat)
			}
			t.mu.Unlock()
			return
		}
		item := q.items[0]
		q.items = q.items[1:]
		t.mu.Unlock()

		t.answer(item)
		t.mu.Lock()
		if len(q.items) < t.cfg.Load().Limits.QueuePerChat {
			q.busySent = false
		}
		t.mu.Unlock()
	}
}

// answer processes one message, at most ParallelChats of the tenant's
// chats at a time, trying again with backoff after a transient error
// (the message stays stored as received meanwhile).
func (t *tenantBot) answer(item queued) {
	for attempt := 1; ; attempt++ {
		select {
		case t.sem <- struct{}{}:
		case <-t.ctx.Done():
			return // stopped: the message stays stored as received
		}
		o := t.process(item.id, item.in)
		item.in = nil // a second attempt reads what the first one left
		<-t.sem
		if o != later || !t.pause(session.Backoff(time.Second, time.Minute, attempt)) {
			return
		}
	}
}

// sendBusy tells a chat whose queue overflowed that the bot is busy, once
// per overflow.
func (t *tenantBot) sendBusy(dropped int64, chat, text string) {
	jid, err := types.ParseJID(chat)
	if err != nil || t.pausedNow(chat) { // a person has the chat (handover.go)
		return
	}
	written, err := t.logReplies(nil, []tenant.Reply{{InID: dropped, Chat: chat, Body: text, Origin: tenant.OriginBusy}})
	if err != nil {
		return
	}
	for _, r := range written {
		if r.Status == tenant.MsgPending {
			t.send(r, jid, time.Now(), nil)
		}
	}
}
