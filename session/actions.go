package session

import (
	"context"

	"wabot/tenant"
)

// Apply carries out an admin's action on a tenant and writes it to the
// audit log. The admin page and the command line both act through it.
func (m *Manager) Apply(ctx context.Context, actor tenant.User, t tenant.Tenant, action tenant.Action) error {
	var err error
	switch action {
	case tenant.ActionApprove:
		if t.Status != tenant.StatusPending {
			return tenant.Errorf(tenant.CodeConflict, "%s is not waiting for approval", t.Name)
		}
		err = m.store.SetTenantStatus(ctx, t.ID, tenant.StatusActive)
	case tenant.ActionSuspend:
		if err = m.store.SetTenantStatus(ctx, t.ID, tenant.StatusSuspended); err == nil {
			err = m.Stop(ctx, t.ID)
		}
	case tenant.ActionResume:
		if t.Status != tenant.StatusSuspended {
			return tenant.Errorf(tenant.CodeConflict, "%s is not suspended", t.Name)
		}
		if err = m.store.SetTenantStatus(ctx, t.ID, tenant.StatusActive); err == nil {
			err = m.Add(t.ID)
		}
	case tenant.ActionRestart:
		err = m.Restart(ctx, t.ID)
	case tenant.ActionReset:
		err = m.Reset(ctx, t.ID)
	default:
		_, err = tenant.ParseAction(string(action))
		return err
	}
	if err != nil {
		return err
	}
	return m.store.Audit(ctx, actor, string(action), t.ID, t.Name)
}
