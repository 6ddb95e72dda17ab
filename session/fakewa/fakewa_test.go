package fakewa

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
)

func TestMain(m *testing.M) {
	// whatsmeow's package settings, set once for the whole process before
	// any client runs: fast keepalives so a silent server is noticed in
	// seconds, and the device name the phone lists.
	whatsmeow.KeepAliveIntervalMin = 300 * time.Millisecond
	whatsmeow.KeepAliveIntervalMax = 500 * time.Millisecond
	whatsmeow.KeepAliveResponseDeadline = 300 * time.Millisecond
	whatsmeow.KeepAliveMaxFailTime = 1500 * time.Millisecond
	store.SetOSInfo("wabot-test", [3]uint32{1, 0, 0})
	os.Exit(m.Run())
}

// testClient is a real whatsmeow client with its own SQLite store,
// recording the events it sees.
type testClient struct {
	t      *testing.T
	cli    *whatsmeow.Client
	dbPath string
	mu     sync.Mutex
	events []any
	signal chan struct{}
}

func newServer(t *testing.T, opts Options) *Server {
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

func newClient(t *testing.T, s *Server, dbPath string) *testClient {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "device.db")
	}
	log := waLog.Noop
	if os.Getenv("FAKEWA_CLIENT_LOG") != "" {
		log = waLog.Stdout("client", "DEBUG", false)
	}
	ctx := context.Background()
	container, err := sqlstore.New(ctx, "sqlite3", "file:"+dbPath+"?_foreign_keys=on&_journal_mode=WAL&_busy_timeout=5000", log)
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
func pair(t *testing.T, tc *testClient, phone *Phone) types.JID {
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
	waitFor[*events.PairSuccess](tc, 10*time.Second, nil)
	waitFor[*events.Connected](tc, 20*time.Second, nil)
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
	if len(devs) != 1 || devs[0].Name != "wabot-test" || !devs[0].Online {
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
