package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Tenant leases: with several wabot instances on one database, a tenant's
// WhatsApp session runs only on the instance holding its lease. A lease is
// an owner, an expiry the owner keeps pushing forward, and an epoch that
// grows with every claim; writes a supervisor makes carry the epoch (see
// WithFence), so an owner that lost its lease cannot overwrite its
// successor's rows. Times come from the instances' clocks, which must
// agree to well within the lease's validity.

// ErrLeaseLost refuses a write made under a lease the instance no longer
// holds: another instance claimed the tenant since.
var ErrLeaseLost = errors.New("the tenant's lease moved to another wabot instance")

// Instance is a running wabot as the instances table knows it.
type Instance struct {
	ID          string
	Hostname    string
	StartedAt   time.Time
	HeartbeatAt time.Time
	Draining    bool // shutting down: gets no new tenants
	Tenants     int  // leases it holds now
}

// Lease is a tenant held by an instance, with the epoch its writes carry.
type Lease struct {
	TenantID  string
	Epoch     int64
	ExpiresAt time.Time
	// Suspended: held, but no session runs for it.
	Suspended bool
	// AcquiredAt orders shedding: the longest held go first, so a tenant
	// just created (and probably being linked) stays where it is.
	AcquiredAt time.Time
}

// HeartbeatInstance records that the instance is alive (creating its row
// on the first beat). A draining instance counts for nobody's fair share.
func (s *Store) HeartbeatInstance(ctx context.Context, inst Instance) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error { return heartbeatTx(ctx, tx, inst, s.now()) })
	if err != nil {
		return fmt.Errorf("recording instance heartbeat: %w", err)
	}
	return nil
}

func heartbeatTx(ctx context.Context, tx *sql.Tx, inst Instance, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO instances (id, hostname, started_at, heartbeat_at, draining) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, draining = excluded.draining`,
		inst.ID, inst.Hostname, ms(inst.StartedAt), ms(now), inst.Draining)
	if err != nil {
		return err
	}
	// Every start is a new instance id: the rows of those that died
	// without removing theirs go after a day.
	_, err = tx.ExecContext(ctx, `DELETE FROM instances WHERE heartbeat_at < ?`, ms(now.Add(-instanceForgetAfter)))
	return err
}

// instanceForgetAfter is how long a silent instance's row is kept.
const instanceForgetAfter = 24 * time.Hour

// RemoveInstance deletes a stopped instance's row.
func (s *Store) RemoveInstance(ctx context.Context, id string) error {
	if _, err := s.db.write.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id); err != nil {
		return fmt.Errorf("removing instance %s: %w", id, err)
	}
	return nil
}

// LiveInstances lists the instances that beat within validity, with the
// unexpired leases each holds, oldest first.
func (s *Store) LiveInstances(ctx context.Context, validity time.Duration) ([]Instance, error) {
	now := s.now()
	rows, err := s.db.read.QueryContext(ctx, `SELECT i.id, i.hostname, i.started_at, i.heartbeat_at, i.draining,
		(SELECT COUNT(*) FROM tenant_leases l WHERE l.owner = i.id AND l.expires_at >= ?)
		FROM instances i WHERE i.heartbeat_at >= ? ORDER BY i.started_at, i.id`, ms(now), ms(now.Add(-validity)))
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		var started, beat int64
		if err := rows.Scan(&in.ID, &in.Hostname, &started, &beat, &in.Draining, &in.Tenants); err != nil {
			return nil, err
		}
		in.StartedAt, in.HeartbeatAt = fromMS(started), fromMS(beat)
		out = append(out, in)
	}
	return out, rows.Err()
}

// Claim is what ClaimLeases did.
type Claim struct {
	Claimed   []Lease
	FairShare int // ceil(tenants ÷ live instances): what each should hold
	Held      int // unexpired leases the owner holds, after the claim
}

// ClaimLeases gives owner unowned or expired leases until it holds its fair
// share. Instances that beat within validity and are not draining share
// the tenants; a lease claimed is valid for validity. Several instances
// may run it at once: the UPDATE checks again, row by row, that a lease is
// free, so each goes to one of them and the others try again next time.
func (s *Store) ClaimLeases(ctx context.Context, owner string, validity time.Duration) (Claim, error) {
	var c Claim
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = claimLeasesTx(ctx, tx, s.db.dialect, owner, s.now(), validity)
		return err
	})
	if err != nil {
		return Claim{}, fmt.Errorf("claiming tenant leases: %w", err)
	}
	return c, nil
}

// LeaseRound is an instance's regular turn in one transaction, so it
// waits for the database's writer once: its heartbeat, RenewLeases, then
// ClaimLeases.
func (s *Store) LeaseRound(ctx context.Context, inst Instance, validity time.Duration, held map[string]int64) (still []Lease, c Claim, err error) {
	now := s.now()
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := heartbeatTx(ctx, tx, inst, now); err != nil {
			return err
		}
		if still, err = renewTx(ctx, tx, inst.ID, now, validity, held); err != nil {
			return err
		}
		c, err = claimLeasesTx(ctx, tx, s.db.dialect, inst.ID, now, validity)
		return err
	})
	if err != nil {
		return nil, Claim{}, fmt.Errorf("renewing and claiming tenant leases: %w", err)
	}
	return still, c, nil
}

func claimLeasesTx(ctx context.Context, tx *sql.Tx, d Dialect, owner string, now time.Time, validity time.Duration) (Claim, error) {
	var c Claim
	err := func() error {
		// Tenants created since the last claim get their (free) lease rows.
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_leases (tenant_id)
			SELECT id FROM tenants WHERE id NOT IN (SELECT tenant_id FROM tenant_leases) ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
		var tenants, live int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenant_leases`).Scan(&tenants); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM instances WHERE heartbeat_at >= ? AND draining = 0`,
			ms(now.Add(-validity))).Scan(&live); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenant_leases WHERE owner = ? AND expires_at >= ?`,
			owner, ms(now)).Scan(&c.Held); err != nil {
			return err
		}
		c.FairShare = (tenants + max(live, 1) - 1) / max(live, 1)
		want := c.FairShare - c.Held
		if want <= 0 {
			return nil
		}
		var err error
		c.Claimed, err = claimTx(ctx, tx, d, `tenant_id IN (SELECT tenant_id FROM tenant_leases
			WHERE owner = '' OR expires_at < ? ORDER BY expires_at, tenant_id LIMIT ?)`, owner, now, validity, ms(now), want)
		c.Held += len(c.Claimed)
		return err
	}()
	return c, err
}

// ClaimLease gives owner the tenant's lease if it is unowned or expired,
// whatever the fair share: an action on a tenant nobody runs (a new one, or
// one whose owner died) starts it here at once. ok is false when another
// instance holds it.
func (s *Store) ClaimLease(ctx context.Context, tenantID, owner string, validity time.Duration) (l Lease, ok bool, err error) {
	now := s.now()
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_leases (tenant_id) SELECT id FROM tenants WHERE id = ? ON CONFLICT DO NOTHING`, tenantID); err != nil {
			return err
		}
		got, err := claimTx(ctx, tx, s.db.dialect, `tenant_id = ?`, owner, now, validity, tenantID)
		if len(got) == 1 {
			l, ok = got[0], true
		}
		return err
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("claiming the lease of %s: %w", tenantID, err)
	}
	return l, ok, nil
}

// claimTx takes the free leases among those where picks (with args) for
// owner, each with a new epoch.
func claimTx(ctx context.Context, tx *sql.Tx, d Dialect, picks, owner string, now time.Time, validity time.Duration, args ...any) ([]Lease, error) {
	exp := now.Add(validity)
	all := append([]any{owner, ms(exp), ms(now)}, args...)
	all = append(all, ms(now))
	// The rows change hands under an exclusive row lock, which waits for
	// every write still checking its fence on them (keyShareLock) to end.
	all = append(all, ms(now))
	rows, err := tx.QueryContext(ctx, `UPDATE tenant_leases SET owner = ?, epoch = epoch + 1, expires_at = ?, acquired_at = ?
		WHERE tenant_id IN (SELECT tenant_id FROM tenant_leases WHERE `+picks+` AND (owner = '' OR expires_at < ?)`+d.updateLock()+`)
		AND (owner = '' OR expires_at < ?)
		RETURNING tenant_id, epoch`, all...)
	if err != nil {
		return nil, err
	}
	var out []Lease
	for rows.Next() {
		l := Lease{ExpiresAt: fromMS(ms(exp)), AcquiredAt: fromMS(ms(now))}
		if err := rows.Scan(&l.TenantID, &l.Epoch); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, markSuspended(ctx, tx, out)
}

// markSuspended fills in which leases belong to suspended tenants.
func markSuspended(ctx context.Context, tx *sql.Tx, ls []Lease) error {
	for i := range ls {
		var st Status
		if err := tx.QueryRowContext(ctx, `SELECT status FROM tenants WHERE id = ?`, ls[i].TenantID).Scan(&st); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ls[i].Suspended = st == StatusSuspended
	}
	return nil
}

// RenewLeases pushes the expiry of owner's leases to now + validity and
// returns those still its own: held maps each tenant the instance believes
// it holds to the epoch it holds it under, and a lease counts only with
// that owner and that epoch. One statement renews them all, whatever
// their number; the epoch is compared after it, since only owner's own
// claims ever write owner's name into a row. Leases in owner's name that
// held does not list are released.
func (s *Store) RenewLeases(ctx context.Context, owner string, validity time.Duration, held map[string]int64) ([]Lease, error) {
	var out []Lease
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = renewTx(ctx, tx, owner, s.now(), validity, held)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("renewing tenant leases: %w", err)
	}
	return out, nil
}

func renewTx(ctx context.Context, tx *sql.Tx, owner string, now time.Time, validity time.Duration, held map[string]int64) ([]Lease, error) {
	exp := ms(now.Add(validity))
	if _, err := tx.ExecContext(ctx, `UPDATE tenant_leases SET expires_at = ? WHERE owner = ?`, exp, owner); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT l.tenant_id, l.epoch, l.acquired_at, t.status FROM tenant_leases l
		JOIN tenants t ON t.id = l.tenant_id WHERE l.owner = ?`, owner)
	if err != nil {
		return nil, err
	}
	var out, unknown []Lease
	for rows.Next() {
		l := Lease{ExpiresAt: fromMS(exp)}
		var acq int64
		var st Status
		if err := rows.Scan(&l.TenantID, &l.Epoch, &acq, &st); err != nil {
			rows.Close()
			return nil, err
		}
		l.AcquiredAt, l.Suspended = fromMS(acq), st == StatusSuspended
		if e, ok := held[l.TenantID]; ok && e == l.Epoch {
			out = append(out, l)
		} else {
			unknown = append(unknown, l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A lease in owner's name it does not know it holds runs nowhere:
	// freed, it goes to whoever claims next instead of being renewed
	// forever.
	for _, l := range unknown {
		if _, err := tx.ExecContext(ctx, `UPDATE tenant_leases SET owner = '', expires_at = 0 WHERE tenant_id = ? AND owner = ? AND epoch = ?`,
			l.TenantID, owner, l.Epoch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReleaseLeases gives up owner's leases (after their sessions were
// disconnected), so another instance claims them at its next round
// instead of waiting for them to expire. A lease that moved meanwhile is
// left alone.
func (s *Store) ReleaseLeases(ctx context.Context, owner string, leases []Lease) error {
	if len(leases) == 0 {
		return nil
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		for _, l := range leases {
			if _, err := tx.ExecContext(ctx, `UPDATE tenant_leases SET owner = '', expires_at = 0 WHERE tenant_id = ? AND owner = ? AND epoch = ?`,
				l.TenantID, owner, l.Epoch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("releasing tenant leases: %w", err)
	}
	return nil
}

// LeaseOf returns the tenant's lease; a tenant no instance ever claimed
// has a zero one (no owner).
func (s *Store) LeaseOf(ctx context.Context, tenantID string) (owner string, l Lease, err error) {
	var exp, acq int64
	err = s.db.read.QueryRowContext(ctx, `SELECT owner, epoch, expires_at, acquired_at FROM tenant_leases WHERE tenant_id = ?`, tenantID).
		Scan(&owner, &l.Epoch, &exp, &acq)
	if errors.Is(err, sql.ErrNoRows) {
		return "", Lease{TenantID: tenantID}, nil
	}
	if err != nil {
		return "", Lease{}, fmt.Errorf("reading the lease of %s: %w", tenantID, err)
	}
	l.TenantID, l.ExpiresAt, l.AcquiredAt = tenantID, fromMS(exp), fromMS(acq)
	return owner, l, nil
}

// Fencing: the supervisor's context carries the lease it runs under, and
// the store's supervisor-facing writes check it inside their transaction.

type fenceKey struct{}

type fence struct {
	tenantID, owner string
	epoch           int64
}

// WithFence returns ctx carrying the lease owner holds on tenantID under
// epoch: writes made with it that the store fences are refused with
// ErrLeaseLost once the lease moved.
func WithFence(ctx context.Context, tenantID, owner string, epoch int64) context.Context {
	return context.WithValue(ctx, fenceKey{}, fence{tenantID: tenantID, owner: owner, epoch: epoch})
}

// fenceCheck is the lease row a fenced write needs. On PostgreSQL it is
// to take a share lock on the row (FOR SHARE), so a claim cannot commit
// between the check and the write; SQLite's single writer already holds
// the whole database.
const fenceCheck = `SELECT 1 FROM tenant_leases WHERE tenant_id = ? AND owner = ? AND epoch = ?`

// fenced refuses the write tx belongs to when ctx carries a lease the
// instance no longer holds. Without a fence (the portal, the command line,
// tests) it allows everything.
func (s *Store) fenced(ctx context.Context, tx *sql.Tx) error {
	f, ok := ctx.Value(fenceKey{}).(fence)
	if !ok {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, fenceCheck+s.db.dialect.keyShareLock(), f.tenantID, f.owner, f.epoch).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("checking the tenant's lease: %w", err)
	}
	return nil
}

// fencedTx is db.inTx for the writes a tenant's supervisor and pipeline
// make: the transaction first checks the fence ctx may carry.
func (s *Store) fencedTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.fenced(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// fencedGroup is inGroup (groupcommit.go) for the pipeline's writes: each
// write, under its own savepoint, first checks the fence ctx may carry, so
// a stale owner's write fails alone and the others in the group commit.
func (s *Store) fencedGroup(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.inGroup(ctx, func(tx *sql.Tx) error {
		if err := s.fenced(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// LastMessageID is the newest message row's id (0 without any): where an
// instance starts looking for sends queued elsewhere.
func (s *Store) LastMessageID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM messages`).Scan(&id); err != nil {
		return 0, fmt.Errorf("reading the last message id: %w", err)
	}
	return id, nil
}

// QueuedSendsAfter lists the tenants with API sends queued in message rows
// newer than after, and the newest id looked at: an instance holding a
// tenant wakes its sender for a send another instance queued. It reads a
// range of the primary key, however big the log.
func (s *Store) QueuedSendsAfter(ctx context.Context, after int64) (tenants []string, last int64, err error) {
	if last, err = s.LastMessageID(ctx); err != nil || last <= after {
		return nil, max(last, after), err
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM messages
		WHERE id > ? AND id <= ? AND status = 'pending' AND source = 'api'`, after, last)
	if err != nil {
		return nil, after, fmt.Errorf("reading queued sends: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, after, err
		}
		tenants = append(tenants, id)
	}
	return tenants, last, rows.Err()
}
