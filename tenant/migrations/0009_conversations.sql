-- The conversations list groups a tenant's messages by chat and counts
-- unread inbound ones: this index covers both, so neither reads a row.
-- It begins as messages_chat did, which it replaces.
CREATE INDEX messages_chat_live ON messages(tenant_id, chat, id, direction, status);
DROP INDEX messages_chat;
-- The inbox's live pages ask each second whether anything changed.
CREATE INDEX messages_changed ON messages(tenant_id, updated_at);
CREATE INDEX chats_changed ON chats(tenant_id, updated_at);
