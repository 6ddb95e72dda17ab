-- The inbox: one row per conversation that has any state of its own (a
-- paused bot, an assignment, a read mark, the business's name or note
-- for the contact). A chat without a row has the defaults: bot on,
-- unassigned, nothing read.
CREATE TABLE chats (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    chat           TEXT NOT NULL,                 -- the chat's JID, as messages.chat
    contact_name   TEXT NOT NULL DEFAULT '',      -- the business's own name for the contact
    note           TEXT NOT NULL DEFAULT '',
    bot_paused     INTEGER NOT NULL DEFAULT 0,    -- a person has taken over: the bot is silent
    paused_at      INTEGER,                       -- Unix ms
    paused_by      TEXT NOT NULL DEFAULT '',      -- a user id, or 'keyword' for a hand-over rule
    waiting        INTEGER NOT NULL DEFAULT 0,    -- the customer waits for a person
    last_human_at  INTEGER,                       -- Unix ms of the last reply a person sent
    assigned_to    TEXT REFERENCES users(id) ON DELETE SET NULL,
    last_read_id   INTEGER NOT NULL DEFAULT 0,    -- inbound messages up to this id are read
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, chat)
);
-- The bot resumes paused chats whose last human reply is old enough.
CREATE INDEX chats_paused ON chats(tenant_id, last_human_at) WHERE bot_paused = 1;
CREATE INDEX chats_assigned ON chats(tenant_id, assigned_to) WHERE assigned_to IS NOT NULL;

-- Saved snippets a person inserts into a reply by typing "/" and the
-- shortcut.
CREATE TABLE quick_replies (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    shortcut   TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, shortcut)
);

-- Who wrote an outgoing message: author_id is the team member who typed
-- it in the inbox (sent through the API's durable queue, source 'api');
-- origin says what the bot answered with ('rule 3', 'welcome',
-- 'fallback', 'webhook', 'hand-over').
ALTER TABLE messages ADD COLUMN author_id TEXT;
ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT '';
