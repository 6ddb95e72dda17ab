-- Messages sent through the API live in the message log beside the bot's
-- replies (one log, one chat history): status 'pending' is queued and
-- 'replied' is sent, and WhatsApp's receipts move delivery on to
-- delivered and read.
ALTER TABLE messages ADD COLUMN source TEXT NOT NULL DEFAULT 'bot' CHECK (source IN ('bot', 'api'));
ALTER TABLE messages ADD COLUMN delivery TEXT NOT NULL DEFAULT '' CHECK (delivery IN ('', 'sent', 'delivered', 'read'));
ALTER TABLE messages ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN quote_id INTEGER;
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
ALTER TABLE messages ADD COLUMN check_number INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN first_contact INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN delivered_at INTEGER;
ALTER TABLE messages ADD COLUMN read_at INTEGER;
-- 0 takes the operator's default (WABOT_SEND_MAX_QUEUED).
ALTER TABLE tenants ADD COLUMN send_queue_max INTEGER NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX messages_idempotency ON messages(tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_out_wa_id ON messages(tenant_id, wa_id) WHERE direction = 'out';
CREATE INDEX messages_chat ON messages(tenant_id, chat, id);
CREATE INDEX messages_first_contact ON messages(tenant_id, sent_at) WHERE first_contact = 1;
