-- Deleting a message sets its deliveries' message_id to NULL: without this
-- index each deleted message scanned the whole outbox.
CREATE INDEX webhook_deliveries_message ON webhook_deliveries(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);
