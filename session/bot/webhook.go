package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"

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
	Text      string `json:"text"`
	IsGroup   bool   `json:"is_group"`
	Timestamp string `json:"timestamp"`
}

// newWebhookClient refuses, at connect time, addresses the operator's
// network keeps private (unless allowed): DNS could answer differently
// than when the URL was saved.
func newWebhookClient(o Options) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !o.AllowPrivateWebhooks {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || blockedIP(ip) {
				return fmt.Errorf("webhook address %s is private or local", host)
			}
			return nil
		}
	}
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

func newDeliveryID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "d" + hex.EncodeToString(b)
}

// queueDelivery writes the delivery of an inbound message to the outbox.
// When the caller delivers it inline (no rule matched: the reply may come
// from the webhook), the outbox leaves it alone until that attempt is over.
func (b *Bot) queueDelivery(ctx context.Context, tenantID string, in inbound, url string, matched bool) (string, error) {
	id := newDeliveryID()
	body, err := json.Marshal(payload{
		DeliveryID: id, TenantID: tenantID, RuleMatched: matched,
		Message: payloadMessage{ID: in.waID, Chat: in.chat.String(), From: "+" + in.sender.User, Name: in.name,
			Text: in.text, IsGroup: in.isGroup, Timestamp: in.at.UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return "", err
	}
	now := time.Now()
	due := now
	if !matched {
		due = now.Add(2 * b.opts.WebhookTimeout)
	}
	_, err = b.db.Write.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, tenant_id, message_id, url, payload, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`, id, tenantID, in.id, url, body, due.UnixMilli(), now.UnixMilli(), now.UnixMilli())
	if err == nil && matched {
		b.wakeOutbox()
	}
	return id, err
}

type delivery struct {
	id, tenantID, url string
	body              []byte
	attempts          int
}

// deliverNow makes the first attempt inline, so the webhook's reply can be
// sent when no rule matched; a failure is left to the outbox.
func (b *Bot) deliverNow(ctx context.Context, id, secret string) (string, bool) {
	var d delivery
	err := b.db.Read.QueryRowContext(ctx, `SELECT id, tenant_id, url, payload, attempts FROM webhook_deliveries WHERE id = ?`, id).
		Scan(&d.id, &d.tenantID, &d.url, &d.body, &d.attempts)
	if err != nil {
		return "", false
	}
	reply, err := b.post(ctx, d, secret)
	b.record(d, err)
	return reply, err == nil
}

// post sends one delivery and returns the reply the webhook asked for.
func (b *Bot) post(ctx context.Context, d delivery, secret string) (string, error) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(d.body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wabot-webhook/1")
	req.Header.Set("X-Wabot-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Wabot-Delivery", d.id)
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
func (b *Bot) record(d delivery, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	now := time.Now()
	attempts := d.attempts + 1
	if err == nil {
		b.opts.Observer.Webhook("delivered")
		b.db.Write.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_error = '', updated_at = ? WHERE id = ?`,
			attempts, now.UnixMilli(), d.id)
		return
	}
	status, result := "pending", "retry"
	if attempts >= b.opts.WebhookMaxAttempts {
		status, result = "failed", "failed"
		b.log.Warn("webhook delivery failed for good", "tenant", d.tenantID, "delivery", d.id, "attempts", attempts, "err", err)
	}
	b.opts.Observer.Webhook(result)
	next := now.Add(b.retryDelay(attempts))
	b.db.Write.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		status, attempts, next.UnixMilli(), err.Error(), now.UnixMilli(), d.id)
}

// retryDelay is exponential from WebhookBaseDelay, capped, with jitter.
func (b *Bot) retryDelay(attempts int) time.Duration {
	d := b.opts.WebhookBaseDelay << min(attempts-1, 20)
	d = min(d, b.opts.WebhookMaxDelay)
	return d/2 + mrand.N(d/2+1)
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
		}
		b.deliverDue()
	}
}

func (b *Bot) deliverDue() {
	rows, err := b.db.Read.QueryContext(b.ctx, `SELECT d.id, d.tenant_id, d.url, d.payload, d.attempts FROM webhook_deliveries d
		WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT 100`, time.Now().UnixMilli())
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			b.log.Warn("cannot read the webhook outbox", "err", err)
		}
		return
	}
	var due []delivery
	for rows.Next() {
		var d delivery
		if rows.Scan(&d.id, &d.tenantID, &d.url, &d.body, &d.attempts) == nil {
			due = append(due, d)
		}
	}
	rows.Close()
	secrets := map[string]string{}
	for _, d := range due {
		if b.ctx.Err() != nil {
			return
		}
		secret, ok := secrets[d.tenantID]
		if !ok {
			cfg, err := b.store.BotConfigOf(b.ctx, d.tenantID)
			if err != nil {
				continue
			}
			secret = cfg.Webhook.Secret
			secrets[d.tenantID] = secret
		}
		_, err := b.post(b.ctx, d, secret)
		if b.ctx.Err() != nil {
			return
		}
		b.record(d, err)
	}
}
