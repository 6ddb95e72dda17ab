package tenant

import (
	"context"
	"fmt"
)

// Counts is how many tenants, sessions and supervisors are in each state,
// with every known state present (zero when none is).
type Counts struct {
	Tenants  map[Status]int
	Sessions map[LinkState]int
	Workers  map[WorkerStatus]int
}

// CountStates counts rows by state, for metrics.
func (s *Store) CountStates(ctx context.Context) (Counts, error) {
	c := Counts{Tenants: map[Status]int{}, Sessions: map[LinkState]int{}, Workers: map[WorkerStatus]int{}}
	for _, st := range Statuses {
		c.Tenants[st] = 0
	}
	for _, st := range LinkStates {
		c.Sessions[st] = 0
	}
	for _, st := range WorkerStatuses {
		c.Workers[st] = 0
	}
	if err := countBy(ctx, s, `SELECT status, COUNT(*) FROM tenants GROUP BY status`, c.Tenants); err != nil {
		return c, err
	}
	if err := countBy(ctx, s, `SELECT state, COUNT(*) FROM wa_sessions GROUP BY state`, c.Sessions); err != nil {
		return c, err
	}
	return c, countBy(ctx, s, `SELECT status, COUNT(*) FROM workers GROUP BY status`, c.Workers)
}

func countBy[K ~string](ctx context.Context, s *Store, q string, into map[K]int) error {
	rows, err := s.db.read.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("counting states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k K
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		into[k] = n
	}
	return rows.Err()
}

// ConnectedCount returns how many tenants that are not suspended have a
// connected session, out of how many.
func (s *Store) ConnectedCount(ctx context.Context) (connected, total int, err error) {
	err = s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE s.state = 'CONNECTED'), COUNT(*)
		FROM wa_sessions s JOIN tenants t ON t.id = s.tenant_id WHERE t.status <> 'SUSPENDED'`).Scan(&connected, &total)
	if err != nil {
		return 0, 0, fmt.Errorf("counting connected sessions: %w", err)
	}
	return connected, total, nil
}
