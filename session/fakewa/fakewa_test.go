package fakewa

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"wabot/session/fakewa/rigtest"
)

// whatsmeow's package settings keep their defaults in this process:
// keepalive timings short enough to test keepalive failures would force
// reconnects under load that no other test asked for, so the keepalive
// test has its own process (internal/keepalivetest).

// testClient is a real whatsmeow client with its own SQLite store,
// recording the events it sees.
type testClient struct {
	t      testing.TB
	cli    *whatsmeow.Client
	dbPath string
	mu     sync.Mutex
	events []any
	signal chan struct{}
}

func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if os.Getenv("FAKEWA_TRACE") != "" {
		opts.Trace = os.Stderr
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t testing.TB, s *Server, dbPath string) *testClient {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "device.db")
	}
	log := waLog.Noop
	if os.Getenv("FAKEWA_CLIENT_LOG") != "" {
		log = waLog.Stdout("client", "DEBUG", false)
	}
	ctx := context.Background()
	container, err := sqlstore.New(ctx, "sqlite3", "file:"+dbPath+"?_foreign_keys=on&_journal_mode=WAL&_busy_timeout=5000&_txlock=immediate", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { container.Close() })
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, dbPath: dbPath, signal: make(chan struct{}, 1)}
	tc.cli = whatsmeow.NewClient(dev, log)
	tc.cli.EnableAutoReconnect = true
	if err := s.Configure(tc.cli); err != nil {
		t.Fatal(err)
	}
	tc.cli.AddEventHandler(func(evt any) {
		tc.mu.Lock()
		tc.events = append(tc.events, evt)
		tc.mu.Unlock()
		select {
		case tc.signal <- struct{}{}:
		default:
		}
	})
	t.Cleanup(tc.cli.Disconnect)
	return tc
}

// waitFor returns the first recorded event (from index from on) that
// matches, waiting up to timeout.
func waitFor[T any](tc *testClient, timeout time.Duration, match func(T) bool) T {
	tc.t.Helper()
	deadline := time.After(timeout)
	for {
		tc.mu.Lock()
		for _, e := range tc.events {
			if v, ok := e.(T); ok && (match == nil || match(v)) {
				tc.mu.Unlock()
				return v
			}
		}
		tc.mu.Unlock()
		select {
		case <-tc.signal:
		case <-deadline:
			var zero T
			tc.t.Fatalf("no %T event within %s; saw %s", zero, timeout, tc.eventNames())
			return zero
		}
	}
}

func (tc *testClient) count(match func(any) bool) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	n := 0
	for _, e := range tc.events {
		if match(e) {
			n++
		}
	}
	return n
}

func (tc *testClient) eventNames() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	s := ""
	for _, e := range tc.events {
		s += fmt.Sprintf("%T ", e)
	}
	return s
}

// pair connects tc without a device and lets phone scan its first QR code.
func pair(t testing.TB, tc *testClient, phone *Phone) types.JID {
	t.Helper()
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := waitFor[*events.QR](tc, 10*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	jid, err := phone.Scan(ctx, qr.Codes[0])
	if err != nil {
		t.Fatal(err)
	}
	waitFor[*events.PairSuccess](tc, 30*time.Second, nil)
	waitFor[*events.Connected](tc, 60*time.Second, nil)
	return jid
}

func TestPairByQRThenLoginWithoutQR(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	if jid.User != phone.Number() || jid.Device == 0 {
		t.Fatalf("paired as %s", jid)
	}
	devs := phone.LinkedDevices()
	if len(devs) != 1 || devs[0].Name != store.DeviceProps.GetOs() || !devs[0].Online {
		t.Fatalf("linked devices %+v", devs)
	}
	tc.cli.Disconnect()

	again := newClient(t, s, tc.dbPath)
	if again.cli.Store.ID == nil || *again.cli.Store.ID != jid {
		t.Fatalf("store holds %v, want %s", again.cli.Store.ID, jid)
	}
	if err := again.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](again, 10*time.Second, nil)
	if n := again.count(func(e any) bool { _, ok := e.(*events.QR); return ok }); n != 0 {
		t.Fatalf("a stored device saw %d QR events", n)
	}
}

func TestPairByPhoneCode(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.QR](tc, 10*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := tc.cli.PairPhone(ctx, "+"+phone.Number(), true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("code %q, want XXXX-XXXX", code)
	}
	if _, err := phone.EnterCode(ctx, "AAAA-AAAA"); err == nil && code != "AAAA-AAAA" {
		// A wrong code must not link. Only one attempt exists per
		// hello, so the right code is tried on a new hello below.
		t.Fatal("a wrong code linked the device")
	}
	if len(phone.LinkedDevices()) != 0 {
		t.Fatal("a wrong code linked the device")
	}
}

func TestPairByPhoneCodeLinks(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.QR](tc, 10*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := tc.cli.PairPhone(ctx, "+"+phone.Number(), true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	jid, err := phone.EnterCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	ps := waitFor[*events.PairSuccess](tc, 10*time.Second, nil)
	if ps.ID != jid {
		t.Fatalf("paired as %s, phone linked %s", ps.ID, jid)
	}
	waitFor[*events.Connected](tc, 20*time.Second, nil)
}

func TestMessagesBothWays(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")

	for i, text := range []string{"hello", "second message"} {
		id, err := ann.Send(text)
		if err != nil {
			t.Fatal(err)
		}
		msg := waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id })
		if msg.Message.GetConversation() != text || msg.Info.PushName != "Ann" || msg.Info.Sender.User != ann.JID().User || msg.Info.IsFromMe {
			t.Fatalf("message %d: %q from %s (%q)", i, msg.Message.GetConversation(), msg.Info.Sender, msg.Info.PushName)
		}
		reply := fmt.Sprintf("reply %d", i)
		if _, err := tc.cli.SendMessage(context.Background(), ann.JID(), &waE2EMessage{Conversation: &reply}); err != nil {
			t.Fatal(err)
		}
		got, err := ann.Next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != reply {
			t.Fatalf("contact decrypted %q, want %q", got.Text, reply)
		}
	}
	if out := phone.Outbox(); len(out) != 2 || out[1].Text != "reply 1" || out[1].To != ann.JID() {
		t.Fatalf("outbox %+v", out)
	}
}

func TestDeviceStartsTheConversation(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	bob := phone.NewContact("", "Bob")
	for _, text := range []string{"first (pkmsg)", "second (msg)"} {
		text := text
		if _, err := tc.cli.SendMessage(context.Background(), bob.JID(), &waE2EMessage{Conversation: &text}); err != nil {
			t.Fatal(err)
		}
		got, err := bob.Next(10 * time.Second)
		if err != nil || got.Text != text {
			t.Fatalf("got %q (%v), want %q", got.Text, err, text)
		}
	}
	id, err := bob.Send("answer")
	if err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id && m.Message.GetConversation() == "answer" })
}

func TestRedeliverSameID(t *testing.T) {
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	id, err := ann.Send("once")
	if err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id })
	if err := ann.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tc.count(func(e any) bool { m, ok := e.(*events.Message); return ok && m.Info.ID == id }) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the redelivered copy never reached the client")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type waE2EMessage = waE2E.Message

func TestCutConnectionReconnects(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	connected := tc.count(func(e any) bool { _, ok := e.(*events.Connected); return ok })
	if !s.Cut(jid) {
		t.Fatal("device not online")
	}
	waitFor[*events.Disconnected](tc, 10*time.Second, nil)
	waitUntil(t, 10*time.Second, "a second Connected", func() bool {
		return tc.count(func(e any) bool { _, ok := e.(*events.Connected); return ok }) > connected
	})
}

func TestRefusedConnectionsThenRecovery(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	var hookCalls int
	var mu sync.Mutex
	tc.cli.AutoReconnectHook = func(error) bool {
		mu.Lock()
		hookCalls++
		mu.Unlock()
		return true
	}
	s.RefuseConnections(2)
	s.Cut(jid)
	waitUntil(t, 20*time.Second, "reconnected after two refusals", func() bool {
		return tc.count(func(e any) bool { _, ok := e.(*events.Connected); return ok }) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if hookCalls != 2 {
		t.Fatalf("AutoReconnectHook saw %d failures, want 2", hookCalls)
	}
}

func TestUnlinkLogsOutAndWipesStore(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	if err := phone.Unlink(jid); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[*events.LoggedOut](tc, 10*time.Second, nil)
	if lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("LoggedOut %+v", lo)
	}
	waitUntil(t, 5*time.Second, "store deleted", func() bool { return storeEmpty(t, tc.dbPath) })
	if len(phone.LinkedDevices()) != 0 {
		t.Fatal("phone still lists the device")
	}
}

func TestFailure401AtConnect(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	tc.cli.Disconnect()
	s.FailNextLogin(jid, Failure{Reason: 401})
	again := newClient(t, s, tc.dbPath)
	if err := again.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[*events.LoggedOut](again, 10*time.Second, nil)
	if !lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("LoggedOut %+v", lo)
	}
	waitUntil(t, 5*time.Second, "store deleted", func() bool { return storeEmpty(t, tc.dbPath) })
}

func TestConnectFailuresSurfaceAsEvents(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	jid := pair(t, tc, phone)
	tc.cli.Disconnect()

	cases := []struct {
		name  string
		fault Failure
		check func(tc *testClient)
	}{
		{"outdated", Failure{Reason: 405}, func(tc *testClient) { waitFor[*events.ClientOutdated](tc, 10*time.Second, nil) }},
		{"temporary ban", Failure{Reason: 402, Code: 101, Expire: time.Hour}, func(tc *testClient) {
			ban := waitFor[*events.TemporaryBan](tc, 10*time.Second, nil)
			if ban.Code != events.TempBanSentToTooManyPeople || ban.Expire != time.Hour {
				t.Errorf("ban %+v", ban)
			}
		}},
	}
	for _, c := range cases {
		s.FailNextLogin(jid, c.fault)
		cl := newClient(t, s, tc.dbPath)
		if err := cl.cli.Connect(); err != nil {
			t.Fatal(err)
		}
		c.check(cl)
		cl.cli.Disconnect()
	}
	// The device is still linked after those failures: a plain login works.
	cl := newClient(t, s, tc.dbPath)
	if err := cl.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](cl, 10*time.Second, nil)
	if !s.Replace(jid) {
		t.Fatal("not online")
	}
	waitFor[*events.StreamReplaced](cl, 10*time.Second, nil)
}

func TestUnacknowledgedMessageIsRedeliveredAfterReconnect(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	tc.cli.SynchronousAck = true
	tc.cli.EnableDecryptedEventBuffer = true
	var fail sync.Once
	failing := make(chan struct{})
	tc.cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if _, ok := evt.(*events.Message); ok {
			ok := true
			fail.Do(func() { ok = false; close(failing) })
			return ok
		}
		return true
	})
	jid := pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	id, err := ann.Send("keep me")
	if err != nil {
		t.Fatal(err)
	}
	<-failing
	time.Sleep(100 * time.Millisecond)
	s.Cut(jid) // the handler failed: no receipt, so the server still holds it
	waitUntil(t, 15*time.Second, "the message delivered a second time", func() bool {
		return tc.count(func(e any) bool { m, ok := e.(*events.Message); return ok && m.Info.ID == id }) >= 2
	})
}

func TestLatencyIsAdded(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	s.SetLatency(300 * time.Millisecond)
	start := time.Now()
	id, _ := ann.Send("slow")
	waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id })
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("delivered in %s despite 300ms latency", time.Since(start))
	}
}

func TestManyClientsPairInParallel(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	const n = 20
	var wg sync.WaitGroup
	jids := make([]types.JID, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := newClient(t, s, "")
			jids[i] = pair(t, tc, s.NewPhone(""))
		}()
	}
	wg.Wait()
	online := 0
	for _, j := range jids {
		if s.Online(j) {
			online++
		}
	}
	if online != n {
		t.Fatalf("%d of %d online", online, n)
	}
}

func TestNoGoroutineLeftAfterDisconnect(t *testing.T) {
	// Goroutines of clients from earlier tests are not this test's concern
	// (whatsmeow can strand a frame reader when a frame arrives during its
	// own close handshake), so only new ones count.
	before := rigtest.ClientGoroutines()
	s := newServer(t, Options{})
	phone := s.NewPhone("")
	tc := newClient(t, s, "")
	pair(t, tc, phone)
	ann := phone.NewContact("", "Ann")
	id, _ := ann.Send("hi")
	waitFor[*events.Message](tc, 10*time.Second, func(m *events.Message) bool { return m.Info.ID == id })
	waitUntil(t, 10*time.Second, "the receipt", func() bool {
		return s.Unacknowledged(tc.cli.Store.ID.ToNonAD()) == 0 && s.Unacknowledged(*tc.cli.Store.ID) == 0
	})
	tc.cli.Disconnect()
	before.WaitNoneNew(t, 5*time.Second)
}

var waitUntil = rigtest.WaitFor

func storeEmpty(t *testing.T, path string) bool {
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM whatsmeow_device").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 0
}
