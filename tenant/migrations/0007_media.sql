-- Media files, stored once per tenant by content: the file lives at
-- <data>/media/<tenant_id>/<sha256[0:2]>/<sha256>. A file with no message
-- left (message_media) goes with the message-log retention, unless
-- keep_until (Unix ms; an upload not sent yet) is still ahead.
CREATE TABLE media_files (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mime       TEXT NOT NULL,
    keep_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);

-- The media of one logged message (messages.kind says the same kind;
-- messages.body holds the caption, so rules and search see it). sha256 is
-- NULL until the file is stored, and always for locations and contacts.
-- status: pending (to download), stored, failed (error says why), none
-- (no file: a location or a contact).
CREATE TABLE message_media (
    message_id   INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('image', 'sticker', 'audio', 'voice', 'video', 'document', 'location', 'contact')),
    sha256       TEXT,
    mime         TEXT NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT 0,
    file_name    TEXT NOT NULL DEFAULT '',
    caption      TEXT NOT NULL DEFAULT '',
    duration_s   INTEGER NOT NULL DEFAULT 0,
    width        INTEGER NOT NULL DEFAULT 0,
    height       INTEGER NOT NULL DEFAULT 0,
    latitude     REAL,
    longitude    REAL,
    place_name   TEXT NOT NULL DEFAULT '',
    address      TEXT NOT NULL DEFAULT '',
    contact_name TEXT NOT NULL DEFAULT '',
    vcard        TEXT NOT NULL DEFAULT '',
    -- WhatsApp's reference to an inbound file (the media message's
    -- protobuf: where it is and its key), what a download after a restart
    -- needs; cleared once the file is stored or failed for good.
    wa_download  BLOB,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'stored', 'failed', 'none')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- No action: a file cannot lose its row while a message still needs
    -- it; checked at the end of the statement, so deleting a tenant (which
    -- cascades to both) passes.
    FOREIGN KEY (tenant_id, sha256) REFERENCES media_files(tenant_id, sha256)
);
-- Not partial: it also serves the foreign key check when a file row goes.
CREATE INDEX message_media_file ON message_media(tenant_id, sha256);
CREATE INDEX message_media_pending ON message_media(tenant_id, status) WHERE status = 'pending';
