package portal

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// Event webhook subscriptions under /api/v1 (scope bot:manage): the same
// subscriptions, address check, outbox and "send again" as Settings →
// Webhooks. A secret is in the answer that makes it (create, rotate) and
// in no other.

func (p *Portal) apiV1WebhookRoutes(g *echo.Group) {
	g.POST("", p.apiV1WebhookCreate)
	g.GET("", p.apiV1WebhooksShow)
	g.GET("/:id", p.apiV1WebhookShow)
	g.DELETE("/:id", p.apiV1WebhookDelete)
	g.POST("/:id/test", p.apiV1WebhookTest)
	g.POST("/:id/secret", p.apiV1WebhookSecretRotate)
	g.GET("/:id/deliveries", p.apiV1WebhookDeliveriesShow)
	g.POST("/deliveries/:id/retry", p.apiV1WebhookDeliveryRetry)
}

// webhookV1 is a subscription as the API shows it.
type webhookV1 struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	CreatedAt string   `json:"created_at"`
	Secret    string   `json:"secret,omitempty"` // only when just made
}

func webhookV1Of(s tenant.Subscription) webhookV1 {
	events := make([]string, len(s.Events))
	for i, e := range s.Events {
		events[i] = string(e)
	}
	return webhookV1{ID: s.ID, URL: s.URL, Events: events, CreatedAt: s.CreatedAt.UTC().Format(time.RFC3339)}
}

// webhookDeliveryV1 is one event delivery as the API shows it.
type webhookDeliveryV1 struct {
	ID             string  `json:"id"`
	SubscriptionID string  `json:"subscription_id"`
	EventID        string  `json:"event_id"`
	EventType      string  `json:"event_type"`
	URL            string  `json:"url"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	NextAttemptAt  *string `json:"next_attempt_at"` // while pending
	LastError      *string `json:"last_error"`
	CreatedAt      string  `json:"created_at"`
}

func webhookDeliveryV1Of(d tenant.WebhookDelivery) webhookDeliveryV1 {
	out := webhookDeliveryV1{ID: d.ID, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: string(d.EventType),
		URL: d.URL, Status: string(d.Status), Attempts: d.Attempts, LastError: nullIfEmpty(d.LastError),
		CreatedAt: d.CreatedAt.UTC().Format(time.RFC3339)}
	if d.Status == tenant.DeliveryPending {
		out.NextAttemptAt = rfc3339OrNull(d.NextAt)
	}
	return out
}

// apiV1WebhookCreate subscribes {"url", "events", "secret"?}; the answer
// holds the secret, once. A URL whose host is not public, or an event type
// that does not exist, is 422 naming the field (never the address the
// host resolved to).
func (p *Portal) apiV1WebhookCreate(c echo.Context) error {
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Secret string   `json:"secret"`
	}
	if err := decodeAPIV1JSON(c, &in); err != nil {
		return err
	}
	events, err := tenant.NormalizeEvents(in.Events)
	if err != nil {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "the webhook subscription has errors",
			Fields: map[string]string{"events": sentence(err.Error())}}
	}
	tenantID := apiTenantID(c)
	sub, err := p.bot.Subscribe(c.Request().Context(), tenantID, tenant.Subscription{URL: in.URL, Events: events, Secret: in.Secret})
	if err != nil {
		return err
	}
	p.log.Info("webhook subscription created through the API", "tenant", tenantID, "subscription", sub.ID, "key", apiKeyOf(c).ID)
	out := webhookV1Of(sub)
	out.Secret = sub.Secret
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

// apiV1WebhooksShow lists the workspace's subscriptions, oldest first.
func (p *Portal) apiV1WebhooksShow(c echo.Context) error {
	subs, err := p.bot.Subscriptions(c.Request().Context(), apiTenantID(c))
	if err != nil {
		return err
	}
	out := struct {
		Webhooks []webhookV1 `json:"webhooks"`
	}{Webhooks: []webhookV1{}}
	for _, s := range subs {
		out.Webhooks = append(out.Webhooks, webhookV1Of(s))
	}
	return c.JSON(http.StatusOK, out)
}

func (p *Portal) apiV1WebhookShow(c echo.Context) error {
	sub, err := p.bot.Subscription(c.Request().Context(), apiTenantID(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookV1Of(sub))
}

// apiV1WebhookDelete removes a subscription and drops its deliveries
// still waiting; it answers {"id", "deleted": true}.
func (p *Portal) apiV1WebhookDelete(c echo.Context) error {
	tenantID, id := apiTenantID(c), c.Param("id")
	if err := p.bot.Unsubscribe(c.Request().Context(), tenantID, id); err != nil {
		return err
	}
	p.log.Info("webhook subscription deleted through the API", "tenant", tenantID, "subscription", id, "key", apiKeyOf(c).ID)
	return c.JSON(http.StatusOK, map[string]any{"id": id, "deleted": true})
}

// apiV1WebhookTest queues a webhook.test event to the subscription,
// whatever it subscribed to; its delivery shows under /deliveries.
func (p *Portal) apiV1WebhookTest(c echo.Context) error {
	id := c.Param("id")
	if err := p.bot.TestSubscription(c.Request().Context(), apiTenantID(c), id); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"subscription_id": id, "event_type": string(tenant.EventWebhookTest)})
}

// apiV1WebhookSecretRotate gives the subscription a new generated secret,
// in this answer only; deliveries still waiting are signed with it.
func (p *Portal) apiV1WebhookSecretRotate(c echo.Context) error {
	ctx, tenantID := c.Request().Context(), apiTenantID(c)
	sub, err := p.bot.Subscription(ctx, tenantID, c.Param("id"))
	if err != nil {
		return err
	}
	if sub.Secret, err = p.bot.RotateSecret(ctx, tenantID, sub.ID); err != nil {
		return err
	}
	p.log.Info("webhook secret rotated through the API", "tenant", tenantID, "subscription", sub.ID, "key", apiKeyOf(c).ID)
	out := webhookV1Of(sub)
	out.Secret = sub.Secret
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// maxAPIDeliveries bounds ?limit= on a delivery list.
const maxAPIDeliveries = 200

// apiV1WebhookDeliveriesShow lists the subscription's deliveries, newest
// first (?limit= 1 to 200, default 50).
func (p *Portal) apiV1WebhookDeliveriesShow(c echo.Context) error {
	limit := recentDeliveries
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxAPIDeliveries {
			return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "a query parameter is not valid",
				Fields: map[string]string{"limit": "Use a whole number from 1 to 200."}}
		}
		limit = n
	}
	ctx, tenantID := c.Request().Context(), apiTenantID(c)
	sub, err := p.bot.Subscription(ctx, tenantID, c.Param("id"))
	if err != nil {
		return err
	}
	ds, err := p.bot.EventDeliveries(ctx, tenantID, sub.ID, limit)
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []webhookDeliveryV1 `json:"deliveries"`
	}{Deliveries: []webhookDeliveryV1{}}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, webhookDeliveryV1Of(d))
	}
	return c.JSON(http.StatusOK, out)
}

// apiV1WebhookDeliveryRetry queues a failed delivery again, due now; one
// that is not failed is 409.
func (p *Portal) apiV1WebhookDeliveryRetry(c echo.Context) error {
	d, err := p.bot.ResendDelivery(c.Request().Context(), apiTenantID(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, webhookDeliveryV1Of(d))
}
