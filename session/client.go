package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"

	"wabot/tenant"
)

// client is one generation of a tenant's whatsmeow client with its store.
// The goroutines the supervisor starts for it (connect, phone pairing) are
// tracked in tasks and end with it: teardown cancels ctx, then waits.
type client struct {
	gen       int
	cli       *whatsmeow.Client
	db        *sql.DB
	container *sqlstore.Container

	ctx    context.Context
	cancel context.CancelFunc
	tasks  sync.WaitGroup
}

// Per-connection SQLite caches of a device store, kept small so idle
// tenants stay small: 64 KiB of pages and 24 prepared statements (enough
// for whatsmeow's per-message queries).
const (
	dsnCacheSize     = "-64"
	dsnStmtCacheSize = "24"
)

func (s *supervisor) openClient() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(filepath.Join(s.dir, "whatsmeow.db"), "_cache_size", dsnCacheSize, "_stmt_cache_size", dsnStmtCacheSize))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Minute)
	wlog := newWALogger(s.log)
	container := sqlstore.NewWithDB(db, "sqlite3", wlog)
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := container.Upgrade(ctx); err != nil {
		db.Close()
		return fmt.Errorf("preparing device store: %w", err)
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		db.Close()
		return fmt.Errorf("reading device store: %w", err)
	}
	s.gen++
	cli := whatsmeow.NewClient(dev, wlog.Sub("client"))
	// The supervisor reconnects by itself, counted and with its own
	// backoff, whatever dropped the connection: a remote close, a refused
	// login, WhatsApp's 515 "restart the stream", silent keepalives.
	cli.EnableAutoReconnect = false
	cli.DisableLoginAutoReconnect = true
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	c := &client{gen: s.gen, cli: cli, db: db, container: container}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	if err := s.m.connector.Prepare(cli); err != nil {
		c.cancel()
		db.Close()
		return err
	}
	cli.AddEventHandlerWithSuccessStatus(s.eventHandler(c))
	s.client = c
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = cli, c.gen, s.pipe
	s.currentMu.Unlock()
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
	c.tasks.Go(func() {
		if dialed, err := s.dial(c); dialed {
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
	// whatsmeow ties the connection's goroutines to this context, so it
	// must outlive c.ctx and the supervisor's: a context cancelled under a
	// live socket makes whatsmeow's reader race with Disconnect. teardown
	// closes the socket with Disconnect instead.
	err = c.cli.ConnectContext(context.WithoutCancel(s.ctx))
	if errors.Is(err, whatsmeow.ErrAlreadyConnected) {
		err = nil
	}
	return true, err
}

// teardown disconnects and closes the current client. Phone pairing
// requests still waiting are answered: their client is gone.
func (s *supervisor) teardown() {
	s.stopTimers()
	s.dialing, s.loggedIn, s.keepaliveLost = false, false, false
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
		c.close()
	}
}

// close ends the generation. Its goroutines go first: cancelling ctx stops
// their waits and makes their posts return (teardown runs on the loop that
// would read them), and a dial in flight finishes before Disconnect, so no
// socket opens after it. Then the socket, then the store.
func (c *client) close() {
	c.cancel()
	c.tasks.Wait()
	c.cli.Disconnect()
	c.cli.RemoveEventHandlers()
	c.container.Close()
	c.db.Close()
}
