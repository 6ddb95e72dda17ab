package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wabot/session"
	"wabot/tenant"
	"wabot/tenant/tenanttest"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// startWith starts the bot and a session manager with cfg (its sessions
// folder filled in).
func (r *rig) startWith(cfg session.Config) {
	r.bot = New(r.opts, r.log, r.store)
	r.bot.Start()
	cfg.SessionsDir = filepath.Join(r.dir, "sessions")
	cfg.Devices = r.devices
	r.m = session.NewManager(cfg, r.log, r.store, r.srv, r.bot)
	if err := r.m.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// Paths found by the reliability review: each test drives the real
// whatsmeow client against the fake into the state the review reproduced.

// A reply in flight when the connection drops (sent, not yet acknowledged)
// is sent again with the same id after the reconnect: the contact gets it
// once and the log says replied, not failed.
func TestReplyInFlightWhenTheConnectionDropsIsSentOnceAfterReconnect(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"}))
	dev := phone.LinkedDevices()[0].JID
	ann := phone.NewContact("", "Ann")
	// Slow reconnects, so the outage below outlasts whatsmeow's own
	// 5-second wait to retry an interrupted send, without reaching the
	// reconnect cap.
	r.stop()
	r.startWith(session.Config{ReconnectBaseDelay: time.Second, ReconnectMaxDelay: 2 * time.Second})
	r.wait(id, "CONNECTED", func(s tenant.Link) bool { return s.State == tenant.StateConnected })

	r.srv.SetLatency(time.Second) // the ack of the reply is late
	ann.Send("hi")
	waitFor(t, "the reply to reach WhatsApp", func() bool { return len(phone.Outbox()) == 1 })
	r.srv.SetLatency(0)
	r.srv.RefuseFor(6 * time.Second)
	if !r.srv.Cut(dev) {
		t.Fatal("the device was not connected")
	}
	expect(t, ann, "hello")
	expectNothing(t, ann, time.Second)
	ms := r.waitLogs(id, "the reply logged as sent", func(ms []tenant.Message) bool {
		return count(ms, "out", tenant.MsgReplied) == 1 && count(ms, "in", tenant.MsgReplied) == 1
	})
	if count(ms, "out", tenant.MsgFailed) != 0 {
		t.Fatalf("a reply was logged failed: %s", describe(ms))
	}
}

// Stopping while a welcome is waiting for its ack loses neither the
// welcome nor the answer, and sends neither twice.
func TestStopWhileAnsweringSendsEveryReplyOnceAfterStart(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"})
	cfg.WelcomeReply = "welcome"
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")

	r.srv.SetLatency(time.Second)
	ann.Send("hi")
	r.waitLogs(id, "a reply being sent", func(ms []tenant.Message) bool { return count(ms, "out", tenant.MsgPending) >= 1 })
	r.stop()
	r.srv.SetLatency(0)
	r.start()
	expect(t, ann, "welcome")
	expect(t, ann, "hello")
	expectNothing(t, ann, time.Second)
	r.waitLogs(id, "both replies sent", func(ms []tenant.Message) bool {
		return count(ms, "out", tenant.MsgReplied) == 2 && count(ms, "in", tenant.MsgReplied) == 1
	})
}

// A graceful stop during the inline webhook call leaves the message to be
// answered after the start, by the webhook, with the same delivery id;
// neither "ignored" nor the fallback.
func TestStopDuringTheWebhookCallAsksTheWebhookAgainWithTheSameDelivery(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var deliveries []string
	answer := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		deliveries = append(deliveries, req.Header.Get("X-Wabot-Delivery"))
		first := len(deliveries) == 1
		mu.Unlock()
		if first {
			select { // the first call hangs until the bot stops
			case <-req.Context().Done():
			case <-answer:
			}
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"reply": "from the webhook"})
	}))
	defer hook.Close()
	defer close(answer)

	r := newRig(t, Options{AllowPrivateWebhooks: true})
	cfg := rules()
	cfg.FallbackReply = "fallback"
	cfg.Webhook.URL = hook.URL
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	ann.Send("anything")
	waitFor(t, "the webhook called", func() bool { mu.Lock(); defer mu.Unlock(); return len(deliveries) == 1 })
	r.stop()
	if ms := r.logs(id); count(ms, "in", tenant.MsgReceived) != 1 {
		t.Fatalf("after the stop the message should wait, received: %s", describe(ms))
	}
	r.start()
	expect(t, ann, "from the webhook")
	expectNothing(t, ann, time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 2 || deliveries[0] != deliveries[1] {
		t.Fatalf("deliveries %v: want the same delivery id twice", deliveries)
	}
	ds, err := r.store.WebhookDeliveries(context.Background(), id, 10)
	if err != nil || len(ds) != 1 || ds[0].Status != tenant.DeliveryDelivered {
		t.Fatalf("outbox %+v (%v): want one delivered row", ds, err)
	}
}

// One tenant's hanging webhook holds one outbox worker, never another
// tenant's deliveries.
func TestAHangingWebhookDoesNotHoldUpOtherTenants(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer hanging.Close()
	defer close(release)
	var got sync.Map
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got.Store(req.Header.Get("X-Wabot-Delivery"), true)
	}))
	defer healthy.Close()

	r := newRig(t, Options{AllowPrivateWebhooks: true, WebhookTimeout: time.Minute})
	slow := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "q", Reply: "a"})
	slow.Webhook.URL = hanging.URL
	_, slowPhone := r.tenant(slow)
	fast := slow
	fast.Webhook.URL = healthy.URL
	fastID, fastPhone := r.tenant(fast)

	ann := slowPhone.NewContact("", "Ann")
	for range 4 {
		ann.Send("q")
		expect(t, ann, "a")
	}
	bob := fastPhone.NewContact("", "Bob")
	bob.Send("q")
	expect(t, bob, "a")
	waitFor(t, "the other tenant's delivery", func() bool {
		ds, err := r.store.WebhookDeliveries(context.Background(), fastID, 10)
		return err == nil && len(ds) == 1 && ds[0].Status == tenant.DeliveryDelivered
	})
}

// A message that arrives while the database cannot take writes is stored
// once it can, and answered; WhatsApp would deliver it again only after a
// reconnect.
func TestAMessageArrivingWhileTheDatabaseIsLockedIsStoredAndAnswered(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"}))
	ann := phone.NewContact("", "Ann")

	// Another process holds the write lock for longer than one store
	// attempt waits (the busy timeout is 10 s).
	release := holdWriteLock(t, r.store.Path())
	ann.Send("hi")
	time.Sleep(12 * time.Second)
	release()
	expect(t, ann, "hello")
	r.waitLogs(id, "the message answered", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgReplied) == 1 })
}

// offlineSender is a linked client whose connection is gone while nobody
// has told the pipeline: every send finds it offline.
type offlineSender struct{ sends atomic.Int64 }

func (o *offlineSender) SendText(context.Context, types.JID, string, string) error {
	o.sends.Add(1)
	return session.ErrOffline
}
func (o *offlineSender) NewMessageID() string { return whatsmeow.GenerateMessageID() }
func (o *offlineSender) SendMessage(context.Context, types.JID, string, *waE2E.Message) error {
	o.sends.Add(1)
	return session.ErrOffline
}
func (o *offlineSender) Typing(context.Context, types.JID, bool) error { return session.ErrOffline }
func (o *offlineSender) DownloadToFile(context.Context, whatsmeow.DownloadableMessage, *os.File) error {
	return session.ErrOffline
}
func (o *offlineSender) Upload(context.Context, []byte, whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	return whatsmeow.UploadResponse{}, session.ErrOffline
}
func (o *offlineSender) MarkRead(context.Context, types.JID, types.JID, []string) error {
	return session.ErrOffline
}
func (o *offlineSender) IsOnWhatsApp(context.Context, []string) ([]types.IsOnWhatsAppResponse, error) {
	return nil, session.ErrOffline
}
func (o *offlineSender) PhoneOfLID(context.Context, types.JID) (types.JID, error) {
	return types.EmptyJID, nil
}
func (o *offlineSender) OwnJID() types.JID {
	return types.NewJID("15550000001", types.DefaultUserServer)
}

// A reply whose sends find the client offline, while the pipeline still
// believes it online, waits with backoff instead of spinning a core.
func TestAReplyToAnOfflineClientWaitsWithoutSpinning(t *testing.T) {
	t.Parallel()
	st := tenanttest.Open(t)
	ctx := context.Background()
	u, err := st.EnsureUser(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, u.ID, "Shop", true)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)), st)
	defer b.Close()
	if _, err := b.SaveConfig(ctx, tn.ID, rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"})); err != nil {
		t.Fatal(err)
	}
	out := &offlineSender{}
	pipe := b.Attach(tn.ID, out)
	pipe.Online(true)
	ann := types.NewJID("14440000002", types.DefaultUserServer)
	if !pipe.HandleMessage(&events.Message{
		Info:    types.MessageInfo{MessageSource: types.MessageSource{Chat: ann, Sender: ann}, ID: "3EB0SPIN", PushName: "Ann", Timestamp: time.Now()},
		Message: &waE2E.Message{Conversation: proto.String("hi")},
	}) {
		t.Fatal("the message was not stored")
	}
	waitFor(t, "the first send", func() bool { return out.sends.Load() > 0 })
	time.Sleep(3 * time.Second)
	if n := out.sends.Load(); n > 10 {
		t.Fatalf("%d sends in 3 s to an offline client: the worker spins", n)
	}
}

// A reset closes what the old number received and had not answered: the
// next number to link does not answer it.
func TestAResetLinkDoesNotAnswerTheOldNumbersMessagesFromTheNewOne(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body) // so the server notices the client leaving
		if calls.Add(1) == 1 {
			<-req.Context().Done() // the first call hangs until the reset
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"reply": "late answer"})
	}))
	defer hook.Close()

	r := newRig(t, Options{AllowPrivateWebhooks: true})
	cfg := rules()
	cfg.Webhook.URL = hook.URL
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	ann.Send("question for the old number")
	waitFor(t, "the webhook called", func() bool { return calls.Load() == 1 })

	ctx := context.Background()
	if err := r.m.Reset(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := r.wait(id, "a new QR code", func(s tenant.Link) bool { return s.State == tenant.StateQRReady })
	next := r.srv.NewPhone("")
	if _, err := next.Scan(ctx, s.QRCode); err != nil {
		t.Fatal(err)
	}
	r.wait(id, "CONNECTED with the new number", func(s tenant.Link) bool { return s.State == tenant.StateConnected })
	time.Sleep(2 * time.Second)
	if out := next.Outbox(); len(out) != 0 {
		t.Fatalf("the new number sent %+v", out)
	}
	ms := r.logs(id)
	if count(ms, "in", tenant.MsgIgnored) != 1 || count(ms, "in", tenant.MsgReceived) != 0 {
		t.Fatalf("the old number's message should be closed as ignored: %s", describe(ms))
	}
}

// When storing keeps failing past StoreRetryFor, the message is left
// unacknowledged and the client reconnects, so WhatsApp delivers it again
// and it is stored once the database is back.
func TestAMessageThatCannotBeStoredIsDeliveredAgainAfterAReconnect(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{StoreRetryFor: time.Second})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"}))
	ann := phone.NewContact("", "Ann")

	release := holdWriteLock(t, r.store.Path())
	ann.Send("hi")
	time.Sleep(12 * time.Second) // one store attempt gives up after the 10 s busy timeout
	release()
	expect(t, ann, "hello")
	r.waitLogs(id, "the message answered once", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied) == 1 && count(ms, "out", tenant.MsgReplied) == 1
	})
}

// A send that fails because the socket broke under the write is a drop
// like any other: the reply waits for the connection, it is not failed.
func TestAWriteOnABrokenSocketCountsAsADrop(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		fmt.Errorf("sending: %w", &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}),
		fmt.Errorf("failed to write frame: %w", syscall.ECONNRESET),
		fmt.Errorf("websocket: %w", net.ErrClosed),
	} {
		if !disconnected(err) {
			t.Errorf("%v is not taken for a dropped connection", err)
		}
	}
	if disconnected(errors.New("server returned error 479")) {
		t.Error("an error WhatsApp answered is taken for a dropped connection")
	}
}

// holdWriteLock takes the database's write lock from another connection,
// as another process would, until release.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	conn, err := tenanttest.Raw(t, path).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	lock := []string{"BEGIN IMMEDIATE"}
	if tenant.IsPostgresURL(path) {
		// Writers wait; readers go on, as with SQLite's write lock. The
		// holder stands for another program, which wabot's own limit on
		// idle transactions does not reach.
		lock = []string{"SET idle_in_transaction_session_timeout = 0", "BEGIN", "LOCK TABLE messages IN EXCLUSIVE MODE"}
	}
	for _, stmt := range lock {
		if _, err := conn.ExecContext(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
}
