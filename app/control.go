package app

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"wabot/portal"
	"wabot/tenant"
)

// Commands such as `wabot tenant reset ID` run in their own process: they
// write a control request to the database, and the running instance
// carries it out within a second and records the result.

// controlActions are the actions the command line may request.
var controlActions = map[string]bool{"reset": true, "restart": true, "suspend": true, "resume": true, "approve": true}

// cliActor is who the audit log names for command-line actions.
var cliActor = tenant.User{ID: "cli", Email: "command line"}

// controlLoop polls for requests until ctx ends.
func (a *App) controlLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		a.runControlRequests(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) runControlRequests(ctx context.Context) {
	rows, err := a.db.Read.QueryContext(ctx, `SELECT id, tenant_id, action FROM control_requests WHERE done_at IS NULL ORDER BY id LIMIT 20`)
	if err != nil {
		return
	}
	type req struct {
		id             int64
		tenant, action string
	}
	var reqs []req
	for rows.Next() {
		var r req
		if rows.Scan(&r.id, &r.tenant, &r.action) == nil {
			reqs = append(reqs, r)
		}
	}
	rows.Close()
	for _, r := range reqs {
		result := "done"
		if err := a.applyControl(ctx, r.tenant, r.action); err != nil {
			result = "failed: " + err.Error()
		}
		a.log.Info("command-line request", "tenant", r.tenant, "action", r.action, "result", result)
		a.db.Write.ExecContext(context.WithoutCancel(ctx), `UPDATE control_requests SET done_at = ?, result = ? WHERE id = ?`,
			time.Now().UnixMilli(), result, r.id)
	}
}

// applyControl carries out one action on a tenant, as the admin page does.
func (a *App) applyControl(ctx context.Context, id, action string) error {
	t, err := a.store.TenantByID(ctx, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return portal.ApplyTenantAction(ctx, a.store, a.sessions, cliActor, t, action)
}

// requestControl writes a request and waits up to wait for a running
// instance to carry it out.
func requestControl(ctx context.Context, db *sql.DB, tenantID, action string, wait time.Duration) (string, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO control_requests (tenant_id, action, created_at) VALUES (?, ?, ?)`,
		tenantID, action, time.Now().UnixMilli())
	if err != nil {
		return "", err
	}
	id, _ := res.LastInsertId()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var result string
		var done sql.NullInt64
		if err := db.QueryRowContext(ctx, `SELECT done_at, result FROM control_requests WHERE id = ?`, id).Scan(&done, &result); err != nil {
			return "", err
		}
		if done.Valid {
			return result, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return "", errNotPickedUp
}

var errNotPickedUp = errors.New("no running wabot picked the request up yet; it will be carried out when wabot starts")
