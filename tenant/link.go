package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LinkState is where a tenant's WhatsApp link stands.
type LinkState string

const (
	StateQRPending    LinkState = "QR_PENDING"
	StateQRReady      LinkState = "QR_READY"
	StateQRExpired    LinkState = "QR_EXPIRED"
	StateConnected    LinkState = "CONNECTED"
	StateDisconnected LinkState = "DISCONNECTED"
	StateError        LinkState = "ERROR"
	StateLoggedOut    LinkState = "LOGGED_OUT"
)

// LinkStates lists the states in the order people read them.
var LinkStates = []LinkState{StateQRPending, StateQRReady, StateQRExpired, StateConnected, StateDisconnected, StateError, StateLoggedOut}

// Link is the row the portal shows for a tenant's WhatsApp link (its
// "session" in WhatsApp's words; not a browser session). Only the tenant's
// supervisor writes it.
type Link struct {
	TenantID          string
	State             LinkState
	QRCode            string // raw string the phone scans
	QRDataURI         string // PNG of QRCode as a data: URI
	QRUpdatedAt       time.Time
	QRExpiresAt       time.Time // when the code rotates or runs out
	PairCode          string    // pairing by phone number
	JID               string
	PushName          string
	ConnectedAt       time.Time
	ErrorCode         Problem
	LastError         string
	ReconnectAttempts int
	Reconnects        int
	UpdatedAt         time.Time
}

// Problem is the stable code of a link in ERROR or LOGGED_OUT. The
// portal, the API and the operator's guide key on it; the link's
// LastError says in a sentence what a person can do.
type Problem string

const (
	ProblemReconnectFailed Problem = "reconnect_failed" // WhatsApp unreachable after the last retry
	ProblemReplaced        Problem = "stream_replaced"  // another client took the link over
	ProblemOutdated        Problem = "client_outdated"  // WhatsApp refuses this version
	ProblemTemporaryBan    Problem = "temporary_ban"    // WhatsApp banned the number for a while
	ProblemConnectFailure  Problem = "connect_failure"  // WhatsApp refused the login
	ProblemPairFailed      Problem = "pair_failed"      // linking failed
	ProblemLoggedOut       Problem = "logged_out"       // the phone unlinked the device
	ProblemStoreFailed     Problem = "store_failed"     // the device store cannot be used
)

// Problems lists every problem code.
var Problems = []Problem{ProblemReconnectFailed, ProblemReplaced, ProblemOutdated, ProblemTemporaryBan,
	ProblemConnectFailure, ProblemPairFailed, ProblemLoggedOut, ProblemStoreFailed}

// WorkerStatus is the state of a tenant's supervisor goroutine.
type WorkerStatus string

const (
	WorkerStarting WorkerStatus = "STARTING"
	WorkerRunning  WorkerStatus = "RUNNING"
	WorkerStopped  WorkerStatus = "STOPPED"
	WorkerCrashed  WorkerStatus = "CRASHED"
)

// WorkerStatuses lists every supervisor status.
var WorkerStatuses = []WorkerStatus{WorkerStarting, WorkerRunning, WorkerStopped, WorkerCrashed}

// Worker is the heartbeat row of a tenant's supervisor.
type Worker struct {
	TenantID   string
	Status     WorkerStatus
	LastSeenAt time.Time
	Restarts   int
	UpdatedAt  time.Time
}

// LinkOf returns the tenant's link row.
func (s *Store) LinkOf(ctx context.Context, tenantID string) (Link, error) {
	var x Link
	var qrCode, qrURI, pair, jid, push, errCode, lastErr sql.NullString
	var qrUpd, qrExp, conn sql.NullInt64
	var upd int64
	err := s.db.read.QueryRowContext(ctx, `SELECT tenant_id, state, qr_code, qr_data_uri, qr_updated_at, qr_expires_at, pair_code,
		jid, push_name, connected_at, error_code, last_error, reconnect_attempts, reconnects, updated_at
		FROM wa_sessions WHERE tenant_id = ?`, tenantID).Scan(&x.TenantID, &x.State, &qrCode, &qrURI, &qrUpd, &qrExp, &pair,
		&jid, &push, &conn, &errCode, &lastErr, &x.ReconnectAttempts, &x.Reconnects, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("reading session: %w", err)
	}
	x.QRCode, x.QRDataURI, x.PairCode = qrCode.String, qrURI.String, pair.String
	x.JID, x.PushName, x.ErrorCode, x.LastError = jid.String, push.String, Problem(errCode.String), lastErr.String
	x.QRUpdatedAt, x.QRExpiresAt, x.ConnectedAt = fromNullMS(qrUpd), fromNullMS(qrExp), fromNullMS(conn)
	x.UpdatedAt = fromMS(upd)
	return x, nil
}

// SaveLink writes the whole link row. A change of state or error code
// queues a session.state event in the same transaction: each change is
// told once, and never lost to a crash between the two writes.
func (s *Store) SaveLink(ctx context.Context, x Link) error {
	var queued int
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		var prev LinkState
		var prevCode sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT state, error_code FROM wa_sessions WHERE tenant_id = ?`, x.TenantID).Scan(&prev, &prevCode)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no row: nothing to update, as before
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE wa_sessions SET state = ?, qr_code = ?, qr_data_uri = ?, qr_updated_at = ?,
		qr_expires_at = ?, pair_code = ?, jid = ?, push_name = ?, connected_at = ?, error_code = ?, last_error = ?,
		reconnect_attempts = ?, reconnects = ?, updated_at = ? WHERE tenant_id = ?`,
			x.State, nullString(x.QRCode), nullString(x.QRDataURI), nullMS(x.QRUpdatedAt), nullMS(x.QRExpiresAt), nullString(x.PairCode),
			nullString(x.JID), nullString(x.PushName), nullMS(x.ConnectedAt), nullString(string(x.ErrorCode)), nullString(x.LastError),
			x.ReconnectAttempts, x.Reconnects, ms(s.now()), x.TenantID)
		if err != nil || (prev == x.State && Problem(prevCode.String) == x.ErrorCode) {
			return err
		}
		queued, err = s.queueEvent(ctx, tx, x.TenantID, EventSessionState, sessionStateEvent(x, prev))
		return err
	})
	if err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	s.eventsQueued(queued)
	return nil
}

// WorkerOf returns the tenant's worker row.
func (s *Store) WorkerOf(ctx context.Context, tenantID string) (Worker, error) {
	var w Worker
	var seen sql.NullInt64
	var upd int64
	err := s.db.read.QueryRowContext(ctx, `SELECT tenant_id, status, last_seen_at, restarts, updated_at FROM workers WHERE tenant_id = ?`, tenantID).
		Scan(&w.TenantID, &w.Status, &seen, &w.Restarts, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return Worker{}, ErrNotFound
	}
	w.LastSeenAt, w.UpdatedAt = fromNullMS(seen), fromMS(upd)
	return w, err
}

// SaveWorker writes the worker row; a zero LastSeenAt keeps the stored one.
func (s *Store) SaveWorker(ctx context.Context, w Worker) error {
	_, err := s.db.write.ExecContext(ctx, `UPDATE workers SET status = ?, last_seen_at = COALESCE(?, last_seen_at), restarts = ?, updated_at = ? WHERE tenant_id = ?`,
		w.Status, nullMS(w.LastSeenAt), w.Restarts, ms(s.now()), w.TenantID)
	if err != nil {
		return fmt.Errorf("saving worker: %w", err)
	}
	return nil
}

// Overview is one tenant with its link and worker, as admins list them.
type Overview struct {
	Tenant Tenant
	Link   Link
	Worker Worker
	Owner  string // email of the user who created it
}

// Overviews lists every tenant with its link and worker rows, oldest
// first; state filters by link state when not empty.
func (s *Store) Overviews(ctx context.Context, state LinkState) ([]Overview, error) {
	q := `SELECT t.id, t.name, t.status, t.created_at, t.updated_at,
		s.state, COALESCE(s.jid, ''), COALESCE(s.push_name, ''), s.connected_at, COALESCE(s.error_code, ''), COALESCE(s.last_error, ''), s.reconnect_attempts, s.reconnects,
		w.status, w.last_seen_at, w.restarts,
		COALESCE((SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = t.id AND m.role = 'owner' ORDER BY m.created_at, u.created_at LIMIT 1), '')
		FROM tenants t JOIN wa_sessions s ON s.tenant_id = t.id JOIN workers w ON w.tenant_id = t.id`
	var args []any
	if state != "" {
		q += ` WHERE s.state = ?`
		args = append(args, state)
	}
	q += ` ORDER BY t.created_at, t.id`
	rows, err := s.db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	defer rows.Close()
	var out []Overview
	for rows.Next() {
		var o Overview
		var tc, tu int64
		var conn, seen sql.NullInt64
		if err := rows.Scan(&o.Tenant.ID, &o.Tenant.Name, &o.Tenant.Status, &tc, &tu,
			&o.Link.State, &o.Link.JID, &o.Link.PushName, &conn, &o.Link.ErrorCode, &o.Link.LastError, &o.Link.ReconnectAttempts, &o.Link.Reconnects,
			&o.Worker.Status, &seen, &o.Worker.Restarts, &o.Owner); err != nil {
			return nil, err
		}
		o.Tenant.CreatedAt, o.Tenant.UpdatedAt = fromMS(tc), fromMS(tu)
		o.Link.TenantID, o.Worker.TenantID = o.Tenant.ID, o.Tenant.ID
		o.Link.ConnectedAt, o.Worker.LastSeenAt = fromNullMS(conn), fromNullMS(seen)
		out = append(out, o)
	}
	return out, rows.Err()
}

// LastHeartbeat is the newest heartbeat of a running session: recent
// means a wabot is running on this database.
func (s *Store) LastHeartbeat(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	err := s.db.read.QueryRowContext(ctx, `SELECT MAX(last_seen_at) FROM workers WHERE status = ?`, WorkerRunning).Scan(&at)
	return fromNullMS(at), err
}
