package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"

	"wabot/tenant"
)

// client is one generation of a tenant's whatsmeow client with its store.
// The goroutines the supervisor starts for it (connect, phone pairing) are
// tracked in tasks and end with it: teardown cancels ctx, then waits.
type client struct {
	gen int
	cli *whatsmeow.Client
	// closeStore closes the device store behind cli.
	closeStore func()

	ctx    context.Context
	cancel context.CancelFunc
	tasks  sync.WaitGroup

	// endConn and olderEnd end the contexts of the live connection and of
	// the one before it; a context goes when two newer connections exist.
	endConn, olderEnd context.CancelFunc
	// dialEnded is closed when the current dial returns; inDial says a
	// dial is between ConnectContext's start and end.
	dialEnded chan struct{}
	inDial    atomic.Bool
}

// dialGrace is how long teardown lets a dial in flight finish before
// abandoning it. A peer that answers completes the handshakes in
// milliseconds; cancelling during the Noise handshake makes whatsmeow's
// frame socket race with itself, so only a dial that hangs is cancelled.
const dialGrace = 3 * time.Second

func (s *supervisor) openClient() error {
	wlog := newWALogger(s.log)
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	dev, closeStore, err := s.m.cfg.Devices.Open(ctx, s.id, s.dir, wlog)
	if err != nil {
		return err
	}
	s.lockDecryption(dev)
	s.gen++
	cli := whatsmeow.NewClient(dev, wlog.Sub("client"))
	// The supervisor reconnects by itself, counted and with its own
	// backoff, whatever dropped the connection: a remote close, a refused
	// login, WhatsApp's 515 "restart the stream", silent keepalives.
	cli.EnableAutoReconnect = false
	cli.DisableLoginAutoReconnect = true
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	c := &client{gen: s.gen, cli: cli, closeStore: closeStore}
	// Only teardown ends a generation: a live socket must be closed before
	// its context ends (see close), so the supervisor's own cancellation
	// does not reach it directly.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(s.ctx))
	if err := s.m.connector.Prepare(cli); err != nil {
		c.cancel()
		closeStore()
		return err
	}
	cli.AddEventHandlerWithSuccessStatus(s.eventHandler(c))
	s.client = c
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = cli, c.gen, s.pipe
	s.currentMu.Unlock()
	return nil
}

// privateStore makes the tenant's folder 0700 and its device store 0600,
// whatever the umask, before SQLite opens it: the store holds the keys
// that act as the linked device. SQLite creates the -wal and -shm files
// with the database file's mode, so the store is created here first.
// Files an older version left open to others are closed to them.
func privateStore(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil { // MkdirAll keeps an existing folder's mode
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (s *supervisor) backoff(attempt int) time.Duration {
	return Backoff(s.m.cfg.ReconnectBaseDelay, s.m.cfg.ReconnectMaxDelay, attempt)
}

// connect dials in the background, at most ConnectConcurrency tenants at
// a time, and posts the result.
func (s *supervisor) connect() {
	c := s.client
	if c == nil || s.dialing {
		return
	}
	s.dialing, s.loggedIn = true, false
	c.dialEnded = make(chan struct{})
	ended := c.dialEnded
	c.tasks.Go(func() {
		dialed, err := s.dial(c)
		close(ended) // before posting: teardown, on the loop, may be waiting for it
		if dialed {
			s.post(c, connectResult{err: err})
		}
	})
}

// dial waits for a connect slot and connects c. dialed is false when c was
// torn down first. A panic becomes a failed connect, not a dead process.
func (s *supervisor) dial(c *client) (dialed bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			dialed, err = true, s.recovered("connecting", r)
		}
	}()
	select {
	case s.m.connectSem <- struct{}{}:
	case <-c.ctx.Done():
		return false, nil
	}
	defer func() { <-s.m.connectSem }()
	// The dial, the TLS and Noise handshakes and then the connection's
	// goroutines live in a context under c.ctx: teardown cancels it to
	// abandon a dial that hangs, and closes a live socket first. A dial
	// that takes longer than DialTimeout (a network that swallows packets,
	// a peer that never answers) is abandoned and counts as failed.
	connCtx, endConn := context.WithCancel(c.ctx)
	watchdog := time.AfterFunc(s.m.cfg.DialTimeout, endConn)
	c.inDial.Store(true)
	err = c.cli.ConnectContext(connCtx)
	c.inDial.Store(false)
	if !watchdog.Stop() && err != nil {
		err = fmt.Errorf("no answer within %s: %w", s.m.cfg.DialTimeout, err)
	}
	if err != nil {
		endConn()
	} else {
		// whatsmeow's handler loop of the last connection may still be
		// taking this one's first frames with its context, so that context
		// lives on; the one before it goes.
		if c.olderEnd != nil {
			c.olderEnd()
		}
		c.olderEnd, c.endConn = c.endConn, endConn
	}
	if errors.Is(err, whatsmeow.ErrAlreadyConnected) {
		err = nil
	}
	return true, err
}

// teardown disconnects and closes the current client. Phone pairing
// requests still waiting are answered: their client is gone.
func (s *supervisor) teardown() {
	s.stopTimers()
	dialing := s.dialing
	s.dialing, s.loggedIn, s.keepaliveLost, s.socketUp, s.retryAfterDial = false, false, false, false, 0
	s.answerPhone("", tenant.Errorf(tenant.CodeConflict, "the link attempt was stopped (the session was restarted or reset); start a new one"))
	c := s.client
	s.client = nil
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = nil, 0, nil
	s.currentMu.Unlock()
	if s.pipe != nil {
		s.pipe.Online(false)
	}
	if c != nil {
		c.close(dialing)
	}
}

// close ends the generation. A live socket is closed first: ending its
// context under it would make whatsmeow's reader race with Disconnect.
// Then the context ends, which abandons a dial in flight (dialing) and
// stops the generation's waits and posts (teardown runs on the loop that
// would read them), and its goroutines are waited for, so no socket opens
// after close. Then the store.
func (c *client) close(dialing bool) {
	if dialing && c.inDial.Load() {
		select {
		case <-c.dialEnded:
			dialing = false // it finished: close its socket like any other
		case <-time.After(dialGrace):
		}
	}
	if !dialing || !c.inDial.Load() {
		c.cli.Disconnect()
	}
	c.cancel()
	c.tasks.Wait()
	c.cli.Disconnect()
	c.cli.RemoveEventHandlers()
	c.closeStore()
}
