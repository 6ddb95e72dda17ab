package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"

	"wabot/app/database"
)

// client is one generation of a tenant's whatsmeow client with its store.
type client struct {
	gen       int
	cli       *whatsmeow.Client
	db        *sql.DB
	container *sqlstore.Container
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
	db, err := sql.Open("sqlite3", database.DSN(filepath.Join(s.dir, "whatsmeow.db"), "_cache_size", dsnCacheSize, "_stmt_cache_size", dsnStmtCacheSize))
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
	gen := s.gen
	cli := whatsmeow.NewClient(dev, wlog.Sub("client"))
	cli.EnableAutoReconnect = true
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	cli.AutoReconnectHook = s.reconnectHook(gen, cli)
	if err := s.m.connector.Prepare(cli); err != nil {
		db.Close()
		return err
	}
	cli.AddEventHandlerWithSuccessStatus(s.eventHandler(gen))
	s.client = &client{gen: gen, cli: cli, db: db, container: container}
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = cli, gen, s.pipe
	s.currentMu.Unlock()
	return nil
}

// reconnectHook counts whatsmeow's failed reconnects. It gives up after
// the configured maximum, and otherwise waits a capped, jittered
// exponential backoff in place of whatsmeow's growing linear delay.
func (s *supervisor) reconnectHook(gen int, cli *whatsmeow.Client) func(error) bool {
	return func(err error) bool {
		n := int(s.attempts.Add(1))
		s.post(gen, reconnectFailed{attempts: n, err: err})
		if n >= s.m.cfg.ReconnectMaxAttempts {
			return false
		}
		select {
		case <-time.After(s.backoff(n)):
		case <-s.ctx.Done():
			return false
		}
		cli.AutoReconnectErrors = 0
		return true
	}
}

func (s *supervisor) backoff(attempt int) time.Duration {
	d := s.m.cfg.ReconnectBaseDelay << min(attempt-1, 20)
	return jitter(min(d, s.m.cfg.ReconnectMaxDelay))
}

// jitter spreads d over [d/2, d) so tenants that failed together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// connect dials in the background, at most ConnectConcurrency tenants at
// a time, and posts the result.
func (s *supervisor) connect() {
	c := s.client
	if c == nil {
		return
	}
	go func() {
		select {
		case s.m.connectSem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		// whatsmeow ties the connection's goroutines to this context. It
		// must outlive the supervisor's: teardown disconnects first, and a
		// context cancelled under a live socket makes whatsmeow's reader
		// race with Disconnect.
		err := c.cli.ConnectContext(context.WithoutCancel(s.ctx))
		<-s.m.connectSem
		if errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			err = nil
		}
		s.post(c.gen, connectResult{err: err})
	}()
}

// teardown disconnects and closes the current client.
func (s *supervisor) teardown() {
	s.stopTimers()
	c := s.client
	s.client = nil
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = nil, 0, nil
	s.currentMu.Unlock()
	if s.pipe != nil {
		s.pipe.Online(false)
	}
	if c != nil {
		c.cli.Disconnect()
		c.cli.RemoveEventHandlers()
		c.container.Close()
		c.db.Close()
	}
}
