// Command wabot-baseline is the benchmark's yardstick: bare whatsmeow
// clients, one per tenant, each with its own SQLite device store, that
// answer every text with "pong <text>" on their event goroutine and do
// nothing else. It links its tenants through a standalone fake WhatsApp
// (session/fakewa/cmd/fakewa), prints their numbers as one JSON line and
// answers until SIGTERM. wabot-bench runs it beside wabot, against the
// same fake with the same load, so wabot's own cost shows as a ratio.
//
//	wabot-baseline -fakewa fakewa.json -dir /tmp/b -tenants 50
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

	"wabot/session/fakewa"
)

func main() {
	info := flag.String("fakewa", "", "the info file the standalone fake wrote (-info)")
	dir := flag.String("dir", "", "folder for the device stores")
	n := flag.Int("tenants", 1, "clients to link")
	pprofAddr := flag.String("pprof", "", "serve Go's profiler on this loopback address (for the benchmark)")
	flag.Parse()
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wabot-baseline:", err)
			os.Exit(1)
		}
		go http.Serve(ln, nil) // net/http/pprof registers on the default mux
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *info, *dir, *n); err != nil {
		fmt.Fprintln(os.Stderr, "wabot-baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, infoPath, dir string, n int) error {
	raw, err := os.ReadFile(infoPath)
	if err != nil {
		return err
	}
	var info fakewa.Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return err
	}
	remote, err := fakewa.LoadRemote(infoPath)
	if err != nil {
		return err
	}
	clients := make([]*whatsmeow.Client, n)
	numbers := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8) // as many scans at once as the bench makes for wabot
	for i := range n {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cli, number, err := link(ctx, remote, info.Control, filepath.Join(dir, fmt.Sprintf("t%04d.db", i)))
			clients[i], numbers[i] = cli, number
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			return err
		}
	}
	out, _ := json.Marshal(map[string][]string{"numbers": numbers})
	fmt.Println(string(out))
	<-ctx.Done()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(c.Disconnect)
	}
	wg.Wait()
	return nil
}

// link opens a device store, shows the fake its QR code, waits until the
// client is connected as the new device and installs the auto-reply.
func link(ctx context.Context, remote *fakewa.Remote, control, path string) (*whatsmeow.Client, string, error) {
	// The pragmas wabot's device stores have: WAL, NORMAL sync.
	dsn := "file:" + path + "?_foreign_keys=on&_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000"
	container, err := sqlstore.New(ctx, "sqlite3", dsn, waLog.Noop)
	if err != nil {
		return nil, "", err
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		return nil, "", err
	}
	cli := whatsmeow.NewClient(dev, waLog.Noop)
	if err := remote.Configure(cli); err != nil {
		return nil, "", err
	}
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.Connected:
			select {
			case connected <- struct{}{}:
			default:
			}
		case *events.Message:
			text := e.Message.GetConversation()
			if text == "" {
				text = e.Message.GetExtendedTextMessage().GetText()
			}
			if e.Info.IsFromMe || text == "" {
				return
			}
			cli.SendMessage(context.Background(), e.Info.Chat, &waE2E.Message{Conversation: proto.String("pong " + text)})
		}
	})
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := cli.Connect(); err != nil {
		return nil, "", err
	}
	scanned := false
	for item := range qr {
		if item.Event == "code" && !scanned {
			scanned = true
			body, _ := json.Marshal(map[string]string{"qr": item.Code})
			resp, err := http.Post("http://"+control+"/scan", "application/json", bytes.NewReader(body))
			if err != nil {
				return nil, "", err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, "", fmt.Errorf("scan: %s", resp.Status)
			}
		} else if item.Event != "code" && item != whatsmeow.QRChannelSuccess {
			return nil, "", fmt.Errorf("linking: %s %v", item.Event, item.Error)
		}
	}
	// After pairing WhatsApp restarts the stream; whatsmeow reconnects
	// by itself and logs in as the new device.
	select {
	case <-connected:
	case <-time.After(60 * time.Second):
		return nil, "", fmt.Errorf("linked but not connected after a minute")
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	return cli, cli.Store.ID.User, nil
}
