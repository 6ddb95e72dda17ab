package tenant

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Group commit: the message pipeline's per-message writes of every tenant
// share transactions. Each message used to commit on its own, four or
// five times over its life; under load the single writer then spends
// most of its time beginning and committing. Here a write waits for the
// transaction in progress to commit, then goes into the next one with
// every other write that arrived meanwhile: the busier the pipeline, the
// bigger the batch, and an idle one commits each write at once.
//
// Durability is unchanged: inGroup returns only after the transaction that
// holds the write committed, so a message is stored before whatsmeow
// acknowledges it, and a reply is logged before it is sent. Each write
// runs under its own savepoint, so one that fails is rolled back alone and
// its caller sees its error, as with a transaction of its own.

// groupCommit is the queue of writes waiting for the next transaction.
// Its zero value is ready; the goroutine that commits exists only while
// writes wait.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupWrite
	running bool
}

// groupWrite is one caller's share of a group transaction.
type groupWrite struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// run calls fn; a panic fails this write alone, as it would have failed
// its caller's own transaction, instead of the goroutine all writers
// wait on.
func (w *groupWrite) run(tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a write panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return w.fn(tx)
}

// maxGroup bounds the writes of one transaction, so a burst does not hold
// the writer (and every other writer's caller) for long.
const maxGroup = 256

// groupTimeout bounds one group transaction; each write also stops with
// its own context.
const groupTimeout = 30 * time.Second

// inGroup runs fn in a write transaction shared with other callers of
// inGroup, and returns once that transaction committed (nil) or fn's
// share of it was rolled back (fn's error, or the commit's). fn must use
// only tx for writes: the single writer connection is the transaction's.
// It waits for the outcome even when ctx ends meanwhile: a write must not
// be reported failed and then commit.
func (s *Store) inGroup(ctx context.Context, fn func(tx *sql.Tx) error) error {
	w := &groupWrite{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if !g.running {
		g.running = true
		go s.commitGroups()
	}
	g.mu.Unlock()
	return <-w.done
}

// commitGroups commits what waits, batch after batch, and ends when
// nothing does.
func (s *Store) commitGroups() {
	g := &s.group
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.running = false
			g.queue = nil
			g.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		s.commitGroup(batch)
	}
}

func (s *Store) commitGroup(batch []*groupWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, w := range batch {
			w.done <- err
		}
	}
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	if len(batch) == 1 { // alone: no savepoint needed
		w := batch[0]
		if err := w.ctx.Err(); err != nil {
			tx.Rollback()
			w.done <- err
			return
		}
		if err := w.run(tx); err != nil {
			tx.Rollback()
			w.done <- err
			return
		}
		w.done <- tx.Commit()
		return
	}
	for i, w := range batch {
		if errs[i] = w.ctx.Err(); errs[i] != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
		if errs[i] = w.run(tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
				tx.Rollback()
				fail(fmt.Errorf("%w (rolling back a failed write: %v)", errs[i], err))
				return
			}
		}
		// RELEASE after ROLLBACK TO ends the savepoint too.
		if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
	}
	err = tx.Commit()
	for i, w := range batch {
		if errs[i] == nil {
			errs[i] = err
		}
		w.done <- errs[i]
	}
}
