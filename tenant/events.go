package tenant

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Event webhooks: a tenant subscribes URLs to event types; each event is
// written to the webhook outbox once per matching subscription, in the
// transaction that records what happened, so no event is lost to a crash
// and none is made up by a rolled-back write.

// EventType names an event a subscription can ask for.
type EventType string

const (
	EventMessageReceived EventType = "message.received" // a contact's message was stored
	EventMessageSent     EventType = "message.sent"     // an outgoing message left for WhatsApp
	EventMessageStatus   EventType = "message.status"   // an outgoing message was delivered, read or failed
	EventSessionState    EventType = "session.state"    // the WhatsApp link changed state
	// EventWebhookTest is sent only by "send test", to one subscription.
	EventWebhookTest EventType = "webhook.test"
)

// EventTypes lists the types a subscription may ask for, in the order
// people read them.
var EventTypes = []EventType{EventMessageReceived, EventMessageSent, EventMessageStatus, EventSessionState}

// Limits of event subscriptions.
const (
	MaxSubscriptions       = 10  // per tenant
	MaxSubscriptionSecret  = 256 // bytes
	minSubscriptionSecret  = 16
	subscriptionSecretSize = 32 // random bytes of a generated secret
)

// Subscription is one of a tenant's event webhooks. Secret signs its
// deliveries; it is shown once, when it is made (created or rotated).
type Subscription struct {
	ID        string
	TenantID  string
	URL       string
	Secret    string
	Events    []EventType
	Disabled  bool
	CreatedAt time.Time
}

// Wants reports whether the subscription asked for events of type t.
func (s Subscription) Wants(t EventType) bool { return slices.Contains(s.Events, t) }

// Event is the JSON body every event delivery carries. Data's shape
// depends on Type (see MessageEvent, SessionStateEvent).
type Event struct {
	ID        string    `json:"id"`
	Type      EventType `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	TenantID  string    `json:"tenant_id"`
	Data      any       `json:"data"`
}

// MessageEvent is the data of message.received.
type MessageEvent struct {
	MessageID int64  `json:"message_id"` // the message log's id
	WAID      string `json:"wa_id"`      // WhatsApp's id of the message
	Chat      string `json:"chat"`       // JID of the chat (a group's for group messages)
	From      string `json:"from"`       // the sender's phone number, +international
	Name      string `json:"name"`       // the sender's WhatsApp display name
	Kind      string `json:"kind"`       // text, image, audio, ... ; text for texts
	Text      string `json:"text"`       // the text, or a caption or file name
	IsGroup   bool   `json:"is_group"`
	Status    string `json:"status"` // what the bot does with it: received (to answer) or ignored
	// Media is a media message's file (being downloaded when the event is
	// sent: its download link answers once it is stored), location or
	// contact card.
	Media *MediaInfo `json:"media,omitempty"`
}

// SessionStateEvent is the data of session.state.
type SessionStateEvent struct {
	State         LinkState `json:"state"`
	PreviousState LinkState `json:"previous_state"`
	ErrorCode     Problem   `json:"error_code,omitempty"`
	Error         string    `json:"error,omitempty"`
	Phone         string    `json:"phone,omitempty"` // the linked number, +international
}

// NormalizeEvents parses event type names (as a form or a request sends
// them), dropping blanks and repeats; an unknown name is an error naming it.
func NormalizeEvents(names []string) ([]EventType, error) {
	var out []EventType
	for _, n := range names {
		t := EventType(strings.TrimSpace(n))
		switch {
		case t == "":
			continue
		case !slices.Contains(EventTypes, t):
			return nil, fmt.Errorf("%q is not an event type; choose among %s", string(t), eventTypeList())
		case !slices.Contains(out, t):
			out = append(out, t)
		}
	}
	// Kept in the documented order, whatever order they came in.
	slices.SortFunc(out, func(a, b EventType) int { return slices.Index(EventTypes, a) - slices.Index(EventTypes, b) })
	return out, nil
}

func eventTypeList() string {
	s := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// ValidateSubscription checks what a tenant may set on a subscription: an
// http(s) URL without credentials, at least one event, and a secret of
// 16 to 256 bytes when one is given. Fields are url, events and secret.
// Whether the URL's host is public is checked by the pipeline, which
// resolves it.
func ValidateSubscription(s Subscription) error {
	f := map[string]string{}
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		f["url"] = "Enter the URL to send events to."
	case len(s.URL) > MaxURLLength:
		f["url"] = "The URL is too long."
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
		f["url"] = "Enter an http:// or https:// URL without user name or password."
	}
	if len(s.Events) == 0 {
		f["events"] = "Choose at least one event."
	}
	for _, t := range s.Events {
		if !slices.Contains(EventTypes, t) {
			f["events"] = fmt.Sprintf("%q is not an event type; choose among %s.", string(t), eventTypeList())
		}
	}
	if s.Secret != "" && (len(s.Secret) < minSubscriptionSecret || len(s.Secret) > MaxSubscriptionSecret) {
		f["secret"] = fmt.Sprintf("Use %d to %d characters, or leave it empty to have one generated.", minSubscriptionSecret, MaxSubscriptionSecret)
	}
	if len(f) > 0 {
		return &Error{Code: CodeInvalid, Msg: "the webhook subscription has errors", Fields: f}
	}
	return nil
}

// newSubscriptionSecret returns a random signing secret with a
// recognisable prefix, so a leaked one can be spotted.
func newSubscriptionSecret() string {
	b := make([]byte, subscriptionSecretSize)
	rand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}

// CreateSubscription validates and stores a subscription for the tenant,
// generating its secret when none is given, and returns it with the
// secret (the only time a list shows it). A tenant has at most
// MaxSubscriptions.
func (s *Store) CreateSubscription(ctx context.Context, tenantID string, sub Subscription) (Subscription, error) {
	sub.URL = strings.TrimSpace(sub.URL)
	if names := eventNames(sub.Events); len(names) > 0 {
		if evs, err := NormalizeEvents(names); err == nil {
			sub.Events = evs
		}
	}
	if err := ValidateSubscription(sub); err != nil {
		return sub, err
	}
	if sub.Secret == "" {
		sub.Secret = newSubscriptionSecret()
	}
	now := s.now()
	sub.ID, sub.TenantID, sub.CreatedAt, sub.Disabled = NewID("wh"), tenantID, fromMS(ms(now)), false
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_subscriptions WHERE tenant_id = ?`, tenantID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxSubscriptions {
			return Errorf(CodeConflict, "A workspace may have at most %d webhook subscriptions; delete one first.", MaxSubscriptions)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO event_subscriptions (id, tenant_id, url, secret, events, disabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?)`, sub.ID, tenantID, sub.URL, sub.Secret, joinEvents(sub.Events), ms(now), ms(now))
		return err
	})
	if err != nil {
		if ErrorCode(err) != "" {
			return sub, err
		}
		return sub, fmt.Errorf("creating a webhook subscription: %w", err)
	}
	return sub, nil
}

func eventNames(ts []EventType) []string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return s
}

func joinEvents(ts []EventType) string { return strings.Join(eventNames(ts), ",") }

func splitEvents(s string) []EventType {
	var out []EventType
	for _, n := range strings.Split(s, ",") {
		if n != "" {
			out = append(out, EventType(n))
		}
	}
	return out
}

const selectSubscription = `SELECT id, tenant_id, url, secret, events, disabled, created_at FROM event_subscriptions`

func scanSubscription(row interface{ Scan(...any) error }) (Subscription, error) {
	var sub Subscription
	var events string
	var created int64
	err := row.Scan(&sub.ID, &sub.TenantID, &sub.URL, &sub.Secret, &events, &sub.Disabled, &created)
	sub.Events, sub.CreatedAt = splitEvents(events), fromMS(created)
	return sub, err
}

// Subscriptions lists the tenant's subscriptions, oldest first, with
// their secrets (the caller decides what to show).
func (s *Store) Subscriptions(ctx context.Context, tenantID string) ([]Subscription, error) {
	return s.querySubscriptions(ctx, s.db.read, selectSubscription+` WHERE tenant_id = ? ORDER BY created_at, id`, tenantID)
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func (s *Store) querySubscriptions(ctx context.Context, db querier, q string, args ...any) ([]Subscription, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading webhook subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// SubscriptionByID returns one of the tenant's subscriptions; another
// tenant's is not found.
func (s *Store) SubscriptionByID(ctx context.Context, tenantID, id string) (Subscription, error) {
	sub, err := scanSubscription(s.db.read.QueryRowContext(ctx, selectSubscription+` WHERE id = ? AND tenant_id = ?`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return sub, ErrNotFound
	}
	if err != nil {
		return sub, fmt.Errorf("reading webhook subscription %s: %w", id, err)
	}
	return sub, nil
}

// DeleteSubscription removes one of the tenant's subscriptions with its
// deliveries, pending ones included.
func (s *Store) DeleteSubscription(ctx context.Context, tenantID, id string) error {
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM event_subscriptions WHERE id = ? AND tenant_id = ?`, id, tenantID)
	if err != nil {
		return fmt.Errorf("deleting webhook subscription %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// RotateSubscriptionSecret gives the subscription a new generated secret
// and returns it. Deliveries still pending are signed with the new one.
func (s *Store) RotateSubscriptionSecret(ctx context.Context, tenantID, id string) (string, error) {
	secret := newSubscriptionSecret()
	res, err := s.db.write.ExecContext(ctx, `UPDATE event_subscriptions SET secret = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		secret, ms(s.now()), id, tenantID)
	if err != nil {
		return "", fmt.Errorf("rotating the secret of webhook subscription %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", ErrNotFound
	}
	return secret, nil
}

// QueueEvent writes an event of the tenant to the outbox, once for each
// enabled subscription that asked for its type, and returns how many
// deliveries it queued (none without subscribers: no rows at all). data
// becomes the payload's "data". Code in this package that records what
// happened in a transaction calls queueEvent with it instead, so the
// event commits with the change.
func (s *Store) QueueEvent(ctx context.Context, tenantID string, typ EventType, data any) (int, error) {
	var n int
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.queueEvent(ctx, tx, tenantID, typ, data)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.eventsQueued(n)
	return n, nil
}

// queueEvent is QueueEvent inside the caller's transaction; the caller
// calls s.eventsQueued(n) after committing. Message events are withheld
// from a workspace awaiting approval, as the messages' contents are.
func (s *Store) queueEvent(ctx context.Context, tx *sql.Tx, tenantID string, typ EventType, data any) (int, error) {
	subs, err := s.subscribersTx(ctx, tx, tenantID, typ)
	if err != nil {
		return 0, err
	}
	return s.queueEventTo(ctx, tx, tenantID, typ, data, wanting(subs, typ))
}

// subscribersTx lists the tenant's enabled subscriptions that may hear
// events of typ's kind (message events or not), for wanting to filter.
func (s *Store) subscribersTx(ctx context.Context, tx *sql.Tx, tenantID string, typ EventType) ([]Subscription, error) {
	q := selectSubscription + ` WHERE tenant_id = ? AND disabled = 0`
	if strings.HasPrefix(string(typ), "message.") {
		q += ` AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = event_subscriptions.tenant_id AND t.status <> 'PENDING')`
	}
	return s.querySubscriptions(ctx, tx, q+` ORDER BY created_at, id`, tenantID)
}

// wanting is the subscriptions of subs that asked for typ.
func wanting(subs []Subscription, typ EventType) []Subscription {
	return slices.DeleteFunc(slices.Clone(subs), func(sub Subscription) bool { return !sub.Wants(typ) })
}

func (s *Store) queueEventTo(ctx context.Context, tx *sql.Tx, tenantID string, typ EventType, data any, subs []Subscription) (int, error) {
	if len(subs) == 0 {
		return 0, nil
	}
	now := s.now()
	ev := Event{ID: NewID("ev"), Type: typ, CreatedAt: fromMS(ms(now)), TenantID: tenantID, Data: data}
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encoding a %s event: %w", typ, err)
	}
	for _, sub := range subs {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, tenant_id, url, payload, status, attempts, next_attempt_at,
			subscription_id, event_id, event_type, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?)`,
			NewID("d"), tenantID, sub.URL, body, ms(now), sub.ID, ev.ID, typ, ms(now), ms(now))
		if err != nil {
			return 0, fmt.Errorf("queueing a %s event: %w", typ, err)
		}
	}
	return len(subs), nil
}

// QueueTestEvent queues a webhook.test event to one of the tenant's
// subscriptions, whatever it subscribed to, so its receiver can be tried.
func (s *Store) QueueTestEvent(ctx context.Context, tenantID, subscriptionID string) error {
	sub, err := s.SubscriptionByID(ctx, tenantID, subscriptionID)
	if err != nil {
		return err
	}
	data := map[string]string{"subscription_id": sub.ID, "message": "This is a test event from wabot."}
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.queueEventTo(ctx, tx, tenantID, EventWebhookTest, data, []Subscription{sub})
		return err
	})
	if err != nil {
		return err
	}
	s.eventsQueued(1)
	return nil
}

// EventDeliveries lists the tenant's event deliveries, newest first; a
// subscriptionID not empty keeps that subscription's only.
func (s *Store) EventDeliveries(ctx context.Context, tenantID, subscriptionID string, limit int) ([]WebhookDelivery, error) {
	if subscriptionID != "" {
		return s.queryDeliveries(ctx, selectDelivery+` WHERE tenant_id = ? AND subscription_id = ? ORDER BY created_at DESC, id LIMIT ?`,
			tenantID, subscriptionID, limit)
	}
	return s.queryDeliveries(ctx, selectDelivery+` WHERE tenant_id = ? AND subscription_id IS NOT NULL ORDER BY created_at DESC, id LIMIT ?`,
		tenantID, limit)
}

// ResendDelivery puts one of the tenant's failed event deliveries back in
// the outbox, due now, with its attempts counted afresh. It is signed
// anew when sent; its event id stays the same, so the receiver can tell.
func (s *Store) ResendDelivery(ctx context.Context, tenantID, id string) (WebhookDelivery, error) {
	d, err := scanDelivery(s.db.read.QueryRowContext(ctx, selectDelivery+` WHERE id = ? AND tenant_id = ? AND subscription_id IS NOT NULL`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("reading webhook delivery %s: %w", id, err)
	}
	if d.Status != DeliveryFailed {
		return d, Errorf(CodeConflict, "Only a failed delivery can be sent again; this one is %s.", d.Status)
	}
	now := s.now()
	res, err := s.db.write.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = '', updated_at = ?
		WHERE id = ? AND tenant_id = ? AND status = 'failed'`, ms(now), ms(now), id, tenantID)
	if err != nil {
		return d, fmt.Errorf("queueing webhook delivery %s again: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return d, Errorf(CodeConflict, "Only a failed delivery can be sent again.")
	}
	d.Status, d.Attempts, d.NextAt, d.LastError = DeliveryPending, 0, fromMS(ms(now)), ""
	s.eventsQueued(1)
	return d, nil
}

// eventSignal wakes the delivery engine when events are queued, so it
// need not wait for its next poll.
type eventSignal struct {
	once sync.Once
	ch   chan struct{}
}

func (e *eventSignal) channel() chan struct{} {
	e.once.Do(func() { e.ch = make(chan struct{}, 1) })
	return e.ch
}

// EventsQueued receives a value after deliveries were queued by this
// store (events, tests, deliveries sent again).
func (s *Store) EventsQueued() <-chan struct{} { return s.events.channel() }

func (s *Store) eventsQueued(n int) {
	if n <= 0 {
		return
	}
	select {
	case s.events.channel() <- struct{}{}:
	default:
	}
}

// sessionStateEvent is the data of a session.state event for the link
// row x, which was in state prev.
func sessionStateEvent(x Link, prev LinkState) SessionStateEvent {
	return SessionStateEvent{State: x.State, PreviousState: prev, ErrorCode: x.ErrorCode, Error: x.LastError, Phone: PhoneOf(x.JID)}
}

// inboundEvent queues message.received for a stored inbound message.
func (s *Store) inboundEvent(ctx context.Context, tx *sql.Tx, tenantID string, id int64, in Inbound) (int, error) {
	chat := in.Chat
	ev := MessageEvent{
		MessageID: id, WAID: in.WAID, Chat: chat, From: PhoneOf(in.Sender), Name: in.SenderName,
		Kind: in.Kind, Text: in.Body, IsGroup: strings.HasSuffix(chat, "@g.us"), Status: string(in.Status),
	}
	if in.Media != nil {
		md := *in.Media
		if md.Kind.HasFile() {
			md.Status = MediaPending
		} else {
			md.Status = MediaNoFile
		}
		ev.Media = md.Info(s.mediaLinkOf(tenantID, id))
	}
	return s.queueEvent(ctx, tx, tenantID, EventMessageReceived, ev)
}

// MessageStatusEvent is the data of message.sent and message.status: an
// outgoing message (an API send or a bot reply) and where it now stands.
type MessageStatusEvent struct {
	MessageID int64     `json:"message_id"` // the id GET /api/v1/messages/{id} takes
	WAID      string    `json:"wa_id"`
	Chat      string    `json:"chat"`
	To        string    `json:"to,omitempty"` // the phone number, +international; "" for a group
	Source    string    `json:"source"`       // api or bot
	Status    APIStatus `json:"status"`       // sent, delivered, read or failed
	Reason    string    `json:"reason,omitempty"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"` // when it reached Status
}

// MessageStatusEventOf is the event data of m as it now stands; the writes
// that move an outgoing message on queue it with queueEvent in their own
// transaction: EventMessageSent when it is sent, EventMessageStatus for
// delivered, read and failed.
func MessageStatusEventOf(m APIMessage) MessageStatusEvent {
	ev := MessageStatusEvent{MessageID: m.ID, WAID: m.WAID, Chat: m.Chat, Source: m.Source, Status: m.Status, Reason: m.Reason, Error: m.Error, At: m.CreatedAt}
	if !strings.HasSuffix(m.Chat, "@g.us") {
		ev.To = PhoneOf(m.Chat)
	}
	for _, t := range []time.Time{m.SentAt, m.DeliveredAt, m.ReadAt} {
		if t.After(ev.At) {
			ev.At = t
		}
	}
	return ev
}
