-- Times are Unix milliseconds (UTC). Ids of users and tenants are generated
-- by wabot, never taken from a request.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('PENDING', 'ACTIVE', 'SUSPENDED', 'ERROR')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    is_admin      INTEGER NOT NULL DEFAULT 0,
    tenant_id     TEXT REFERENCES tenants(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
);
CREATE INDEX users_tenant ON users(tenant_id);

-- A provider account (provider + its subject) signs in as one user.
CREATE TABLE identities (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE TABLE login_links (
    token_hash TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    admin      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- Browser sessions (scs); token holds SHA-256 of the cookie value.
CREATE TABLE web_sessions (
    token  TEXT PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry REAL NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions(expiry);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_email TEXT NOT NULL,
    action      TEXT NOT NULL,
    tenant_id   TEXT,
    detail      TEXT NOT NULL DEFAULT ''
);

-- The WhatsApp link of a tenant, as the portal shows it.
CREATE TABLE wa_sessions (
    tenant_id          TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    state              TEXT NOT NULL DEFAULT 'QR_PENDING'
                       CHECK (state IN ('QR_PENDING', 'QR_READY', 'QR_EXPIRED', 'CONNECTED', 'DISCONNECTED', 'ERROR', 'LOGGED_OUT')),
    qr_code            TEXT,
    qr_data_uri        TEXT,
    qr_updated_at      INTEGER,
    qr_expires_at      INTEGER,
    pair_code          TEXT,
    jid                TEXT,
    push_name          TEXT,
    connected_at       INTEGER,
    error_code         TEXT,
    last_error         TEXT,
    reconnect_attempts INTEGER NOT NULL DEFAULT 0,
    reconnects         INTEGER NOT NULL DEFAULT 0,
    updated_at         INTEGER NOT NULL
);

-- The supervisor goroutine of a tenant: heartbeat and restarts.
CREATE TABLE workers (
    tenant_id    TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'STOPPED' CHECK (status IN ('STARTING', 'RUNNING', 'STOPPED', 'CRASHED')),
    last_seen_at INTEGER,
    restarts     INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE bot_configs (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    config     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every inbound and outbound message. An inbound row is written before
-- whatsmeow acknowledges the message; the partial unique index is the
-- de-duplication, surviving restarts.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    chat        TEXT NOT NULL,
    sender      TEXT NOT NULL DEFAULT '',
    sender_name TEXT NOT NULL DEFAULT '',
    wa_id       TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'text',
    body        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('received', 'pending', 'replied', 'ignored', 'rate_limited', 'dropped', 'failed', 'duplicate')),
    error       TEXT NOT NULL DEFAULT '',
    reply_to    INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    sent_at     INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_inbound_once ON messages(tenant_id, chat, wa_id) WHERE direction = 'in' AND status <> 'duplicate';
CREATE INDEX messages_tenant ON messages(tenant_id, id);
CREATE INDEX messages_open ON messages(tenant_id, status) WHERE status IN ('received', 'pending');
CREATE INDEX messages_created ON messages(created_at);
CREATE INDEX messages_reply_to ON messages(reply_to) WHERE reply_to IS NOT NULL;

-- Chats that already got the welcome reply, kept beyond log retention.
CREATE TABLE welcomed_chats (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    chat      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, chat)
);

-- Webhook deliveries still to make, retried with backoff across restarts.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id      INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    url             TEXT NOT NULL,
    payload         BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);

-- Requests from the command line (wabot tenant reset ID, ...) that the
-- running instance picks up and carries out.
CREATE TABLE control_requests (
    id         INTEGER PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    action     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    done_at    INTEGER,
    result     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX control_requests_open ON control_requests(done_at) WHERE done_at IS NULL;
