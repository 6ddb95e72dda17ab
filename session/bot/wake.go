package bot

// SendsQueued wakes the tenant's sender: the session manager calls it when
// another wabot instance queued sends for this tenant, which it could not
// wake itself.
func (t *tenantBot) SendsQueued() { t.kickSender() }
