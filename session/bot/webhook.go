package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"wabot/session"
	"wabot/tenant"
)

// Webhook deliveries: every accepted inbound message is written to the
// outbox (webhook_deliveries) and POSTed from there, so a delivery that
// fails is retried with backoff and survives restarts.

// payload is the JSON body a webhook receives.
type payload struct {
	DeliveryID  string         `json:"delivery_id"`
	TenantID    string         `json:"tenant_id"`
	Message     payloadMessage `json:"message"`
	RuleMatched bool           `json:"rule_matched"`
}

type payloadMessage struct {
	ID        string `json:"id"`
	Chat      string `json:"chat"`
	From      string `json:"from"`
	Name      string `json:"name"`
	Kind      string `json:"kind"` // text, image, voice…
	Text      string `json:"text"` // a media message's caption
	IsGroup   bool   `json:"is_group"`
	Timestamp string `json:"timestamp"`
	// Media is a media message's file (with a signed download link),
	// location or contact card.
	Media *tenant.MediaInfo `json:"media,omitempty"`
}

// newWebhookClient refuses, at connect time, addresses the operator's
// network keeps private (unless allowed): DNS could answer differently
// than when the URL was saved.
func newWebhookClient(o Options) *http.Client {
	dialer := guardedDialer(public(o.AllowPrivateWebhooks), errors.New("the webhook's host resolves to a non-public address"))
	return &http.Client{
		Timeout: o.WebhookTimeout,
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: o.WebhookTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		// A redirect could lead anywhere; the webhook must answer itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func newDeliveryID() string { return tenant.NewID("d") }

// webhookReply asks the webhook about an inbound message. Its delivery is
// queued in the outbox once per message: a message answered again after a
// crash reuses it, with its delivery id, so the receiver can tell. When no
// rule matched, the first attempt is made inline so the webhook's reply can
// be sent; ok is true when the webhook answered.
func (b *Bot) webhookReply(ctx context.Context, tenantID string, in inbound, cfg *config, matched bool) (reply string, ok bool, err error) {
	d, err := b.store.WebhookDeliveryOfMessage(ctx, in.id)
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		if d, err = b.queueDelivery(ctx, tenantID, in, cfg.Webhook.URL, matched); err != nil {
			return "", false, err
		}
	case err != nil:
		return "", false, err
	}
	if matched || d.Status != tenant.DeliveryPending {
		return "", false, nil
	}
	reply, ok = b.deliverNow(ctx, d, cfg.Webhook.Secret)
	return reply, ok, nil
}

// queueDelivery writes the delivery of an inbound message to the outbox.
// When the caller delivers it inline (no rule matched: the reply may come
// from the webhook), the outbox leaves it alone until that attempt is over.
func (b *Bot) queueDelivery(ctx context.Context, tenantID string, in inbound, url string, matched bool) (tenant.WebhookDelivery, error) {
	id := newDeliveryID()
	var media *tenant.MediaInfo
	if in.media != nil {
		link := ""
		if b.opts.MediaLink != nil {
			link = b.opts.MediaLink(tenantID, in.id)
		}
		media = in.media.Info(link)
	}
	body, err := json.Marshal(payload{
		DeliveryID: id, TenantID: tenantID, RuleMatched: matched,
		Message: payloadMessage{ID: in.waID, Chat: in.chat.String(), From: tenant.PhoneOf(in.sender.String()), Name: in.name,
			Kind: in.kind, Text: in.text, IsGroup: in.isGroup, Timestamp: in.at.UTC().Format(time.RFC3339), Media: media},
	})
	if err != nil {
		return tenant.WebhookDelivery{}, err
	}
	due := time.Now()
	if !matched {
		due = due.Add(2 * b.opts.WebhookTimeout)
	}
	d := tenant.WebhookDelivery{ID: id, TenantID: tenantID, MessageID: in.id, URL: url, Payload: body, Status: tenant.DeliveryPending, NextAt: due}
	if err := b.store.QueueWebhookDelivery(ctx, d); err != nil {
		return d, err
	}
	if matched {
		b.wakeOutbox()
	}
	return d, nil
}

// deliverNow makes an attempt inline; a failure is left to the outbox,
// and an attempt cut short by a shutdown is not counted.
func (b *Bot) deliverNow(ctx context.Context, d tenant.WebhookDelivery, secret string) (string, bool) {
	reply, err := b.post(ctx, d, secret)
	if ctx.Err() != nil {
		return "", false
	}
	b.record(d, err)
	return reply, err == nil
}

// signature is the X-Wabot-Signature of a delivery sent at timestamp
// (Unix seconds): HMAC-SHA256 of timestamp + "." + body. Covering the
// timestamp lets a receiver refuse old deliveries, so a captured request
// cannot be replayed later.
func signature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends one delivery and returns the reply the webhook asked for.
// Each attempt is signed afresh with the time it is sent.
func (b *Bot) post(ctx context.Context, d tenant.WebhookDelivery, secret string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return "", err
	}
	timestamp := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wabot-webhook/1")
	req.Header.Set("X-Wabot-Timestamp", timestamp)
	req.Header.Set("X-Wabot-Signature", signature(secret, timestamp, d.Payload))
	req.Header.Set("X-Wabot-Delivery", d.ID)
	resp, err := b.webhook.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("webhook answered %s", resp.Status)
	}
	var answer struct {
		Reply string `json:"reply"`
	}
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &answer) == nil && len(answer.Reply) <= tenant.MaxReplyLength {
		return answer.Reply, nil
	}
	return "", nil
}

// record notes an attempt: delivered, retried later with backoff, or
// failed after the last attempt.
func (b *Bot) record(d tenant.WebhookDelivery, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	d.Attempts++
	result := "delivered"
	switch {
	case err == nil:
		d.Status, d.LastError = tenant.DeliveryDelivered, ""
	case d.Attempts >= b.opts.WebhookMaxAttempts:
		d.Status, d.LastError, result = tenant.DeliveryFailed, err.Error(), "failed"
		b.log.Warn("webhook delivery failed for good", "tenant", d.TenantID, "delivery", d.ID, "attempts", d.Attempts, "err", err)
	default:
		d.Status, d.LastError, result = tenant.DeliveryPending, err.Error(), "retry"
		d.NextAt = time.Now().Add(b.retryDelay(d.Attempts))
	}
	b.opts.Observer.Webhook(result)
	if err := b.store.RecordWebhookAttempt(ctx, d); err != nil {
		b.log.Error("cannot record a webhook delivery attempt", "tenant", d.TenantID, "delivery", d.ID, "err", err)
	}
}

// outboxPerTenant is how many of one tenant's due deliveries a worker
// takes at a time.
const outboxPerTenant = 3

// retryDelay is exponential from WebhookBaseDelay, capped, with jitter.
func (b *Bot) retryDelay(attempts int) time.Duration {
	return session.Backoff(b.opts.WebhookBaseDelay, b.opts.WebhookMaxDelay, attempts)
}

// outboxLoop retries due deliveries until the bot stops.
func (b *Bot) outboxLoop() {
	t := time.NewTicker(b.opts.OutboxPoll)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		case <-b.store.EventsQueued():
		}
		b.deliverDue()
	}
}

// deliverDue hands due deliveries to a bounded pool of workers, one
// worker per tenant at a time taking a few of its rows: a tenant whose
// webhook hangs holds one worker, never the others' deliveries.
func (b *Bot) deliverDue() {
	due, err := b.store.DueWebhookDeliveries(b.ctx, time.Now(), outboxPerTenant, 500)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			b.log.Warn("cannot read the webhook outbox", "err", err)
		}
		return
	}
	byTenant := map[string][]tenant.WebhookDelivery{}
	var order []string
	for _, d := range due {
		if _, seen := byTenant[d.TenantID]; !seen {
			order = append(order, d.TenantID)
		}
		byTenant[d.TenantID] = append(byTenant[d.TenantID], d)
	}
	for _, tenantID := range order {
		b.outboxMu.Lock()
		busy := b.outboxBusy[tenantID]
		b.outboxMu.Unlock()
		if busy {
			continue
		}
		select {
		case b.outboxSlots <- struct{}{}:
		default:
			return // every worker is busy: the rest waits for the next round
		}
		b.outboxMu.Lock()
		b.outboxBusy[tenantID] = true
		b.outboxMu.Unlock()
		b.wg.Add(1)
		go b.deliverTenant(tenantID, byTenant[tenantID])
	}
}

// deliverTenant posts one tenant's due deliveries in order.
func (b *Bot) deliverTenant(tenantID string, due []tenant.WebhookDelivery) {
	defer b.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("webhook delivery panicked", "tenant", tenantID, "panic", fmt.Sprint(r))
		}
		b.outboxMu.Lock()
		delete(b.outboxBusy, tenantID)
		b.outboxMu.Unlock()
		<-b.outboxSlots
		b.wakeOutbox()
	}()
	// The bot's webhook secret and the subscriptions' are read once per
	// batch, when a delivery needs them.
	var cfg *tenant.BotConfig
	subs := map[string]tenant.Subscription{}
	for _, d := range due {
		var err error
		if d.SubscriptionID != "" {
			sub, ok := subs[d.SubscriptionID]
			if !ok {
				if sub, err = b.store.SubscriptionByID(b.ctx, tenantID, d.SubscriptionID); errors.Is(err, tenant.ErrNotFound) {
					continue // deleted since: its deliveries went with it
				} else if err != nil {
					if b.ctx.Err() == nil {
						b.log.Warn("cannot read a webhook subscription; delivering later", "tenant", tenantID, "err", err)
					}
					return
				}
				subs[d.SubscriptionID] = sub
			}
			err = b.postEvent(b.ctx, d, sub.Secret)
		} else {
			if cfg == nil {
				c, err := b.store.BotConfigOf(b.ctx, tenantID)
				if err != nil {
					if b.ctx.Err() == nil {
						b.log.Warn("cannot read the webhook secret; delivering later", "tenant", tenantID, "err", err)
					}
					return
				}
				cfg = &c
			}
			// A retried delivery's reply is not sent: the message was
			// answered without it.
			_, err = b.post(b.ctx, d, cfg.Webhook.Secret)
		}
		if b.ctx.Err() != nil {
			return // cut short by a shutdown: not an attempt
		}
		b.record(d, err)
	}
}
