package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Control requests: commands such as `wabot tenant reset ID` run in their
// own process, so they write a request that the running instance carries
// out and answers.

// ControlRequest is an action asked of the running instance.
type ControlRequest struct {
	ID       int64
	TenantID string
	Action   Action
	// Arg is the action's argument (the phone number to pair).
	Arg string
	// ExpiresAt: past it nobody carries the request out (its asker gave
	// up waiting); zero is never.
	ExpiresAt time.Time
}

// RequestControl writes a request and returns its id.
func (s *Store) RequestControl(ctx context.Context, tenantID string, action Action) (int64, error) {
	var id int64
	err := s.db.write.QueryRowContext(ctx, `INSERT INTO control_requests (tenant_id, action, created_at) VALUES (?, ?, ?) RETURNING id`,
		tenantID, action, ms(s.now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("writing a control request: %w", err)
	}
	return id, nil
}

// ControlResult returns a request's result once done is true.
func (s *Store) ControlResult(ctx context.Context, id int64) (result string, done bool, err error) {
	var doneAt sql.NullInt64
	err = s.db.read.QueryRowContext(ctx, `SELECT done_at, result FROM control_requests WHERE id = ?`, id).Scan(&doneAt, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, ErrNotFound
	}
	if err != nil {
		return "", false, fmt.Errorf("reading control request %d: %w", id, err)
	}
	return result, doneAt.Valid, nil
}

// Session actions the portal asks of the instance that holds a tenant's
// lease, when the instance serving the request does not (session/leases.go).
const (
	ControlStart     Action = "session:start"
	ControlStop      Action = "session:stop"
	ControlLink      Action = "session:link"
	ControlLinkPhone Action = "session:link-phone"
	ControlRestart   Action = "session:restart"
	ControlReset     Action = "session:reset"
	ControlLogout    Action = "session:logout"
)

// AskControl writes a request with its argument and expiry and returns its
// id.
func (s *Store) AskControl(ctx context.Context, r ControlRequest) (int64, error) {
	var id int64
	err := s.db.write.QueryRowContext(ctx, `INSERT INTO control_requests (tenant_id, action, arg, expires_at, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		r.TenantID, r.Action, r.Arg, msOrZero(r.ExpiresAt), ms(s.now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("writing a control request: %w", err)
	}
	return id, nil
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// ControlOutcome is a request's answer: once Done, Result is what it
// returned and Code, for a failure, the machine code of its error
// (CodeFailed when it had none), Result then its message.
type ControlOutcome struct {
	Done   bool
	Result string
	Code   string
}

// CodeFailed marks a failed request whose error had no domain code.
const CodeFailed = "failed"

// ControlOutcomeOf reads a request's answer.
func (s *Store) ControlOutcomeOf(ctx context.Context, id int64) (ControlOutcome, error) {
	var o ControlOutcome
	var doneAt sql.NullInt64
	err := s.db.read.QueryRowContext(ctx, `SELECT done_at, result, error_code FROM control_requests WHERE id = ?`, id).Scan(&doneAt, &o.Result, &o.Code)
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("reading control request %d: %w", id, err)
	}
	o.Done = doneAt.Valid
	return o, nil
}

// ControlRequestsFor lists the open, unexpired requests that owner is to
// carry out, oldest first: those for tenants whose lease it holds, and
// those for tenants that do not exist (any instance answers them).
func (s *Store) ControlRequestsFor(ctx context.Context, owner string, limit int) ([]ControlRequest, error) {
	now := ms(s.now())
	rows, err := s.db.read.QueryContext(ctx, `SELECT c.id, c.tenant_id, c.action, c.arg, c.expires_at FROM control_requests c
		WHERE c.done_at IS NULL AND (c.expires_at = 0 OR c.expires_at > ?)
		AND (EXISTS (SELECT 1 FROM tenant_leases l WHERE l.tenant_id = c.tenant_id AND l.owner = ? AND l.expires_at >= ?)
			OR NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = c.tenant_id))
		ORDER BY c.id LIMIT ?`, now, owner, now, limit)
	if err != nil {
		return nil, fmt.Errorf("reading control requests: %w", err)
	}
	defer rows.Close()
	var out []ControlRequest
	for rows.Next() {
		var r ControlRequest
		var exp int64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Action, &r.Arg, &exp); err != nil {
			return nil, err
		}
		if exp != 0 {
			r.ExpiresAt = fromMS(exp)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FinishControl records a request's result and, for a failure, its code.
// A request already finished keeps its first answer.
func (s *Store) FinishControl(ctx context.Context, id int64, result, code string) error {
	_, err := s.db.write.ExecContext(ctx, `UPDATE control_requests SET done_at = ?, result = ?, error_code = ? WHERE id = ? AND done_at IS NULL`,
		ms(s.now()), result, code, id)
	if err != nil {
		return fmt.Errorf("finishing control request %d: %w", id, err)
	}
	return nil
}

// OpenControlRequests lists requests not carried out yet, oldest first.
func (s *Store) OpenControlRequests(ctx context.Context, limit int) ([]ControlRequest, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, tenant_id, action FROM control_requests WHERE done_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading control requests: %w", err)
	}
	defer rows.Close()
	var out []ControlRequest
	for rows.Next() {
		var r ControlRequest
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Action); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FinishControlRequest records a request's result.
func (s *Store) FinishControlRequest(ctx context.Context, id int64, result string) error {
	_, err := s.db.write.ExecContext(ctx, `UPDATE control_requests SET done_at = ?, result = ? WHERE id = ?`, ms(s.now()), result, id)
	if err != nil {
		return fmt.Errorf("finishing control request %d: %w", id, err)
	}
	return nil
}

// Waker wakes an instance when something was written for it (a control
// request, a control request's answer), so it need not poll the database
// often. Notify is best effort; a listener also wakes by itself now and
// then, which is what makes a missed notification harmless.
type Waker interface {
	// Notify wakes the listeners of channel.
	Notify(ctx context.Context, channel string) error
	// Listen returns a channel signalled when channel is notified (one
	// signal may stand for several) until stop is called.
	Listen(channel string) (wake <-chan struct{}, stop func())
}

// PollWaker is the Waker of a database without notifications (SQLite): a
// listener wakes every Interval, and at once when this process notifies
// its channel. PostgreSQL's LISTEN/NOTIFY can stand behind the same
// interface.
type PollWaker struct {
	Interval time.Duration

	mu        sync.Mutex
	listeners map[string]map[chan struct{}]struct{}
}

// NewPollWaker returns a PollWaker waking listeners every interval.
func NewPollWaker(interval time.Duration) *PollWaker {
	return &PollWaker{Interval: interval}
}

// Notify wakes the channel's listeners in this process.
func (w *PollWaker) Notify(_ context.Context, channel string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.listeners[channel] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// wakeAll signals every listener once, of whatever channel: after
// notifications may have been missed.
func (w *PollWaker) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, chans := range w.listeners {
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Listen signals every Interval and on Notify.
func (w *PollWaker) Listen(channel string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.listeners == nil {
		w.listeners = map[string]map[chan struct{}]struct{}{}
	}
	if w.listeners[channel] == nil {
		w.listeners[channel] = map[chan struct{}]struct{}{}
	}
	w.listeners[channel][ch] = struct{}{}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(w.Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			close(done)
			w.mu.Lock()
			delete(w.listeners[channel], ch)
			if len(w.listeners[channel]) == 0 {
				delete(w.listeners, channel)
			}
			w.mu.Unlock()
		})
	}
}
