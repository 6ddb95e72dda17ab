package tenant

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// wakeChannel is the one PostgreSQL notification channel wabot uses; the
// payload names the Waker channel (an instance, a tenant's live page).
const wakeChannel = "wabot_wake"

// PostgresWaker is the Waker of instances sharing a PostgreSQL database:
// Notify is a NOTIFY every instance hears at once, through one LISTEN
// connection per instance. Listeners also wake on a slow poll, so a
// notification lost while that connection was down is only late.
type PostgresWaker struct {
	local *PollWaker // this process's listeners, and the slow poll
	db    *Store
	url   string
	log   *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

// NewPostgresWaker starts listening on the database at databaseURL;
// poll is the fallback interval. Close stops it.
func NewPostgresWaker(st *Store, databaseURL string, poll time.Duration, log *slog.Logger) *PostgresWaker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &PostgresWaker{local: NewPollWaker(poll), db: st, url: databaseURL, log: log, cancel: cancel, done: make(chan struct{})}
	go w.listen(ctx)
	return w
}

// Notify tells every instance's listeners of channel.
func (w *PostgresWaker) Notify(ctx context.Context, channel string) error {
	w.local.Notify(ctx, channel) // this process's listeners need no round trip
	_, err := w.db.db.write.ExecContext(ctx, `SELECT pg_notify(?, ?)`, wakeChannel, channel)
	return err
}

// Listen wakes on a notification of channel from any instance, and on
// the poll.
func (w *PostgresWaker) Listen(channel string) (<-chan struct{}, func()) {
	return w.local.Listen(channel)
}

// Close stops listening.
func (w *PostgresWaker) Close() {
	w.cancel()
	<-w.done
}

func (w *PostgresWaker) listen(ctx context.Context) {
	defer close(w.done)
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("the PostgreSQL notification connection dropped; listeners fall back to polling until it is back", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (w *PostgresWaker) listenOnce(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(w.url)
	if err != nil {
		return errors.New("the database URL does not parse")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+wakeChannel); err != nil {
		return err
	}
	// Anything notified while the connection was down was missed: wake
	// every listener once.
	w.local.wakeAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		w.local.Notify(ctx, n.Payload)
	}
}
