package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"wabot/tenant"
)

// Event webhooks: the store queues each event once per matching
// subscription in the outbox the bot's webhook uses; the same workers,
// retries and address checks deliver them (webhook.go). Only the
// signature differs: it carries its own timestamp, Stripe-style, so one
// header is all a receiver checks.

// EventSignature is the X-Wabot-Signature of an event delivery sent at
// unix seconds: "t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>">".
func EventSignature(secret string, unix int64, body []byte) string {
	t := strconv.FormatInt(unix, 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "."))
	mac.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// postEvent sends one event delivery, signed afresh with the time it is
// sent. Any 2xx answer delivers it; the body is not read for a reply.
func (b *Bot) postEvent(ctx context.Context, d tenant.WebhookDelivery, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wabot-webhook/1")
	req.Header.Set("X-Wabot-Signature", EventSignature(secret, time.Now().Unix(), d.Payload))
	req.Header.Set("X-Wabot-Event", d.EventID)
	req.Header.Set("X-Wabot-Event-Type", string(d.EventType))
	req.Header.Set("X-Wabot-Delivery", d.ID)
	resp, err := b.webhook.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Emit queues an event of the tenant for its subscriptions to that type
// and wakes the outbox; without subscribers it writes nothing. Writes
// that the event reports should rather queue it in their own transaction
// (tenant's queueEvent), so that the two commit together.
func (b *Bot) Emit(ctx context.Context, tenantID string, typ tenant.EventType, data any) error {
	_, err := b.store.QueueEvent(ctx, tenantID, typ, data)
	return err
}

// Subscriptions lists the tenant's event subscriptions.
func (b *Bot) Subscriptions(ctx context.Context, tenantID string) ([]tenant.Subscription, error) {
	return b.store.Subscriptions(ctx, tenantID)
}

// Subscription returns one of the tenant's event subscriptions.
func (b *Bot) Subscription(ctx context.Context, tenantID, id string) (tenant.Subscription, error) {
	return b.store.SubscriptionByID(ctx, tenantID, id)
}

// Subscribe validates and stores an event subscription, refusing a URL
// whose host is not on the public internet as the bot's webhook does.
// The returned subscription carries its secret.
func (b *Bot) Subscribe(ctx context.Context, tenantID string, sub tenant.Subscription) (tenant.Subscription, error) {
	sub.URL = strings.TrimSpace(sub.URL)
	if err := tenant.ValidateSubscription(sub); err != nil {
		return sub, err
	}
	if err := b.checkWebhookURL(ctx, sub.URL); err != nil {
		return sub, &tenant.Error{Code: tenant.CodeInvalid, Msg: "the webhook subscription has errors", Fields: map[string]string{"url": err.Error()}}
	}
	return b.store.CreateSubscription(ctx, tenantID, sub)
}

// Unsubscribe deletes one of the tenant's subscriptions and its deliveries.
func (b *Bot) Unsubscribe(ctx context.Context, tenantID, id string) error {
	return b.store.DeleteSubscription(ctx, tenantID, id)
}

// RotateSecret gives a subscription a new secret and returns it.
func (b *Bot) RotateSecret(ctx context.Context, tenantID, id string) (string, error) {
	return b.store.RotateSubscriptionSecret(ctx, tenantID, id)
}

// TestSubscription queues a webhook.test event to one subscription.
func (b *Bot) TestSubscription(ctx context.Context, tenantID, id string) error {
	return b.store.QueueTestEvent(ctx, tenantID, id)
}

// EventDeliveries lists the tenant's recent event deliveries, newest
// first; subscriptionID not empty keeps one subscription's.
func (b *Bot) EventDeliveries(ctx context.Context, tenantID, subscriptionID string, limit int) ([]tenant.WebhookDelivery, error) {
	return b.store.EventDeliveries(ctx, tenantID, subscriptionID, limit)
}

// ResendDelivery queues a failed event delivery again.
func (b *Bot) ResendDelivery(ctx context.Context, tenantID, id string) (tenant.WebhookDelivery, error) {
	return b.store.ResendDelivery(ctx, tenantID, id)
}
