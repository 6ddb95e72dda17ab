package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// inRow returns the log row of the inbound message with WhatsApp id waID,
// once it has left "received".
func (r *rig) inRow(tenantID, waID string) tenant.Message {
	r.t.Helper()
	var row tenant.Message
	r.waitLogs(tenantID, "message "+waID+" handled", func(ms []tenant.Message) bool {
		for _, m := range ms {
			if m.Direction == "in" && m.WAID == waID && m.Status != tenant.MsgReceived {
				row = m
				return true
			}
		}
		return false
	})
	return row
}

func send(t *testing.T, c *fakewa.Contact, text string) string {
	t.Helper()
	id, err := c.Send(text)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// origins lists the origins of the bot's replies in the log, oldest first.
func origins(ms []tenant.Message) []string {
	var out []string
	for _, m := range ms {
		if m.Direction == "out" {
			out = append(out, m.Origin)
		}
	}
	return out
}

// A chat a person has taken over gets no answer from the bot, and each
// message it skipped is logged as ignored with the reason; other chats
// are answered as before, and resuming brings the bot back.
func TestPausedChatIsNotAnsweredUntilResumed(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"}))
	ctx := context.Background()
	ann, bob, cat := phone.NewContact("", "Ann"), phone.NewContact("", "Bob"), phone.NewContact("", "Cat")

	if err := r.store.PauseBot(ctx, id, ann.JID().String(), "user-1", false); err != nil {
		t.Fatal(err)
	}
	// A person replying from the inbox takes a chat over too.
	if err := r.store.NoteHumanReply(ctx, id, cat.JID().String(), "user-1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*fakewa.Contact{ann, cat} {
		row := r.inRow(id, send(t, c, "hi"))
		if row.Status != tenant.MsgIgnored || row.Error != "the bot is paused in this chat: a person is answering" {
			t.Fatalf("%s's message in a paused chat: %s %q", c.Name(), row.Status, row.Error)
		}
	}
	send(t, bob, "hi")
	expect(t, bob, "hello")
	expectNothing(t, ann, 300*time.Millisecond)
	expectNothing(t, cat, 300*time.Millisecond)

	if err := r.store.ResumeBot(ctx, id, ann.JID().String()); err != nil {
		t.Fatal(err)
	}
	send(t, ann, "hi again")
	expect(t, ann, "hello")
}

// A customer's keyword hands the chat over: one hand-over reply, then
// silence, kept across a restart. Every reply records what wrote it.
func TestHandoverKeywordPausesTheChatWithOneReply(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(
		tenant.Rule{Match: tenant.MatchExact, Pattern: "hours", Reply: "9 to 5"},
		tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"},
	)
	cfg.WelcomeReply = "Welcome!"
	cfg.FallbackReply = "Sorry?"
	cfg.Handover = tenant.Handover{Keywords: []string{"agent", "human"}, Reply: "A person will answer you, {{name}}.", ResumeAfterMinutes: 60}
	id, phone := r.tenant(cfg)
	ctx := context.Background()
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")

	send(t, ann, "hi")
	expect(t, ann, "Welcome!")
	expect(t, ann, "hello")
	send(t, ann, "Can I talk to a HUMAN?")
	expect(t, ann, "A person will answer you, Ann.")
	c, err := r.store.ChatStateOf(ctx, id, ann.JID().String())
	if err != nil || !c.BotPaused || !c.Waiting || c.PausedBy != tenant.PausedByKeyword {
		t.Fatalf("after the keyword: %+v, %v", c, err)
	}
	for _, text := range []string{"hi", "agent!"} {
		row := r.inRow(id, send(t, ann, text))
		if row.Status != tenant.MsgIgnored || row.Error != "the bot is paused in this chat: the customer asked for a person" {
			t.Fatalf("%q after the hand-over: %s %q", text, row.Status, row.Error)
		}
	}
	expectNothing(t, ann, 300*time.Millisecond)
	// A person answers Ann: she no longer waits, and the log says so.
	if err := r.store.NoteHumanReply(ctx, id, ann.JID().String(), "user-1"); err != nil {
		t.Fatal(err)
	}
	if row := r.inRow(id, send(t, ann, "thanks")); row.Error != "the bot is paused in this chat: a person is answering" {
		t.Fatalf("after a person's reply: %s %q", row.Status, row.Error)
	}

	send(t, bob, "bananas")
	expect(t, bob, "Welcome!")
	expect(t, bob, "Sorry?")
	send(t, bob, "hours")
	expect(t, bob, "9 to 5")
	send(t, bob, "agent")
	expect(t, bob, "A person will answer you, Bob.")
	// Cat's first message asks for a person: the welcome still comes
	// first, as for any chat's first message.
	cat := phone.NewContact("", "Cat")
	send(t, cat, "agent")
	expect(t, cat, "Welcome!")
	expect(t, cat, "A person will answer you, Cat.")

	ms := r.waitLogs(id, "every reply sent", func(ms []tenant.Message) bool { return count(ms, "out", tenant.MsgReplied) == 9 })
	byChat := map[string][]string{}
	for _, m := range ms {
		if m.Direction == "out" {
			byChat[m.Chat] = append(byChat[m.Chat], m.Origin)
		}
	}
	if got := strings.Join(byChat[ann.JID().String()], ","); got != "welcome,rule 2,hand-over" {
		t.Errorf("Ann's replies came from %s", got)
	}
	if got := strings.Join(byChat[bob.JID().String()], ","); got != "welcome,fallback,rule 1,hand-over" {
		t.Errorf("Bob's replies came from %s", got)
	}
	if got := strings.Join(byChat[cat.JID().String()], ","); got != "welcome,hand-over" {
		t.Errorf("Cat's replies came from %s", got)
	}

	// The pause is in the database: a restart keeps it.
	r.stop()
	r.start()
	r.wait(id, "CONNECTED", func(s tenant.Link) bool { return s.State == tenant.StateConnected })
	row := r.inRow(id, send(t, ann, "hi"))
	if row.Status != tenant.MsgIgnored || !strings.HasPrefix(row.Error, tenant.ReasonBotPaused) {
		t.Fatalf("after a restart: %s %q", row.Status, row.Error)
	}
	expectNothing(t, ann, 300*time.Millisecond)
}

// A crash after the hand-over was logged but before its reply went out:
// after the start the reply is sent once and the chat stays paused.
func TestHandoverLoggedBeforeACrashIsSentOnceAfterStart(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"})
	cfg.Handover = tenant.Handover{Keywords: []string{"agent"}, Reply: "A person comes.", ResumeAfterMinutes: 60}
	id, phone := r.tenant(cfg)
	r.stop()
	ctx := context.Background()
	ann := phone.NewContact("", "Ann")
	chat := ann.JID().String()
	in, _, err := r.store.StoreInbound(ctx, id, tenant.Inbound{Chat: chat, Sender: chat, SenderName: "Ann",
		WAID: "3EB0HANDOVERCRASH", Kind: "text", Body: "agent", Status: tenant.MsgReceived})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.HandOver(ctx, id, tenant.PausedByKeyword, nil, tenant.Reply{InID: in, Chat: chat, Body: "A person comes.", Origin: tenant.OriginHandover},
		func(rp tenant.Reply) tenant.Reply {
			rp.Status, rp.WAID, rp.Sender = tenant.MsgPending, "3EB0AB12CD34EF56AB78", phone.JID().String()
			return rp
		}); err != nil {
		t.Fatal(err)
	}
	r.start()
	expect(t, ann, "A person comes.")
	if row := r.inRow(id, "3EB0HANDOVERCRASH"); row.Status != tenant.MsgReplied {
		t.Fatalf("the hand-over message after the start: %s %q", row.Status, row.Error)
	}
	row := r.inRow(id, send(t, ann, "hi"))
	if row.Status != tenant.MsgIgnored {
		t.Fatalf("a message after the recovered hand-over: %s %q", row.Status, row.Error)
	}
	expectNothing(t, ann, 300*time.Millisecond)
	if n := count(r.logs(id), "out", ""); n != 1 {
		t.Fatalf("%d replies logged, want the one hand-over: %s", n, describe(r.logs(id)))
	}
}

// The bot resumes a handed-over chat by itself once it has been quiet for
// the configured time (here a "minute" of 150ms), and answers again.
func TestBotResumesAQuietChatByItself(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{ResumeCheck: 20 * time.Millisecond, ResumeUnit: 150 * time.Millisecond})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"})
	cfg.Handover = tenant.Handover{Keywords: []string{"agent"}, Reply: "A person comes.", ResumeAfterMinutes: 1}
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	send(t, ann, "agent")
	expect(t, ann, "A person comes.")
	waitFor(t, "the bot to resume in Ann's chat", func() bool {
		c, err := r.store.ChatStateOf(context.Background(), id, ann.JID().String())
		return err == nil && !c.BotPaused && !c.Waiting
	})
	send(t, ann, "hi")
	expect(t, ann, "hello")
	if got := strings.Join(origins(r.logs(id)), ","); got != "hand-over,rule 1" {
		t.Fatalf("replies came from %s", got)
	}
}

// The webhook hears of a hand-over message as of one a rule answered,
// and its reply is not used: the hand-over reply is the answer.
func TestHandoverTellsTheWebhookWithoutUsingItsReply(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{AllowPrivateWebhooks: true, OutboxPoll: 50 * time.Millisecond})
	h := newHook(t, "webhook says")
	h.secret = "k"
	cfg := rules()
	cfg.Webhook = tenant.Webhook{URL: h.srv.URL, Secret: h.secret}
	cfg.Handover = tenant.Handover{Keywords: []string{"agent"}, Reply: "A person comes.", ResumeAfterMinutes: 60}
	_, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	send(t, ann, "agent please")
	expect(t, ann, "A person comes.")
	waitFor(t, "the webhook delivery", func() bool { return len(h.texts()) == 1 })
	h.mu.Lock()
	matched := h.got[0].RuleMatched
	h.mu.Unlock()
	if !matched {
		t.Fatal("the webhook was told no rule matched a hand-over")
	}
	expectNothing(t, ann, 300*time.Millisecond)
}
