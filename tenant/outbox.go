package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeliveryStatus is where a webhook delivery stands.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
)

// WebhookDelivery is one POST of the webhook outbox: written when an
// inbound message is accepted (the bot's webhook) or an event happens (an
// event subscription's), retried with backoff until delivered or failed,
// surviving restarts.
type WebhookDelivery struct {
	ID        string
	TenantID  string
	MessageID int64
	URL       string
	Payload   []byte
	Status    DeliveryStatus
	Attempts  int
	NextAt    time.Time
	LastError string
	// SubscriptionID is the event subscription the delivery is for, ""
	// for the bot's webhook; EventID and EventType then name its event.
	SubscriptionID string
	EventID        string
	EventType      EventType
	CreatedAt      time.Time
}

// QueueWebhookDelivery writes a pending delivery, due at d.NextAt.
func (s *Store) QueueWebhookDelivery(ctx context.Context, d WebhookDelivery) error {
	now := ms(s.now())
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, tenant_id, message_id, url, payload, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`, d.ID, d.TenantID, d.MessageID, d.URL, d.Payload, ms(d.NextAt), now, now)
	if err != nil {
		return fmt.Errorf("queueing a webhook delivery: %w", err)
	}
	return nil
}

const deliveryColumns = `id, tenant_id, COALESCE(message_id, 0), url, payload, status, attempts, next_attempt_at, last_error,
	COALESCE(subscription_id, ''), event_id, event_type, created_at`

const selectDelivery = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries`

func scanDelivery(row interface{ Scan(...any) error }) (WebhookDelivery, error) {
	var d WebhookDelivery
	var next, created int64
	err := row.Scan(&d.ID, &d.TenantID, &d.MessageID, &d.URL, &d.Payload, &d.Status, &d.Attempts, &next, &d.LastError,
		&d.SubscriptionID, &d.EventID, &d.EventType, &created)
	d.NextAt, d.CreatedAt = fromMS(next), fromMS(created)
	return d, err
}

// WebhookDeliveryByID returns one delivery.
func (s *Store) WebhookDeliveryByID(ctx context.Context, id string) (WebhookDelivery, error) {
	d, err := scanDelivery(s.db.read.QueryRowContext(ctx, selectDelivery+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("reading webhook delivery %s: %w", id, err)
	}
	return d, nil
}

// WebhookDeliveryOfMessage returns the delivery queued for an inbound
// message, so answering it again (after a crash) reuses its delivery id.
func (s *Store) WebhookDeliveryOfMessage(ctx context.Context, messageID int64) (WebhookDelivery, error) {
	d, err := scanDelivery(s.db.read.QueryRowContext(ctx, selectDelivery+` WHERE message_id = ? AND subscription_id IS NULL ORDER BY created_at LIMIT 1`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("reading the webhook delivery of message %d: %w", messageID, err)
	}
	return d, nil
}

// WebhookDeliveries lists the tenant's deliveries to the bot's webhook,
// newest first (EventDeliveries lists the event subscriptions').
func (s *Store) WebhookDeliveries(ctx context.Context, tenantID string, limit int) ([]WebhookDelivery, error) {
	return s.queryDeliveries(ctx, selectDelivery+` WHERE tenant_id = ? AND subscription_id IS NULL ORDER BY created_at DESC, id LIMIT ?`, tenantID, limit)
}

// DueWebhookDeliveries lists pending deliveries due by now, at most
// perTenant of each tenant (so one tenant's backlog cannot hide the
// others'), the longest waiting first. The bot's webhook and the event
// subscriptions share the quota: one engine delivers both.
func (s *Store) DueWebhookDeliveries(ctx context.Context, now time.Time, perTenant, limit int) ([]WebhookDelivery, error) {
	return s.queryDeliveries(ctx, `SELECT id, tenant_id, message_id, url, payload, status, attempts, next_attempt_at, last_error,
		subscription_id, event_id, event_type, created_at FROM (
		SELECT id, tenant_id, COALESCE(message_id, 0) AS message_id, url, payload, status, attempts, next_attempt_at, last_error,
			COALESCE(subscription_id, '') AS subscription_id, event_id, event_type, created_at,
			ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY next_attempt_at, id) AS nth
		FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?) due
		WHERE nth <= ? ORDER BY next_attempt_at, id LIMIT ?`, ms(now), perTenant, limit)
}

func (s *Store) queryDeliveries(ctx context.Context, q string, args ...any) ([]WebhookDelivery, error) {
	rows, err := s.db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook outbox: %w", err)
	}
	defer rows.Close()
	var out []WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordWebhookAttempt stores the outcome of an attempt: d.Status,
// d.Attempts, d.NextAt and d.LastError as the caller decided them.
func (s *Store) RecordWebhookAttempt(ctx context.Context, d WebhookDelivery) error {
	_, err := s.db.write.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		d.Status, d.Attempts, ms(d.NextAt), d.LastError, ms(s.now()), d.ID)
	if err != nil {
		return fmt.Errorf("recording webhook delivery %s: %w", d.ID, err)
	}
	return nil
}
