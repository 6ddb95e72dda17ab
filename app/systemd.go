package app

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The unit file operators install; `wabot systemd-unit` prints it with
// ExecStart pointing at the running binary.
//
//go:embed wabot.service
var unitFile string

func systemdUnit(binary string) string {
	return strings.Replace(unitFile, "ExecStart=/usr/local/bin/wabot serve", "ExecStart="+binary+" serve", 1)
}

// notifier speaks systemd's notify protocol (sd_notify): a datagram to the
// socket in NOTIFY_SOCKET. Without that variable it does nothing.
type notifier struct {
	addr *net.UnixAddr
}

func newNotifier(getenv func(string) string) *notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return &notifier{}
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // abstract socket
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

func (n *notifier) enabled() bool { return n.addr != nil }

// notify sends one message such as "READY=1"; errors are returned for the
// caller to log, never fatal.
func (n *notifier) notify(state string) error {
	if n.addr == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// watchdogInterval is half of WATCHDOG_USEC, as systemd recommends; zero
// when the watchdog is off (or meant for another process).
func watchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// superviseSystemd tells systemd the service is ready, then pings its
// watchdog while the HTTP server and the database answer, with a status
// line of connected tenants, until ctx ends.
func (a *App) superviseSystemd(ctx context.Context, n *notifier, watchdog time.Duration) {
	if !n.enabled() {
		return
	}
	if err := n.notify("READY=1\nSTATUS=" + a.statusLine(ctx)); err != nil {
		a.log.Warn("cannot notify systemd", "err", err)
	}
	every := watchdog
	if every <= 0 || every > 30*time.Second {
		every = 30 * time.Second // refresh STATUS even without a watchdog
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msg := "STATUS=" + a.statusLine(ctx)
		if watchdog > 0 {
			if err := a.alive(ctx); err != nil {
				a.log.Error("health check failed; not petting the systemd watchdog", "err", err)
			} else {
				msg = "WATCHDOG=1\n" + msg
			}
		}
		if err := n.notify(msg); err != nil {
			a.log.Warn("cannot notify systemd", "err", err)
		}
	}
}

// alive checks the database and the HTTP server's own accept loop.
func (a *App) alive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr()+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("http: /healthz answered %d", resp.StatusCode)
	}
	return nil
}

// statusLine is the one line `systemctl status wabot` shows.
func (a *App) statusLine(ctx context.Context) string {
	connected, total, err := a.store.ConnectedCount(ctx)
	if err != nil {
		a.log.Warn("cannot count connected tenants for the status line", "err", err)
		return "tenant count unavailable"
	}
	return fmt.Sprintf("%d of %d tenants connected", connected, total)
}
