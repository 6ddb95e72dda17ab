-- With PostgreSQL, every tenant's WhatsApp device store lives in one
-- database (whatsmeow's tables, keyed by the device's JID); this row says
-- which device is the tenant's. SQLite installations keep one store file
-- per tenant folder and leave the table empty.
CREATE TABLE tenant_devices (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    jid       TEXT NOT NULL UNIQUE,
    linked_at INTEGER NOT NULL
);
