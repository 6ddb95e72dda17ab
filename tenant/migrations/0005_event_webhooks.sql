-- Event webhooks: a tenant's subscriptions, each a URL, the secret that
-- signs its deliveries (kept readable: signing needs it) and the event
-- types it wants, comma-separated. Their deliveries share the bot
-- webhook's outbox, so one engine retries both; subscription_id is NULL
-- for the bot's own webhook.
CREATE TABLE event_subscriptions (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX event_subscriptions_tenant ON event_subscriptions(tenant_id, created_at);

ALTER TABLE webhook_deliveries ADD COLUMN subscription_id TEXT REFERENCES event_subscriptions(id) ON DELETE CASCADE;
ALTER TABLE webhook_deliveries ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries(subscription_id, created_at) WHERE subscription_id IS NOT NULL;
