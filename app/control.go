package app

import (
	"context"
	"errors"
	"time"

	"wabot/tenant"
)

// Commands such as `wabot tenant reset ID` run in their own process: they
// write a control request to the database, and the running instance
// carries it out within a second and records the result.

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
	reqs, err := a.store.OpenControlRequests(ctx, 20)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("cannot read command-line requests", "err", err)
		}
		return
	}
	for _, r := range reqs {
		result := "done"
		if err := a.applyControl(ctx, r.TenantID, r.Action); err != nil {
			result = "failed: " + err.Error()
		}
		a.log.Info("command-line request", "tenant", r.TenantID, "action", r.Action, "result", result)
		if err := a.store.FinishControlRequest(context.WithoutCancel(ctx), r.ID, result); err != nil {
			a.log.Error("cannot record a command-line request's result", "tenant", r.TenantID, "action", r.Action, "err", err)
		}
	}
}

// applyControl carries out one action on a tenant, as the admin page does.
func (a *App) applyControl(ctx context.Context, id string, action tenant.Action) error {
	t, err := a.store.TenantByID(ctx, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return a.sessions.Apply(ctx, cliActor, t, action)
}

// requestControl writes a request and waits up to wait for a running
// instance to carry it out.
func requestControl(ctx context.Context, st *tenant.Store, tenantID string, action tenant.Action, wait time.Duration) (string, error) {
	id, err := st.RequestControl(ctx, tenantID, action)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		result, done, err := st.ControlResult(ctx, id)
		if err != nil {
			return "", err
		}
		if done {
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
