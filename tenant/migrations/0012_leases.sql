-- Several wabot instances on one database: each heartbeats its row in
-- instances, and a tenant's WhatsApp session runs only on the instance
-- holding its lease. The epoch grows with every claim, so a write carrying
-- an older epoch (a stale owner's) is refused.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    draining     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tenant_leases (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL DEFAULT '',
    epoch       INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL DEFAULT 0,
    acquired_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tenant_leases_owner ON tenant_leases(owner, expires_at);

-- Control requests also carry the portal's session actions to the
-- tenant's owner: an argument (a phone number to pair), a machine code with
-- a failure, and an expiry after which nobody should act on them any more
-- (0: never, as for the command line).
ALTER TABLE control_requests ADD COLUMN arg TEXT NOT NULL DEFAULT '';
ALTER TABLE control_requests ADD COLUMN error_code TEXT NOT NULL DEFAULT '';
ALTER TABLE control_requests ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
