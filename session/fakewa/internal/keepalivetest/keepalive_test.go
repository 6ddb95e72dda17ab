// Package keepalivetest checks that a server which stops answering
// keepalive pings makes whatsmeow reconnect. It is its own test process
// because the keepalive timings are whatsmeow package variables: set short
// here, they would force reconnects in every other test of a shared process.
package keepalivetest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
)

func TestMain(m *testing.M) {
	whatsmeow.KeepAliveIntervalMin = 500 * time.Millisecond
	whatsmeow.KeepAliveIntervalMax = 800 * time.Millisecond
	whatsmeow.KeepAliveResponseDeadline = 500 * time.Millisecond
	whatsmeow.KeepAliveMaxFailTime = 2 * time.Second
	os.Exit(m.Run())
}

func TestKeepaliveTimeoutForcesReconnect(t *testing.T) {
	srv := fakewatest.NewServer(t, fakewa.Options{})
	ctx := context.Background()
	container, err := sqlstore.New(ctx, "sqlite3", "file:"+filepath.Join(t.TempDir(), "d.db")+"?_foreign_keys=on&_txlock=immediate&_busy_timeout=5000", waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer container.Close()
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli := whatsmeow.NewClient(dev, waLog.Noop)
	if err := srv.Configure(cli); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var qr []string
	connected, timeouts := 0, 0
	cli.AddEventHandler(func(evt any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := evt.(type) {
		case *events.QR:
			qr = e.Codes
		case *events.Connected:
			connected++
		case *events.KeepAliveTimeout:
			timeouts++
		}
	})
	defer cli.Disconnect()
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("a QR code", func() bool { return len(qr) > 0 })
	if _, err := srv.NewPhone("").Scan(ctx, qr[0]); err != nil {
		t.Fatal(err)
	}
	wait("connected", func() bool { return connected == 1 })
	srv.SetPingsAnswered(false)
	wait("a keepalive timeout", func() bool { return timeouts > 0 })
	wait("a forced reconnect", func() bool { return connected >= 2 })
	srv.SetPingsAnswered(true)
}
