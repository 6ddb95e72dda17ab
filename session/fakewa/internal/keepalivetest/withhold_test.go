package keepalivetest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"wabot/session/fakewa"
)

// counted is a linked whatsmeow client that counts the events this test
// looks at.
type counted struct {
	cli *whatsmeow.Client
	jid types.JID

	mu                  sync.Mutex
	connected, timeouts int
}

func (c *counted) get() (connected, timeouts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected, c.timeouts
}

func link(t *testing.T, srv *fakewa.Server) *counted {
	t.Helper()
	ctx := context.Background()
	container, err := sqlstore.New(ctx, "sqlite3", "file:"+filepath.Join(t.TempDir(), "d.db")+"?_foreign_keys=on&_txlock=immediate&_busy_timeout=5000", waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { container.Close() })
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{cli: whatsmeow.NewClient(dev, waLog.Noop)}
	c.cli.EnableAutoReconnect = true
	if err := srv.Configure(c.cli); err != nil {
		t.Fatal(err)
	}
	qr := make(chan string, 1)
	c.cli.AddEventHandler(func(evt any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch e := evt.(type) {
		case *events.QR:
			select {
			case qr <- e.Codes[0]:
			default:
			}
		case *events.Connected:
			c.connected++
		case *events.KeepAliveTimeout:
			c.timeouts++
		}
	})
	t.Cleanup(c.cli.Disconnect)
	if err := c.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	var code string
	select {
	case code = <-qr:
	case <-time.After(20 * time.Second):
		t.Fatal("no QR code")
	}
	if c.jid, err = srv.NewPhone("").Scan(ctx, code); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "connected", func() bool { n, _ := c.get(); return n == 1 })
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WithholdPings starves one device of keepalive answers, on its new
// connections too, for as long as asked, and leaves every other device
// alone.
func TestWithholdPingsIsPerDeviceAndEnds(t *testing.T) {
	srv, err := fakewa.NewServer(fakewa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	starved, other := link(t, srv), link(t, srv)

	srv.WithholdPings(starved.jid, 5*time.Second)
	waitUntil(t, "a keepalive timeout", func() bool { _, n := starved.get(); return n > 0 })
	waitUntil(t, "a forced reconnect", func() bool { n, _ := starved.get(); return n >= 2 })
	// Still starved after the reconnect, until the 5 seconds are over.
	_, before := starved.get()
	waitUntil(t, "a timeout on the new connection", func() bool { _, n := starved.get(); return n > before })
	time.Sleep(5 * time.Second)
	connected, timeouts := starved.get()
	time.Sleep(3 * time.Second)
	if c, n := starved.get(); c != connected || n != timeouts {
		t.Fatalf("after the window: %d more reconnects, %d more timeouts", c-connected, n-timeouts)
	}
	if c, n := other.get(); c != 1 || n != 0 {
		t.Fatalf("the other device: %d connects, %d keepalive timeouts", c, n)
	}
}
