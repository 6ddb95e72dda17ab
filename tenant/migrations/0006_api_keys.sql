-- API keys: a tenant's keys reach its own data under /api/v1; instance
-- keys (no tenant) hold only the admin scope and provision tenants.
-- Only a SHA-256 of the secret is kept; prefix is the secret's first
-- characters, shown so an owner can tell keys apart.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    CHECK ((tenant_id IS NULL) = (scopes = 'admin'))
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id, created_at);
