package app

import (
	"context"
	"errors"
	"time"

	"wabot/tenant"
)

// Commands such as `wabot tenant reset ID` run in their own process: they
// write a control request to the database, and the running instance that
// holds the tenant's lease carries it out within a second and records the
// result (session/leases.go).

// cliActor is who the audit log names for command-line actions.
var cliActor = tenant.User{ID: "cli", Email: "command line"}

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
