-- Teams: a user belongs to tenants through memberships, each with a role.
-- owner: everything; agent: the conversations only. users.tenant_id is no
-- longer read or written; its value becomes an owner membership here.
CREATE TABLE memberships (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'agent')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id, created_at);
INSERT INTO memberships (tenant_id, user_id, role, created_at)
    SELECT tenant_id, id, 'owner', created_at FROM users WHERE tenant_id IS NOT NULL;

-- An owner's invitation: the token is stored hashed, spent once.
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'agent')),
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    TEXT
);
CREATE INDEX invitations_tenant ON invitations(tenant_id, created_at);
CREATE INDEX invitations_email ON invitations(email);
