package portal

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// Bodies of the JSON API, which scripts parse: every key is always
// present, and a *string is null when there is no value (qr and qr_code
// outside QR_READY, connected_at of a session that never connected).

type qrResponse struct {
	State     string  `json:"state"`
	QR        *string `json:"qr"`
	QRCode    *string `json:"qr_code"`
	UpdatedAt *string `json:"updated_at"`
	ExpiresAt *string `json:"expires_at"`
}

type statusResponse struct {
	Tenant  tenantJSON  `json:"tenant"`
	Session sessionJSON `json:"session"`
	Worker  workerJSON  `json:"worker"`
}

type tenantJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

type sessionJSON struct {
	State       string  `json:"state"`
	JID         *string `json:"jid"`
	PushName    *string `json:"push_name"`
	ConnectedAt *string `json:"connected_at"`
	LastError   *string `json:"last_error"`
	ErrorCode   *string `json:"error_code"`
	PairCode    *string `json:"pair_code"`
}

type workerJSON struct {
	Status     string  `json:"status"`
	LastSeenAt *string `json:"last_seen_at"`
	Restarts   int     `json:"restarts"`
}

type logsResponse struct {
	Logs []logJSON `json:"logs"`
	Next *string   `json:"next"` // ?before= of the next page; null on the last
}

type logJSON struct {
	ID        int64  `json:"id"`
	Direction string `json:"direction"`
	Chat      string `json:"chat"`
	Sender    string `json:"sender"`
	Body      string `json:"body"`
	Status    string `json:"status"`
	Error     string `json:"error"`
	CreatedAt string `json:"created_at"`
}

// nullIfEmpty makes "" a JSON null.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// rfc3339OrNull makes the zero time a JSON null.
// apiTime is RFC 3339 in UTC with milliseconds, the precision the store
// keeps, so a client can order and time messages within a second.
const apiTime = "2006-01-02T15:04:05.000Z07:00"

func rfc3339OrNull(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(apiTime)
	return &s
}

func (p *Portal) apiQRShow(c echo.Context) error {
	sess, err := p.store.LinkOf(c.Request().Context(), currentTenant(c).ID)
	if err != nil {
		return err
	}
	out := qrResponse{State: string(sess.State)}
	if sess.State == tenant.StateQRReady {
		out.QR, out.QRCode = nullIfEmpty(sess.QRDataURI), nullIfEmpty(sess.QRCode)
		out.UpdatedAt, out.ExpiresAt = rfc3339OrNull(sess.QRUpdatedAt), rfc3339OrNull(sess.QRExpiresAt)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

func (p *Portal) apiStatusShow(c echo.Context) error {
	t := currentTenant(c)
	sess, worker, err := p.sessionAndWorker(c.Request().Context(), t.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusResponse{
		Tenant: tenantJSON{ID: t.ID, Name: t.Name, Status: string(t.Status)},
		Session: sessionJSON{State: string(sess.State), JID: nullIfEmpty(sess.JID), PushName: nullIfEmpty(sess.PushName),
			ConnectedAt: rfc3339OrNull(sess.ConnectedAt), LastError: nullIfEmpty(sess.LastError), ErrorCode: nullIfEmpty(string(sess.ErrorCode)), PairCode: nullIfEmpty(sess.PairCode)},
		Worker: workerJSON{Status: string(worker.Status), LastSeenAt: rfc3339OrNull(worker.LastSeenAt), Restarts: worker.Restarts},
	})
}

func (p *Portal) apiLogsShow(c echo.Context) error {
	limit := 50
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 200 {
			return &tenant.Error{Code: tenant.CodeBadRequest, Msg: "limit must be a number from 1 to 200"}
		}
		limit = n
	}
	msgs, next, err := p.store.Messages(c.Request().Context(), currentTenant(c).ID, tenant.MessageQuery{
		Limit: limit, Before: c.QueryParam("before"), Text: c.QueryParam("q"),
		Direction: c.QueryParam("direction"), Status: tenant.MessageStatus(c.QueryParam("status")),
	})
	if err != nil {
		return err
	}
	out := logsResponse{Logs: []logJSON{}, Next: nullIfEmpty(next)}
	for _, m := range msgs {
		out.Logs = append(out.Logs, logJSON{ID: m.ID, Direction: m.Direction, Chat: m.Chat, Sender: m.Sender, Body: m.Body,
			Status: string(m.Status), Error: m.Error, CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339)})
	}
	return c.JSON(http.StatusOK, out)
}

// decodeJSON reads a JSON body into v, refusing unknown fields.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return tenant.Errorf(tenant.CodeBadRequest, "the body is not the expected JSON: %v", err)
	}
	return nil
}

func (p *Portal) apiTenantCreate(c echo.Context) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := p.createTenantAndSession(c, in.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tenantJSON{ID: t.ID, Name: t.Name, Status: string(t.Status)})
}

func (p *Portal) apiBotShow(c echo.Context) error {
	cfg, err := p.bot.Config(c.Request().Context(), currentTenant(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cfg)
}

func (p *Portal) apiBotSave(c echo.Context) error {
	if err := p.allowBotSave(c); err != nil {
		return err
	}
	cfg := tenant.DefaultBotConfig() // fields left out keep their defaults
	if err := decodeJSON(c, &cfg); err != nil {
		return err
	}
	saved, err := p.bot.SaveConfig(c.Request().Context(), currentTenant(c).ID, cfg)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, saved)
}

// apiLinkNew starts a link attempt and answers like apiQRShow, with the
// first QR code when it comes within 3 s.
func (p *Portal) apiLinkNew(c echo.Context) error {
	ctx, tenantID := c.Request().Context(), currentTenant(c).ID
	if err := p.sessions.Link(ctx, tenantID); err != nil {
		return err
	}
	if _, err := p.waitForCode(ctx, tenantID, 3*time.Second); err != nil {
		return err
	}
	return p.apiQRShow(c)
}

// apiLinkPhoneNew answers with a pairing code for {"phone": ...}.
func (p *Portal) apiLinkPhoneNew(c echo.Context) error {
	var in struct {
		Phone string `json:"phone"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := p.pairingAllowed(c, currentTenant(c).ID, in.Phone); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 45*time.Second)
	defer cancel()
	code, err := p.sessions.LinkPhone(ctx, currentTenant(c).ID, in.Phone)
	if err != nil {
		if ctx.Err() != nil {
			return &tenant.Error{Code: tenant.CodeUnavailable, Msg: "WhatsApp did not answer in time; try again"}
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"code": code})
}

// pairingAllowed counts a request for a pairing code against the tenant's
// and the number's budgets. Each code makes WhatsApp push a prompt to
// that phone, and many in a row put the server's address at risk with
// WhatsApp; over either budget the answer is 429 with Retry-After.
func (p *Portal) pairingAllowed(c echo.Context, tenantID, phone string) error {
	if ok, wait := p.pairTenant.allow(tenantID); !ok {
		c.Response().Header().Set("Retry-After", retryAfter(wait))
		return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many pairing codes for this workspace; wait " + minutes(wait) + " and try again"}
	}
	if number := phoneDigits(phone); number != "" {
		if ok, wait := p.pairNumber.allow(number); !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many pairing codes for this phone number; wait " + minutes(wait) + " and try again"}
		}
	}
	return nil
}

// phoneDigits keys a phone number by its digits, however it was written.
func phoneDigits(phone string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, phone)
}

// minutes says a wait in whole minutes, rounded up.
func minutes(wait time.Duration) string {
	m := int((wait + time.Minute - 1) / time.Minute)
	if m <= 1 {
		return "a minute"
	}
	return strconv.Itoa(m) + " minutes"
}
