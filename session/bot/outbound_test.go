package bot

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
)

// statuses records what the status hook heard, per message.
type statuses struct {
	mu   sync.Mutex
	seen map[int64][]tenant.APIStatus
}

func hearStatuses(b *Bot) *statuses {
	s := &statuses{seen: map[int64][]tenant.APIStatus{}}
	b.SetStatusHook(func(_ string, m tenant.APIMessage) {
		s.mu.Lock()
		s.seen[m.ID] = append(s.seen[m.ID], m.Status)
		s.mu.Unlock()
	})
	return s
}

func (s *statuses) of(id int64) []tenant.APIStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen[id])
}

func (r *rig) send(id string, req tenant.SendRequest) (tenant.APIMessage, bool) {
	r.t.Helper()
	m, created, err := r.bot.Send(context.Background(), id, req)
	if err != nil {
		r.t.Fatal(err)
	}
	return m, created
}

// waitStatus polls the stored message until it has status want.
func (r *rig) waitStatus(tenantID string, id int64, want tenant.APIStatus) tenant.APIMessage {
	r.t.Helper()
	var m tenant.APIMessage
	waitFor(r.t, "message "+string(want), func() bool {
		var err error
		m, err = r.store.APIMessageByID(context.Background(), tenantID, id)
		return err == nil && m.Status == want
	})
	return m
}

func sentTo(p *fakewa.Phone, waID string) int {
	n := 0
	for _, s := range p.Outbox() {
		if s.ID == waID {
			n++
		}
	}
	return n
}

// A message to a contact who never wrote goes out, the contact decrypts
// it, and the contact's receipts move it to delivered, then read; the
// hook hears each step in order. The same Idempotency-Key again returns
// the first message and sends nothing; a reply_to quotes the message.
func TestSendIsDeliveredThenReadAndIdempotent(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true}})
	heard := hearStatuses(r.bot)
	id, phone := r.tenant(tenant.DefaultBotConfig())
	carl := phone.NewContact("", "Carl")

	m, created := r.send(id, tenant.SendRequest{To: "+" + carl.JID().User, Text: "Your order shipped", IdempotencyKey: "order-42"})
	if !created || m.Status != tenant.APIQueued || m.WAID == "" {
		t.Fatalf("Send = %+v, created %v; want a queued message with its WhatsApp id", m, created)
	}
	expect(t, carl, "Your order shipped")
	r.waitStatus(id, m.ID, tenant.APIDelivered)
	again, created := r.send(id, tenant.SendRequest{To: "+" + carl.JID().User, Text: "Your order shipped", IdempotencyKey: "order-42"})
	if created || again.ID != m.ID {
		t.Fatalf("the same key gave %+v, created %v; want message %d", again, created, m.ID)
	}

	if _, err := carl.Read(); err != nil {
		t.Fatal(err)
	}
	read := r.waitStatus(id, m.ID, tenant.APIRead)
	if read.SentAt.IsZero() || read.DeliveredAt.IsZero() || read.ReadAt.IsZero() {
		t.Fatalf("times not recorded: %+v", read)
	}

	reply, _ := r.send(id, tenant.SendRequest{To: carl.JID().String(), Text: "Tracking: 42", ReplyTo: m.ID})
	got, err := carl.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ext := got.Message.GetExtendedTextMessage()
	if ext.GetText() != "Tracking: 42" || ext.GetContextInfo().GetStanzaID() != m.WAID || ext.GetContextInfo().GetQuotedMessage().GetConversation() != "Your order shipped" {
		t.Fatalf("the reply is not quoted: %v", got.Message)
	}
	r.waitStatus(id, reply.ID, tenant.APIDelivered)
	if n := sentTo(phone, m.WAID); n != 1 {
		t.Fatalf("message sent %d times, want once", n)
	}
	want := []tenant.APIStatus{tenant.APISent, tenant.APIDelivered, tenant.APIRead}
	if h := heard.of(m.ID); !slices.Equal(h, want) && !slices.Equal(h, want[1:]) {
		t.Fatalf("hook heard %v, want %v (sent may arrive as delivered when the receipt overtakes it)", h, want)
	}
}

// A number WhatsApp does not know fails as not_on_whatsapp, unsent.
func TestSendToAnUnknownNumberFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true}})
	heard := hearStatuses(r.bot)
	id, phone := r.tenant(tenant.DefaultBotConfig())
	m, _ := r.send(id, tenant.SendRequest{To: "+19990000001", Text: "hello?"})
	f := r.waitStatus(id, m.ID, tenant.APIFailed)
	if f.Reason != tenant.ReasonNotOnWhatsApp || len(phone.Outbox()) != 0 {
		t.Fatalf("failed with %q, outbox %v", f.Reason, phone.Outbox())
	}
	if h := heard.of(m.ID); !slices.Equal(h, []tenant.APIStatus{tenant.APIFailed}) {
		t.Fatalf("hook heard %v", h)
	}
	res, err := r.bot.CheckContacts(context.Background(), id, []string{"+19990000001", "+" + phone.NewContact("", "Dee").JID().User})
	if err != nil || len(res) != 2 || res[0].OnWA || !res[1].OnWA {
		t.Fatalf("CheckContacts = %+v, %v", res, err)
	}
}

// wabot stopped after storing a message and before sending it sends it
// once after the restart.
func TestSendStoredBeforeAStopGoesOutOnceAfterStart(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	ann := phone.NewContact("", "Ann")
	r.stop()
	m, _ := r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: "stored, not sent"})
	if got, _ := r.store.APIMessageByID(context.Background(), id, m.ID); got.Status != tenant.APIQueued || len(phone.Outbox()) != 0 {
		t.Fatalf("before the restart: %s, outbox %v", got.Status, phone.Outbox())
	}
	r.start()
	expect(t, ann, "stored, not sent")
	r.waitStatus(id, m.ID, tenant.APIDelivered)
	// A later message in the same chat went out after it: the first was
	// not sent again meanwhile.
	later, _ := r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: "later"})
	expect(t, ann, "later")
	r.waitStatus(id, later.ID, tenant.APIDelivered)
	if n := sentTo(phone, m.WAID); n != 1 {
		t.Fatalf("sent %d times", n)
	}
}

// A message queued while the session is offline waits, and goes out after
// the reconnect.
func TestSendWhileOfflineWaitsForTheReconnect(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	ann := phone.NewContact("", "Ann")
	r.srv.RefuseFor(time.Hour)
	r.srv.Cut(phone.LinkedDevices()[0].JID)
	r.wait(id, "DISCONNECTED", func(l tenant.Link) bool { return l.State == tenant.StateDisconnected })
	m, _ := r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: "while offline"})
	if got, _ := r.store.APIMessageByID(context.Background(), id, m.ID); got.Status != tenant.APIQueued {
		t.Fatalf("status %s while offline", got.Status)
	}
	r.srv.RefuseFor(0)
	expect(t, ann, "while offline")
	r.waitStatus(id, m.ID, tenant.APIDelivered)
}

// A burst larger than one pass of the sender (250 messages queued while
// offline) all goes out after the reconnect, without waiting for the
// sender's idle check (an hour here).
func TestSendBurstLargerThanOnePassGoesOutWithoutWaiting(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{NoPacing: true, IdleCheck: time.Hour}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	ann := phone.NewContact("", "Ann")
	r.srv.RefuseFor(time.Hour)
	r.srv.Cut(phone.LinkedDevices()[0].JID)
	r.wait(id, "DISCONNECTED", func(l tenant.Link) bool { return l.State == tenant.StateDisconnected })
	const burst = 250
	for i := range burst {
		r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: fmt.Sprintf("notice %d", i)})
	}
	r.srv.RefuseFor(0)
	waitFor(t, "every message of the burst sent", func() bool {
		ms, _, err := r.store.APIMessages(context.Background(), id, tenant.APIMessageQuery{Status: tenant.APIQueued})
		return err == nil && len(ms) == 0
	})
	for i := range burst {
		expect(t, ann, fmt.Sprintf("notice %d", i))
	}
}

// fakeClock is a sender clock that moves only when the test says, or, in
// auto mode, by whatever anyone waits.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(auto bool) *fakeClock { return &fakeClock{now: time.Now(), auto: auto} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if c.auto || d <= 0 {
		c.now = c.now.Add(max(d, 0))
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// A message still queued past the maximum age fails as expired.
func TestSendExpiresAfterTheMaximumAge(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(true)
	r := newRig(t, Options{Send: SendOptions{NoPacing: true, MaxAge: time.Hour, Clock: clk}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	ann := phone.NewContact("", "Ann")
	r.stop()
	m, _ := r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: "too late"})
	clk.Advance(2 * time.Hour)
	r.start()
	f := r.waitStatus(id, m.ID, tenant.APIFailed)
	if f.Reason != tenant.ReasonExpired || len(phone.Outbox()) != 0 {
		t.Fatalf("failed %q, outbox %v", f.Reason, phone.Outbox())
	}
}

// At 2 messages a minute the sender sends one, then waits 30 s of its
// clock before each next one.
func TestSendPacingPerMinute(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(false)
	r := newRig(t, Options{Send: SendOptions{PerMinute: 2, NewChatsPerDay: 100, Clock: clk}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	ann := phone.NewContact("", "Ann")
	for _, text := range []string{"one", "two", "three", "four"} {
		r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: text})
	}
	sentNow := func(want int) {
		t.Helper()
		waitFor(t, "the sender waiting on its clock", func() bool { return clk.Waiting() == 1 })
		// The sender records a send before it waits for the next one.
		ms, _, err := r.store.APIMessages(context.Background(), id, tenant.APIMessageQuery{Status: tenant.APIQueued})
		if err != nil || 4-len(ms) != want {
			t.Fatalf("%d sent (%v), want %d", 4-len(ms), err, want)
		}
	}
	sentNow(1)
	clk.Advance(29 * time.Second)
	sentNow(1)
	clk.Advance(time.Second)
	expect(t, ann, "one")
	expect(t, ann, "two")
	sentNow(2)
	clk.Advance(30 * time.Second)
	expect(t, ann, "three")
	sentNow(3)
}

// Bot replies and API sends share the tenant's pace. With one message a
// minute, a bot reply goes out at once and uses the minute's budget, so
// an API send queued after it waits for the clock; a customer who writes
// meanwhile is still answered at once.
func TestBotRepliesShareThePaceWithAPISends(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(false)
	r := newRig(t, Options{Send: SendOptions{PerMinute: 1, NewChatsPerDay: 100, Clock: clk}})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hello", Reply: "hi there"}))
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")
	if _, err := ann.Send("hello"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "hi there")

	m, _ := r.send(id, tenant.SendRequest{To: "+" + bob.JID().User, Text: "Your order shipped"})
	waitFor(t, "the API send waiting for the minute the reply used", func() bool { return clk.Waiting() == 1 })
	if got, _ := r.store.APIMessageByID(context.Background(), id, m.ID); got.Status != tenant.APIQueued {
		t.Fatalf("the API send is %s before its turn, want queued", got.Status)
	}

	if _, err := ann.Send("hello again"); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "hi there")

	clk.Advance(2 * time.Minute)
	expect(t, bob, "Your order shipped")
}

// With one new chat a day, a message to a second new chat waits while
// messages to chats already open go out.
func TestSendNewChatsPerDay(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{Send: SendOptions{PerMinute: 6000, NewChatsPerDay: 1, Clock: newFakeClock(true)}})
	id, phone := r.tenant(tenant.DefaultBotConfig())
	ann, bob := phone.NewContact("", "Ann"), phone.NewContact("", "Bob")
	a1, _ := r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: "hi Ann"})
	b1, _ := r.send(id, tenant.SendRequest{To: "+" + bob.JID().User, Text: "hi Bob"})
	expect(t, ann, "hi Ann")
	a2, _ := r.send(id, tenant.SendRequest{To: "+" + ann.JID().User, Text: "again"})
	expect(t, ann, "again")
	r.waitStatus(id, a2.ID, tenant.APIDelivered)
	if !a1.FirstContact || !b1.FirstContact || a2.FirstContact {
		t.Fatalf("first contact: %v %v %v", a1.FirstContact, b1.FirstContact, a2.FirstContact)
	}
	if got, _ := r.store.APIMessageByID(context.Background(), id, b1.ID); got.Status != tenant.APIQueued || bob.Pending() != 0 {
		t.Fatalf("Bob's message is %s, want queued by the new-chat limit", got.Status)
	}
}
