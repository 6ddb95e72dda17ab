package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// EventWebhooks is what the portal asks of the pipeline about a tenant's
// event subscriptions: Subscribe checks the URL's host as the bot's
// webhook does.
type EventWebhooks interface {
	Subscriptions(ctx context.Context, tenantID string) ([]tenant.Subscription, error)
	Subscription(ctx context.Context, tenantID, id string) (tenant.Subscription, error)
	Subscribe(ctx context.Context, tenantID string, sub tenant.Subscription) (tenant.Subscription, error)
	Unsubscribe(ctx context.Context, tenantID, id string) error
	RotateSecret(ctx context.Context, tenantID, id string) (string, error)
	TestSubscription(ctx context.Context, tenantID, id string) error
	EventDeliveries(ctx context.Context, tenantID, subscriptionID string, limit int) ([]tenant.WebhookDelivery, error)
	ResendDelivery(ctx context.Context, tenantID, id string) (tenant.WebhookDelivery, error)
}

// eventLabel says in words what an event type reports.
func eventLabel(l *views.Locale, e tenant.EventType) string {
	switch e {
	case tenant.EventMessageReceived:
		return l.T("EventMessageReceived")
	case tenant.EventMessageSent:
		return l.T("EventMessageSent")
	case tenant.EventMessageStatus:
		return l.T("EventMessageStatus")
	case tenant.EventSessionState:
		return l.T("EventSessionState")
	}
	return string(e)
}

// recentDeliveries is how many deliveries the page lists.
const recentDeliveries = 50

const webhooksPath = "/app/settings/webhooks"

func (p *Portal) webhooksView(c echo.Context) (views.WebhooksView, error) {
	ctx, t := c.Request().Context(), currentTenant(c)
	subs, err := p.bot.Subscriptions(ctx, t.ID)
	if err != nil {
		return views.WebhooksView{}, err
	}
	ds, err := p.bot.EventDeliveries(ctx, t.ID, "", recentDeliveries)
	if err != nil {
		return views.WebhooksView{}, err
	}
	v := views.WebhooksView{Chrome: p.chrome(c, loc(c).T("NavWebhooks"), "webhooks"), Errors: map[string]string{}}
	for _, s := range subs {
		names := make([]string, len(s.Events))
		for i, e := range s.Events {
			names[i] = string(e)
		}
		base := webhooksPath + "/" + s.ID
		v.Subscriptions = append(v.Subscriptions, views.SubscriptionRow{ID: s.ID, URL: s.URL, Events: strings.Join(names, ", "),
			Created: loc(c).DateTime(s.CreatedAt), TestURL: base + "/test", RotateURL: base + "/secret", DeleteURL: base + "/delete"})
	}
	for _, d := range ds {
		row := views.DeliveryRow{ID: d.ID, Event: string(d.EventType), URL: d.URL, Status: string(d.Status), Attempts: d.Attempts,
			Error: d.LastError, Created: loc(c).DateTimeSeconds(d.CreatedAt)}
		if d.Status == tenant.DeliveryFailed {
			row.ResendURL = webhooksPath + "/deliveries/" + d.ID + "/resend"
		}
		v.Deliveries = append(v.Deliveries, row)
	}
	for _, e := range tenant.EventTypes {
		v.Events = append(v.Events, views.EventChoice{Value: string(e), Label: eventLabel(loc(c), e)})
	}
	return v, nil
}

// webhooksShow lists the workspace's subscriptions and recent deliveries
// with a form for a new subscription.
func (p *Portal) webhooksShow(c echo.Context) error {
	v, err := p.webhooksView(c)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.WebhooksPage(v))
}

// webhookCreate subscribes a URL and shows its secret in this response
// only, so it never sits in a flash or a page that can be reloaded.
func (p *Portal) webhookCreate(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return tenant.Errorf(tenant.CodeBadRequest, "the form cannot be read")
	}
	url, picked := strings.TrimSpace(form.Get("url")), form["events"]
	events, err := tenant.NormalizeEvents(picked)
	var sub tenant.Subscription
	if err == nil {
		sub, err = p.bot.Subscribe(c.Request().Context(), currentTenant(c).ID, tenant.Subscription{URL: url, Events: events})
	} else {
		err = &tenant.Error{Code: tenant.CodeInvalid, Msg: "the webhook subscription has errors", Fields: map[string]string{"events": err.Error()}}
	}
	var de *tenant.Error
	if errors.As(err, &de) && (de.Code == tenant.CodeInvalid || de.Code == tenant.CodeConflict) {
		v, verr := p.webhooksView(c)
		if verr != nil {
			return verr
		}
		v.URL, v.Errors = url, fieldTexts(loc(c), de.Fields)
		if de.Code == tenant.CodeConflict {
			v.Errors = map[string]string{"url": de.Msg}
		}
		for i := range v.Events {
			v.Events[i].Checked = slices.Contains(picked, v.Events[i].Value)
		}
		return Render(c, http.StatusUnprocessableEntity, views.WebhooksPage(v))
	}
	if err != nil {
		return err
	}
	p.log.Info("webhook subscription created", "tenant", sub.TenantID, "subscription", sub.ID)
	v, err := p.webhooksView(c)
	if err != nil {
		return err
	}
	v.Secret = &views.ShownSecret{URL: sub.URL, Secret: sub.Secret}
	return Render(c, http.StatusCreated, views.WebhooksPage(v))
}

// webhookSecretApply gives a subscription a new secret, shown once.
func (p *Portal) webhookSecretApply(c echo.Context) error {
	ctx, t := c.Request().Context(), currentTenant(c)
	sub, err := p.bot.Subscription(ctx, t.ID, c.Param("id"))
	if err != nil {
		return err
	}
	secret, err := p.bot.RotateSecret(ctx, t.ID, sub.ID)
	if err != nil {
		return err
	}
	v, err := p.webhooksView(c)
	if err != nil {
		return err
	}
	v.Secret = &views.ShownSecret{URL: sub.URL, Secret: secret}
	return Render(c, http.StatusOK, views.WebhooksPage(v))
}

func (p *Portal) webhookTestApply(c echo.Context) error {
	if err := p.bot.TestSubscription(c.Request().Context(), currentTenant(c).ID, c.Param("id")); err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashWebhookTest"))
	return c.Redirect(http.StatusSeeOther, webhooksPath)
}

func (p *Portal) webhookDeleteConfirm(c echo.Context) error {
	sub, err := p.bot.Subscription(c.Request().Context(), currentTenant(c).ID, c.Param("id"))
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.ConfirmPage(views.ConfirmView{
		Chrome: p.chrome(c, loc(c).T("DeleteWebhook"), "webhooks"), Title: loc(c).T("DeleteWebhookTitle"),
		Message: loc(c).T("DeleteWebhookMessage", "URL", sub.URL),
		Action:  webhooksPath + "/" + sub.ID + "/delete", Button: loc(c).T("DeleteWebhook"), Cancel: webhooksPath, Danger: true,
	}))
}

func (p *Portal) webhookDeleteApply(c echo.Context) error {
	if err := p.bot.Unsubscribe(c.Request().Context(), currentTenant(c).ID, c.Param("id")); err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashWebhookDeleted"))
	return c.Redirect(http.StatusSeeOther, webhooksPath)
}

// deliveryResendApply queues a failed delivery again.
func (p *Portal) deliveryResendApply(c echo.Context) error {
	_, err := p.bot.ResendDelivery(c.Request().Context(), currentTenant(c).ID, c.Param("id"))
	if tenant.ErrorCode(err) == tenant.CodeConflict {
		p.flash(c, "error", err.Error())
		return c.Redirect(http.StatusSeeOther, webhooksPath)
	}
	if err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashDeliveryQueued"))
	return c.Redirect(http.StatusSeeOther, webhooksPath)
}
