package tenant

import "slices"

// Action is something an admin (on the admin page or the command line)
// does to a tenant.
type Action string

const (
	ActionApprove Action = "approve" // PENDING → ACTIVE
	ActionSuspend Action = "suspend" // stop its session; its bot answers nobody
	ActionResume  Action = "resume"  // SUSPENDED → ACTIVE, session started again
	ActionRestart Action = "restart" // reconnect its WhatsApp client, keeping the link
	ActionReset   Action = "reset"   // delete its device keys; it links again
)

// Actions lists every action.
var Actions = []Action{ActionApprove, ActionSuspend, ActionResume, ActionRestart, ActionReset}

// ParseAction returns the action named s.
func ParseAction(s string) (Action, error) {
	if a := Action(s); slices.Contains(Actions, a) {
		return a, nil
	}
	return "", Errorf(CodeBadRequest, "unknown action %q: use approve, suspend, resume, restart or reset", s)
}

// ActionsFor lists the actions that make sense for a tenant's status.
func ActionsFor(s Status) []Action {
	switch s {
	case StatusPending:
		return []Action{ActionApprove, ActionSuspend, ActionRestart, ActionReset}
	case StatusSuspended:
		return []Action{ActionResume}
	default:
		return []Action{ActionSuspend, ActionRestart, ActionReset}
	}
}
