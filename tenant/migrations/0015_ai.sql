-- AI answers: the model provider's API key, kept apart from the
-- configuration's JSON so no read of the configuration ever returns it,
-- and each tenant's use of its model by calendar month (UTC, 'YYYY-MM').
ALTER TABLE bot_configs ADD COLUMN ai_api_key TEXT NOT NULL DEFAULT '';
CREATE TABLE ai_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    month     TEXT NOT NULL,
    tokens    INTEGER NOT NULL DEFAULT 0,
    answers   INTEGER NOT NULL DEFAULT 0,
    handovers INTEGER NOT NULL DEFAULT 0,
    failures  INTEGER NOT NULL DEFAULT 0,
    -- The latest failure's reason and time (Unix ms), for the Bot page.
    last_failure    TEXT NOT NULL DEFAULT '',
    last_failure_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);
CREATE INDEX messages_origin ON messages(tenant_id, chat, created_at) WHERE origin = 'ai';
