package portal

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// sessionV1 is a workspace's WhatsApp link under /api/v1. Every key is
// present; a value that does not apply is null (the QR code outside
// QR_READY, the number before linking, the error outside ERROR and
// LOGGED_OUT).
type sessionV1 struct {
	State       string  `json:"state"`
	Number      *string `json:"number"`
	PushName    *string `json:"push_name"`
	ConnectedAt *string `json:"connected_at"`
	ErrorCode   *string `json:"error_code"`
	Error       *string `json:"error"`
	QRCode      *string `json:"qr_code"`
	QRPNG       *string `json:"qr_png"`
	QRExpiresAt *string `json:"qr_expires_at"`
	PairCode    *string `json:"pair_code"`
}

func sessionV1Of(l tenant.Link) sessionV1 {
	out := sessionV1{State: string(l.State), Number: nullIfEmpty(tenant.PhoneOf(l.JID)), PushName: nullIfEmpty(l.PushName),
		ConnectedAt: rfc3339OrNull(l.ConnectedAt), PairCode: nullIfEmpty(l.PairCode)}
	if l.State == tenant.StateError || l.State == tenant.StateLoggedOut {
		out.ErrorCode, out.Error = nullIfEmpty(string(l.ErrorCode)), nullIfEmpty(l.LastError)
	}
	if l.State == tenant.StateQRReady {
		out.QRCode, out.QRPNG, out.QRExpiresAt = nullIfEmpty(l.QRCode), nullIfEmpty(l.QRDataURI), rfc3339OrNull(l.QRExpiresAt)
	}
	return out
}

// showAPIV1Session answers with the workspace's link as stored now.
func (p *Portal) showAPIV1Session(c echo.Context, status int) error {
	return p.showSessionV1(c, status, apiTenantID(c))
}

// showSessionV1 answers with tenantID's link: the key's own workspace,
// or for an instance key the one in the path.
func (p *Portal) showSessionV1(c echo.Context, status int, tenantID string) error {
	l, err := p.store.LinkOf(c.Request().Context(), tenantID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, sessionV1Of(l))
}

func (p *Portal) apiV1SessionShow(c echo.Context) error { return p.showAPIV1Session(c, http.StatusOK) }

// apiV1LinkNew starts a link attempt and answers with the first QR code
// when it comes within 3 s (else state QR_PENDING: poll GET /session).
func (p *Portal) apiV1LinkNew(c echo.Context) error {
	return p.startLinkV1(c, apiTenantID(c), func() error { return nil })
}

// startLinkV1 starts tenantID's link attempt, calls started once it is
// under way, and answers with the link as apiV1LinkNew does.
func (p *Portal) startLinkV1(c echo.Context, tenantID string, started func() error) error {
	ctx := c.Request().Context()
	if err := p.sessions.Link(ctx, tenantID); err != nil {
		return err
	}
	if err := started(); err != nil {
		return err
	}
	if _, err := p.waitForCode(ctx, tenantID, 3*time.Second); err != nil {
		return err
	}
	return p.showSessionV1(c, http.StatusOK, tenantID)
}

// apiV1LinkPhoneNew answers {"phone": "+15550001111"} with the pairing
// code to type on that phone, within the same budgets as the portal.
func (p *Portal) apiV1LinkPhoneNew(c echo.Context) error {
	var in struct {
		Phone string `json:"phone"`
	}
	if err := decodeAPIV1JSON(c, &in); err != nil {
		return err
	}
	if phoneDigits(in.Phone) == "" {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "phone is required",
			Fields: map[string]string{"phone": "Enter the phone number in international format, such as +15550001111."}}
	}
	tenantID := apiTenantID(c)
	if err := p.pairingAllowed(c, tenantID, in.Phone); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 45*time.Second)
	defer cancel()
	code, err := p.sessions.LinkPhone(ctx, tenantID, in.Phone)
	if err != nil {
		if ctx.Err() != nil {
			return &tenant.Error{Code: tenant.CodeUnavailable, Msg: "WhatsApp did not answer in time; try again"}
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"code": code})
}

// The session actions answer with the link as it stands afterwards.

func (p *Portal) apiV1SessionLogout(c echo.Context) error {
	return p.apiV1SessionAction(c, p.sessions.Logout)
}

func (p *Portal) apiV1SessionReset(c echo.Context) error {
	return p.apiV1SessionAction(c, p.sessions.Reset)
}

func (p *Portal) apiV1SessionRestart(c echo.Context) error {
	return p.apiV1SessionAction(c, p.sessions.Restart)
}

func (p *Portal) apiV1SessionAction(c echo.Context, do func(context.Context, string) error) error {
	if err := do(c.Request().Context(), apiTenantID(c)); err != nil {
		return err
	}
	return p.showAPIV1Session(c, http.StatusOK)
}

// apiV1BotShow answers with the workspace's bot configuration.
func (p *Portal) apiV1BotShow(c echo.Context) error {
	cfg, err := p.bot.Config(c.Request().Context(), apiTenantID(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cfg)
}

// apiV1BotSave replaces the bot configuration, validated as the portal's
// form is; fields left out keep their defaults.
func (p *Portal) apiV1BotSave(c echo.Context) error {
	if err := p.allowBotSave(c); err != nil {
		return err
	}
	cfg := tenant.DefaultBotConfig()
	if err := decodeAPIV1JSON(c, &cfg); err != nil {
		return err
	}
	saved, err := p.bot.SaveConfig(c.Request().Context(), apiTenantID(c), cfg)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, saved)
}

// botUsageJSON is GET /api/v1/bot/usage: this month's use of the model
// (UTC calendar month) and the budget it counts against.
type botUsageJSON struct {
	Month              string `json:"month"`
	Tokens             int64  `json:"tokens"`
	Answers            int64  `json:"answers"`
	Handovers          int64  `json:"handovers"`
	Failures           int64  `json:"failures"`
	MonthlyTokenBudget int64  `json:"monthly_token_budget"`
	// The month's latest failure, in the pipeline's words, and when;
	// "" and null when there was none.
	LastFailure   string     `json:"last_failure"`
	LastFailureAt *time.Time `json:"last_failure_at"`
}

// apiV1BotUsageShow answers with this month's use of the model, so a
// program can watch the budget without reading the dashboard.
func (p *Portal) apiV1BotUsageShow(c echo.Context) error {
	ctx, tenantID := c.Request().Context(), apiTenantID(c)
	cfg, err := p.bot.Config(ctx, tenantID)
	if err != nil {
		return err
	}
	u, err := p.store.AIUsageOf(ctx, tenantID, time.Now())
	if err != nil {
		return err
	}
	out := botUsageJSON{Month: u.Month, Tokens: u.Tokens, Answers: u.Answers, Handovers: u.Handovers,
		Failures: u.Failures, MonthlyTokenBudget: cfg.AI.MonthlyTokenBudget, LastFailure: u.LastFailure}
	if !u.LastFailureAt.IsZero() {
		at := u.LastFailureAt.UTC()
		out.LastFailureAt = &at
	}
	return c.JSON(http.StatusOK, out)
}
