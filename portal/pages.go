package portal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// homeShow is the sign-in page, or a redirect for a user already signed in.
func (p *Portal) homeShow(c echo.Context) error {
	if u, ok := currentUser(c); ok {
		return c.Redirect(http.StatusSeeOther, landing(u, safeNext(c.QueryParam("next"))))
	}
	next := safeNext(c.QueryParam("next"))
	v := views.SignInView{Next: next, Demo: p.cfg.Demo}
	for _, name := range p.auth.providers() {
		label := loc(c).T("SignInWithGoogle")
		if name == providerOIDC {
			label = loc(c).T("SignInWithSSO")
		}
		href := "/auth/" + name
		if next != "" {
			href += "?next=" + url.QueryEscape(next)
		}
		v.Providers = append(v.Providers, views.ProviderLink{Name: name, Label: label, URL: href})
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return Render(c, http.StatusOK, views.SignInPage(v))
}

func (p *Portal) dashboardShow(c echo.Context) error {
	u, _ := currentUser(c)
	if u.TenantID == "" {
		return Render(c, http.StatusOK, views.CreateTenantPage(views.CreateTenantView{Chrome: p.chrome(c, loc(c).T("CreateWorkspaceHeading"), "app")}))
	}
	if currentRole(c) != tenant.RoleOwner {
		// An agent's home is the conversations.
		return c.Redirect(http.StatusSeeOther, "/app/chats")
	}
	ctx := c.Request().Context()
	t, err := p.store.TenantByID(ctx, u.TenantID)
	if err != nil {
		return err
	}
	sess, worker, err := p.sessionAndWorker(ctx, t.ID)
	if err != nil {
		return err
	}
	msgs, _, err := p.store.Messages(ctx, t.ID, tenant.MessageQuery{Limit: 10, Preview: logPreview})
	if err != nil {
		return err
	}
	media, err := p.mediaOfMessages(ctx, t.ID, msgs)
	if err != nil {
		return err
	}
	usage, err := p.mediaUsageView(ctx, t.ID)
	if err != nil {
		return err
	}
	ai, err := p.dashboardAI(ctx, loc(c), t.ID)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.Dashboard(views.DashboardView{
		Chrome: p.chrome(c, t.Name, "app"), Tenant: tenantView(loc(c), t),
		Session: sessionView(loc(c), sess, worker, time.Now()), Messages: messageViews(loc(c), msgs, media), Media: usage, AI: ai,
	}))
}

// dashboardAI is this month's use of the model for the dashboard; nil
// (nothing shown) while AI answers are off and unused this month.
func (p *Portal) dashboardAI(ctx context.Context, l *views.Locale, tenantID string) (*views.AIUsageView, error) {
	cfg, err := p.bot.Config(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	u, err := p.store.AIUsageOf(ctx, tenantID, time.Now())
	if err != nil {
		return nil, err
	}
	if !cfg.AI.Enabled && u.Tokens == 0 && u.Answers == 0 && u.Handovers == 0 && u.Failures == 0 {
		return nil, nil
	}
	v := aiUsageView(l, u, cfg.AI.MonthlyTokenBudget)
	return &v, nil
}

func (p *Portal) sessionAndWorker(ctx context.Context, tenantID string) (tenant.Link, tenant.Worker, error) {
	sess, err := p.store.LinkOf(ctx, tenantID)
	if err != nil {
		return sess, tenant.Worker{}, err
	}
	worker, err := p.store.WorkerOf(ctx, tenantID)
	return sess, worker, err
}

// createTenantAndSession creates the signed-in user's tenant and starts its
// WhatsApp session; the form and the JSON API share it.
func (p *Portal) createTenantAndSession(c echo.Context, name string) (tenant.Tenant, error) {
	u, _ := currentUser(c)
	t, err := p.store.CreateTenant(c.Request().Context(), u.ID, name, p.cfg.AutoApprove)
	if err != nil {
		return t, err
	}
	p.log.Info("tenant created", "tenant", t.ID, "status", t.Status, "user", u.ID)
	// The workspace speaks its owner's language: its bot's built-in
	// replies follow it (tenant.Store.BotConfigOf).
	if err := p.store.SetTenantLanguage(c.Request().Context(), t.ID, loc(c).Code()); err != nil {
		p.log.Warn("cannot store the new tenant's language", "tenant", t.ID, "err", err)
	}
	// The new workspace becomes this browser's current one.
	p.browser.Put(c.Request().Context(), sessionTenantKey, t.ID)
	if err := p.sessions.Add(t.ID); err != nil {
		p.log.Error("cannot start the new tenant's session", "tenant", t.ID, "err", err)
	}
	return t, nil
}

// tenantCreate handles the create-workspace form, showing it again when
// the name is refused.
func (p *Portal) tenantCreate(c echo.Context) error {
	name := c.FormValue("name")
	_, err := p.createTenantAndSession(c, name)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		msg := de.Msg
		if f := de.Fields["name"]; f != "" {
			msg = fieldText(loc(c), f)
		}
		return Render(c, http.StatusUnprocessableEntity, views.CreateTenantPage(views.CreateTenantView{
			Chrome: p.chrome(c, loc(c).T("CreateWorkspaceHeading"), "app"), Name: name, Error: msg,
		}))
	}
	if err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashWorkspaceCreated"))
	return c.Redirect(http.StatusSeeOther, "/app/link")
}

// linkShow shows the QR code inside the first response and starts a link
// attempt when there is none (opening the page is asking for a code).
func (p *Portal) linkShow(c echo.Context) error {
	t := currentTenant(c)
	ctx := c.Request().Context()
	sess, err := p.store.LinkOf(ctx, t.ID)
	if err != nil {
		return err
	}
	switch sess.State {
	case tenant.StateQRPending, tenant.StateQRExpired:
		if err := p.sessions.Link(ctx, t.ID); err != nil && tenant.ErrorCode(err) != tenant.CodeConflict {
			p.log.Warn("cannot start a link attempt", "tenant", t.ID, "err", err)
		} else if err == nil {
			sess, _ = p.waitForCode(ctx, t.ID, 3*time.Second)
		}
	}
	panel, err := p.linkPanel(ctx, t.ID, sess)
	if err != nil {
		return err
	}
	ch := p.chrome(c, loc(c).T("LinkWhatsApp"), "link")
	ch.RefreshSeconds = 5
	return Render(c, http.StatusOK, views.LinkPage(views.LinkView{Chrome: ch, Tenant: tenantView(loc(c), t), Panel: panel}))
}

// waitForCode lets the first response carry the QR code when it arrives
// within wait.
func (p *Portal) waitForCode(ctx context.Context, tenantID string, wait time.Duration) (tenant.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		sess, err := p.store.LinkOf(ctx, tenantID)
		if err != nil || sess.State != tenant.StateQRPending || time.Now().After(deadline) {
			return sess, err
		}
		select {
		case <-ctx.Done():
			return sess, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Portal) linkPanel(ctx context.Context, tenantID string, sess tenant.Link) (views.LinkPanelView, error) {
	worker, err := p.store.WorkerOf(ctx, tenantID)
	if err != nil {
		return views.LinkPanelView{}, err
	}
	return views.LinkPanelView{
		Session: sessionView(views.LocaleOf(ctx), sess, worker, time.Now()), TenantID: tenantID, Demo: p.cfg.Demo,
		Version: panelVersion(sess), StreamURL: "/app/link/events",
	}, nil
}

// linkRereadInterval is how often an open link page re-reads its row
// without a signal: a safety net for a write that bypassed this process's
// session manager, not the way changes arrive.
const linkRereadInterval = 5 * time.Second

// linkEvents streams the link panel as server-sent events: a new panel
// whenever the QR code rotates or the state changes. The tenant comes from
// the session, like every other read. The row is re-read when the session
// manager signals a write, and every few seconds besides.
//
// A stream is bounded like a request: it ends when its browser session
// ends (sign-out, expiry, the user losing the tenant), found by a re-check
// every StreamRecheck; it ends after StreamLifetime in any case (the
// page's EventSource reconnects, passing the last panel's version); and a
// user holds at most StreamsPerUser at once.
func (p *Portal) linkEvents(c echo.Context) error {
	t := currentTenant(c)
	u, _ := currentUser(c)
	ctx := c.Request().Context()
	token := p.browser.Token(ctx)
	if !p.streams.acquire(u.ID, p.cfg.StreamsPerUser) {
		return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many live pages open; close some tabs and reload"}
	}
	defer p.streams.release(u.ID)
	// Subscribed before the first read, so no write after it is missed.
	changed, unsubscribe := p.sessions.Subscribe(t.ID)
	defer unsubscribe()
	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	last := c.QueryParam("v")
	if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
		last = id // a reconnect: the panel the page shows now
	}
	reread := time.NewTicker(linkRereadInterval)
	defer reread.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	recheck := time.NewTicker(p.cfg.StreamRecheck)
	defer recheck.Stop()
	lifetime := time.NewTimer(p.cfg.StreamLifetime)
	defer lifetime.Stop()
	for {
		s, err := p.store.LinkOf(ctx, t.ID)
		if err != nil {
			return nil
		}
		if v := strings.ReplaceAll(panelVersion(s), "\n", ""); v != last {
			last = v
			panel, err := p.linkPanel(ctx, t.ID, s)
			if err != nil {
				return nil
			}
			var buf bytes.Buffer
			if err := views.LinkPanel(panel).Render(ctx, &buf); err != nil {
				return err
			}
			fmt.Fprintf(c.Response(), "id: %s\nevent: panel\n", v)
			for _, line := range strings.Split(buf.String(), "\n") {
				fmt.Fprintf(c.Response(), "data: %s\n", line)
			}
			fmt.Fprint(c.Response(), "\n")
			c.Response().Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.streamsDone:
			return nil
		case <-lifetime.C:
			return nil
		case <-recheck.C:
			if !p.streamAllowed(ctx, token, u.ID, t.ID, true) {
				return nil
			}
			continue
		case <-keepalive.C:
			fmt.Fprint(c.Response(), ": keepalive\n\n")
			c.Response().Flush()
		case <-changed:
		case <-reread.C:
		}
	}
}

func (p *Portal) linkNew(c echo.Context) error {
	t := currentTenant(c)
	if err := p.sessions.Link(c.Request().Context(), t.ID); err != nil {
		if tenant.ErrorCode(err) == "" {
			return err
		}
		p.flash(c, "error", errorText(loc(c), err.Error()))
	}
	return c.Redirect(http.StatusSeeOther, "/app/link")
}

// linkPhoneNew asks WhatsApp for a pairing code for the phone number in
// the form, the alternative to scanning.
func (p *Portal) linkPhoneNew(c echo.Context) error {
	t := currentTenant(c)
	if err := p.pairingAllowed(c, t.ID, c.FormValue("phone")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 45*time.Second)
	defer cancel()
	code, err := p.sessions.LinkPhone(ctx, t.ID, c.FormValue("phone"))
	if err != nil {
		if tenant.ErrorCode(err) == "" && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		p.flash(c, "error", loc(c).T("FlashNoPairingCode", "Reason", errorText(loc(c), err.Error())))
	} else {
		p.flash(c, "ok", loc(c).T("FlashTypePairingCode", "Code", code))
	}
	return c.Redirect(http.StatusSeeOther, "/app/link")
}

// Session actions (reset, logout) ask first.
func sessionActionText(l *views.Locale, action string) (text struct{ title, message, button string }, ok bool) {
	switch action {
	case "reset":
		return struct{ title, message, button string }{l.T("ResetSessionTitle"), l.T("ResetSessionMessage"), l.T("Reset")}, true
	case "logout":
		return struct{ title, message, button string }{l.T("UnlinkTitle"), l.T("UnlinkMessage"), l.T("Unlink")}, true
	}
	return text, false
}

// sessionActionConfirm asks before a reset or logout of the tenant's own
// WhatsApp session; sessionActionApply carries it out.
func (p *Portal) sessionActionConfirm(c echo.Context) error {
	action := c.Param("action")
	text, ok := sessionActionText(loc(c), action)
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	return Render(c, http.StatusOK, views.ConfirmPage(views.ConfirmView{
		Chrome: p.chrome(c, text.title, "app"), Title: text.title, Message: text.message,
		Action: "/app/session/" + action, Button: text.button, Cancel: "/app", Danger: true,
	}))
}

func (p *Portal) sessionActionApply(c echo.Context) error {
	t := currentTenant(c)
	ctx := c.Request().Context()
	var err error
	switch c.Param("action") {
	case "reset":
		err = p.sessions.Reset(ctx, t.ID)
	case "logout":
		err = p.sessions.Logout(ctx, t.ID)
	default:
		return echo.NewHTTPError(http.StatusNotFound)
	}
	if err != nil {
		if tenant.ErrorCode(err) == "" {
			return err
		}
		p.flash(c, "error", err.Error())
		return c.Redirect(http.StatusSeeOther, "/app")
	}
	p.flash(c, "ok", loc(c).T("FlashScanNewCode"))
	return c.Redirect(http.StatusSeeOther, "/app/link")
}

func (p *Portal) logsShow(c echo.Context) error {
	t := currentTenant(c)
	q := tenant.MessageQuery{Limit: 50, Before: c.QueryParam("before"), Text: c.QueryParam("q"),
		Direction: c.QueryParam("direction"), Status: tenant.MessageStatus(c.QueryParam("status")), Preview: logPreview}
	msgs, next, err := p.store.Messages(c.Request().Context(), t.ID, q)
	if err != nil {
		return err
	}
	media, err := p.mediaOfMessages(c.Request().Context(), t.ID, msgs)
	if err != nil {
		return err
	}
	filters := url.Values{}
	for name, value := range map[string]string{"q": q.Text, "direction": q.Direction, "status": string(q.Status)} {
		if value != "" {
			filters.Set(name, value)
		}
	}
	v := views.LogsView{
		Chrome: p.chrome(c, loc(c).T("NavMessages"), "logs"), Messages: messageViews(loc(c), msgs, media),
		Query: q.Text, Direction: q.Direction, Status: string(q.Status), Statuses: statusChoices(loc(c)),
		IsFirst: q.Before == "", FirstURL: "/app/logs?" + filters.Encode(),
		BodiesWithheld: t.Status == tenant.StatusPending,
	}
	if next != "" {
		nextPage := maps.Clone(filters)
		nextPage.Set("before", next)
		v.NextURL = "/app/logs?" + nextPage.Encode()
	}
	return Render(c, http.StatusOK, views.LogsPage(v))
}

// logPreview is how many characters of a body a table of messages
// shows; the rest is a click away, on the message's own page.
const logPreview = 500

// messageShow is one message of the log, whole (as stored, so at most
// tenant.MaxBodyBytes).
func (p *Portal) messageShow(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	m, err := p.store.MessageByID(c.Request().Context(), currentTenant(c).ID, id)
	if err != nil {
		return err
	}
	media, err := p.mediaOfMessages(c.Request().Context(), m.TenantID, []tenant.Message{m})
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, views.MessagePage(views.MessagePageView{
		Chrome: p.chrome(c, loc(c).T("ColMessage"), "logs"), Message: messageViews(loc(c), []tenant.Message{m}, media)[0],
	}))
}

func (p *Portal) botShow(c echo.Context) error {
	t := currentTenant(c)
	cfg, err := p.bot.Config(c.Request().Context(), t.ID)
	if err != nil {
		return err
	}
	return p.renderBot(c, http.StatusOK, p.chrome(c, loc(c).T("NavBot"), "bot"), cfg, nil)
}

// renderBot shows the bot form for cfg (as saved, or as sent back) with
// what the form does not carry: whether a model API key is stored, and
// this month's use of the model.
func (p *Portal) renderBot(c echo.Context, status int, ch views.Chrome, cfg tenant.BotConfig, errs map[string]string, more ...func(*views.BotView)) error {
	ctx, tenantID := c.Request().Context(), currentTenant(c).ID
	stored, err := p.bot.Config(ctx, tenantID)
	if err != nil {
		return err
	}
	usage, err := p.store.AIUsageOf(ctx, tenantID, time.Now())
	if err != nil {
		return err
	}
	v := botView(ch, cfg, errs)
	v.AI.HasAPIKey = stored.AI.HasAPIKey
	// A key typed into a form that comes back unsaved is not shown
	// again (the field is a password's): the owner types it anew.
	v.AI.KeyNotSaved = cfg.AI.APIKey != ""
	// The use counts against the budget saved, not one being typed.
	v.AI.Usage = aiUsageView(loc(c), usage, stored.AI.MonthlyTokenBudget)
	if p.cfg.Demo {
		// The demo build serves a fake model (app/demo_fakewa.go).
		v.AI.DemoModelURL = strings.TrimRight(p.cfg.BaseURL.String(), "/") + "/dev/fake/model/v1"
	}
	for _, f := range more {
		f(&v)
	}
	return Render(c, status, views.BotPage(v))
}

// tryModel puts the form's test question to the model as the form has
// it (saved or not) and shows the form again, as typed, with what the
// model made of it. A trial costs tokens: it counts as a save against
// the rate of saves.
func (p *Portal) tryModel(c echo.Context, ch views.Chrome, cfg tenant.BotConfig) error {
	question := c.FormValue("ai_try_question")
	if err := p.allowBotSave(c); err != nil {
		ch.Flash = views.Flash{Kind: "error", Text: errorText(loc(c), err.Error())}
		return p.renderBot(c, http.StatusTooManyRequests, ch, cfg, nil, withTrial(question, nil))
	}
	trial, err := p.bot.TryModel(c.Request().Context(), currentTenant(c).ID, cfg.AI, question)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		return p.renderBot(c, http.StatusUnprocessableEntity, ch, cfg, fieldTexts(loc(c), de.Fields), withTrial(question, nil))
	}
	if err != nil {
		return err
	}
	l := loc(c)
	v := &views.AITrialView{Answer: trial.Answer, HandOver: trial.HandOver, Failure: trial.Failure}
	if trial.Tokens > 0 {
		v.Tokens = l.T("AITrialTokens", "N", l.Int(int(trial.Tokens)))
	}
	return p.renderBot(c, http.StatusOK, ch, cfg, nil, withTrial(question, v))
}

// withTrial shows a test question and what the model made of it.
func withTrial(question string, trial *views.AITrialView) func(*views.BotView) {
	return func(v *views.BotView) { v.AI.TryQuestion, v.AI.Trial = question, trial }
}

// aiUsageView is a month's use of the model as the pages show it.
func aiUsageView(l *views.Locale, u tenant.AIUsage, budget int64) views.AIUsageView {
	v := views.AIUsageView{Month: u.Month, Answers: int(u.Answers), Handovers: int(u.Handovers), Failures: int(u.Failures),
		Tokens: l.T("AITokensNoBudget", "Used", l.Int(int(u.Tokens)))}
	if budget > 0 {
		v.Tokens = l.T("AITokensOfBudget", "Used", l.Int(int(u.Tokens)), "Budget", l.Int(int(budget)))
	}
	if u.LastFailure != "" {
		v.LastFailure, v.LastFailureAt, v.LastFailureISO = u.LastFailure, l.DateTime(u.LastFailureAt), u.LastFailureAt.UTC().Format(time.RFC3339)
	}
	return v
}

// botSave handles every button of the bot form: add, remove and move
// rules (re-rendered, not saved), and save.
func (p *Portal) botSave(c echo.Context) error {
	t := currentTenant(c)
	if err := p.parseBotForm(c); err != nil {
		return err
	}
	cfg := botFromForm(c)
	// Files chosen for rules are stored whatever the button: the form
	// comes back with them attached, so a choice is never lost. A
	// knowledge file replaces the knowledge text the same way.
	errs := p.ruleUploads(c, t.ID, cfg.Rules)
	if msg := knowledgeUpload(c, &cfg.AI); msg != "" {
		if errs == nil {
			errs = map[string]string{}
		}
		errs["ai.knowledge"] = msg
	}
	ch := p.chrome(c, loc(c).T("NavBot"), "bot")
	if len(errs) > 0 {
		return p.renderBot(c, http.StatusUnprocessableEntity, ch, cfg, errs)
	}
	op, arg, _ := strings.Cut(c.FormValue("op"), ":") // "save", "add", "remove:2", "up:1", "down:0"
	index, _ := strconv.Atoi(arg)
	switch op {
	case "add":
		cfg.Rules = append(cfg.Rules, tenant.Rule{Match: tenant.MatchContains})
		return p.renderBot(c, http.StatusOK, ch, cfg, nil)
	case "remove", "up", "down":
		cfg.Rules = moveRule(cfg.Rules, op, index)
		return p.renderBot(c, http.StatusOK, ch, cfg, nil)
	case "try":
		return p.tryModel(c, ch, cfg)
	}
	if err := p.allowBotSave(c); err != nil {
		// The form comes back as it was sent, so nothing typed is lost.
		ch.Flash = views.Flash{Kind: "error", Text: loc(c).T("FlashNotSaved", "Reason", errorText(loc(c), err.Error()))}
		return p.renderBot(c, http.StatusTooManyRequests, ch, cfg, nil)
	}
	saved, err := p.bot.SaveConfig(c.Request().Context(), t.ID, cfg)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		return p.renderBot(c, http.StatusUnprocessableEntity, ch, saved, fieldTexts(loc(c), de.Fields))
	}
	if err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashBotSaved"))
	return c.Redirect(http.StatusSeeOther, "/app/bot")
}

// botSavesPerMinute is how many saves of its bot configuration a tenant
// may make in a minute, through the form and the API together.
const botSavesPerMinute = 10

// allowBotSave counts a save of the tenant's bot configuration and refuses
// one over the budget with 429 and Retry-After.
func (p *Portal) allowBotSave(c echo.Context) error {
	ok, wait := p.botSaves.allow(currentTenant(c).ID)
	if ok {
		return nil
	}
	after := retryAfter(wait)
	c.Response().Header().Set("Retry-After", after)
	return &tenant.Error{Code: tenant.CodeTooMany, Msg: "too many saves of the bot configuration; try again in " + after + " s"}
}

// moveRule removes rule i or swaps it with its neighbour; op is "remove",
// "up" or "down".
func moveRule(rules []tenant.Rule, op string, i int) []tenant.Rule {
	if i < 0 || i >= len(rules) {
		return rules
	}
	switch op {
	case "remove":
		return append(rules[:i], rules[i+1:]...)
	case "up":
		if i > 0 {
			rules[i-1], rules[i] = rules[i], rules[i-1]
		}
	case "down":
		if i < len(rules)-1 {
			rules[i+1], rules[i] = rules[i], rules[i+1]
		}
	}
	return rules
}

func botFromForm(c echo.Context) tenant.BotConfig {
	atoi := func(name string) int { n, _ := strconv.Atoi(strings.TrimSpace(c.FormValue(name))); return n }
	cfg := tenant.BotConfig{
		Enabled:       c.FormValue("enabled") != "",
		ReplyInGroups: c.FormValue("reply_in_groups") != "",
		ReadReceipts:  c.FormValue("read_receipts") != "",
		WelcomeReply:  c.FormValue("welcome_reply"),
		FallbackReply: c.FormValue("fallback_reply"),
		BusyReply:     c.FormValue("busy_reply"),
		Webhook:       tenant.Webhook{URL: c.FormValue("webhook_url"), Secret: c.FormValue("webhook_secret")},
		Limits: tenant.Limits{QueuePerChat: atoi("queue_per_chat"), PerChatPerMinute: atoi("per_chat_per_minute"),
			PerTenantPerMinute: atoi("per_tenant_per_minute")},
		Handover: tenant.Handover{Keywords: strings.Split(c.FormValue("handover_keywords"), ","), Reply: c.FormValue("handover_reply")},
	}
	if v := strings.TrimSpace(c.FormValue("handover_resume_after_minutes")); v != "" {
		// Not a number is out of range, shown beside the field; left
		// empty it is the default.
		if n, err := strconv.Atoi(v); err == nil {
			cfg.Handover.ResumeAfterMinutes = n
		} else {
			cfg.Handover.ResumeAfterMinutes = -1
		}
	}
	cfg.AI = aiFromForm(c)
	n := min(atoi("rule_count"), tenant.MaxRules+1)
	cfg.Rules = []tenant.Rule{}
	for i := range n {
		prefix := "rules[" + strconv.Itoa(i) + "]."
		r := tenant.Rule{Kind: c.FormValue(prefix + "kind"), Match: c.FormValue(prefix + "match"), Pattern: c.FormValue(prefix + "pattern"), Reply: c.FormValue(prefix + "reply")}
		if id := c.FormValue(prefix + "attachment_id"); id != "" && c.FormValue(prefix+"attachment_remove") == "" {
			r.Attachment = &tenant.RuleAttachment{UploadID: id, Kind: tenant.MediaKind(c.FormValue(prefix + "attachment_kind")),
				FileName: c.FormValue(prefix + "attachment_name")}
		}
		cfg.Rules = append(cfg.Rules, r)
	}
	return cfg
}

// aiFromForm reads the bot form's AI answers section. A number field
// left empty takes its default (none, for the budget and the daily
// limit); one that is not a number is out of range, so it is refused
// beside its field instead of silently becoming something else.
func aiFromForm(c echo.Context) tenant.AI {
	def := tenant.DefaultBotConfig().AI
	number := func(name string, empty int64) int64 {
		v := strings.TrimSpace(c.FormValue(name))
		if v == "" {
			return empty
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	a := tenant.AI{
		Enabled: c.FormValue("ai_enabled") != "", BaseURL: c.FormValue("ai_base_url"), Model: c.FormValue("ai_model"),
		APIKey: c.FormValue("ai_api_key"), ClearAPIKey: c.FormValue("ai_clear_api_key") != "",
		SystemPrompt: c.FormValue("ai_system_prompt"), Knowledge: c.FormValue("ai_knowledge"),
		Temperature:          def.Temperature,
		MaxAnswerChars:       int(number("ai_max_answer_chars", int64(def.MaxAnswerChars))),
		HistoryMessages:      int(number("ai_history_messages", int64(def.HistoryMessages))),
		TimeoutSeconds:       int(number("ai_timeout_seconds", int64(def.TimeoutSeconds))),
		MonthlyTokenBudget:   number("ai_monthly_token_budget", 0),
		AnswersPerChatPerDay: int(number("ai_answers_per_chat_per_day", 0)),
		OnFailure:            c.FormValue("ai_on_failure"),
	}
	if v := strings.TrimSpace(c.FormValue("ai_temperature")); v != "" {
		// A decimal comma, as several of the portal's languages write it.
		t, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
		if err != nil {
			t = -1
		}
		a.Temperature = t
	}
	return a
}

// knowledgeExts are the files the knowledge text may be uploaded from:
// plain text the model can read as it is.
var knowledgeExts = []string{".txt", ".md", ".markdown", ".csv"}

// knowledgeUpload puts a knowledge file chosen on the bot form
// (ai_knowledge_file) in place of the knowledge text. It returns the
// field's error, in the reader's language, when the file is not plain
// UTF-8 text of an accepted kind or is over the cap; the text typed then
// stays as it was.
func knowledgeUpload(c echo.Context, a *tenant.AI) string {
	form := c.Request().MultipartForm
	if form == nil || len(form.File["ai_knowledge_file"]) == 0 || form.File["ai_knowledge_file"][0].Size == 0 {
		return ""
	}
	fh := form.File["ai_knowledge_file"][0]
	l := loc(c)
	if !slices.Contains(knowledgeExts, strings.ToLower(path.Ext(fh.Filename))) {
		return l.T("AIKnowledgeFileKind")
	}
	if fh.Size > tenant.MaxKnowledgeBytes {
		return l.T("AIKnowledgeFileTooBig", "Size", l.Int(int((fh.Size+1023)/1024)), "Max", l.Int(tenant.MaxKnowledgeBytes>>10))
	}
	f, err := fh.Open()
	if err != nil {
		return l.T("ErrFileUnreadable")
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, tenant.MaxKnowledgeBytes+1))
	switch {
	case err != nil:
		return l.T("ErrFileUnreadable")
	case len(raw) > tenant.MaxKnowledgeBytes:
		return l.T("AIKnowledgeFileTooBig", "Size", l.Int(int((fh.Size+1023)/1024)), "Max", l.Int(tenant.MaxKnowledgeBytes>>10))
	case !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0:
		return l.T("AIKnowledgeFileNotText")
	}
	// A byte order mark is no part of the text.
	a.Knowledge = strings.TrimPrefix(string(raw), "\uFEFF")
	return ""
}

// parseBotForm reads the bot form: multipart when it carries files (up
// to the largest file's cap, parts past 1 MB spooled to disk and removed
// by the server after the request), else url-encoded within 1 MB.
func (p *Portal) parseBotForm(c echo.Context) error {
	req := c.Request()
	limit := int64(1 << 20)
	multipart := strings.HasPrefix(strings.ToLower(req.Header.Get(echo.HeaderContentType)), "multipart/form-data")
	if multipart && p.cfg.Media != nil {
		limit = largestFile(p.cfg.Media.Limits()) + multipartSlack
	}
	allowUpload(c, limit)
	var err error
	if multipart {
		err = req.ParseMultipartForm(1 << 20)
	} else {
		err = req.ParseForm()
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, loc(c).T("ErrFormTooLarge"))
	}
	return echo.NewHTTPError(http.StatusBadRequest, loc(c).T("ErrFormUnreadable"))
}

// ruleUploads stores the files chosen for rules (rules[i].attachment_file)
// as the tenant's uploads and attaches each to its rule; saving the
// configuration then pins them. It returns field errors (a file over its
// cap, a full quota) by rule.
func (p *Portal) ruleUploads(c echo.Context, tenantID string, rules []tenant.Rule) map[string]string {
	form := c.Request().MultipartForm
	if form == nil {
		return nil
	}
	errs := map[string]string{}
	for i := range rules {
		key := "rules[" + strconv.Itoa(i) + "].attachment"
		files := form.File[key+"_file"]
		if len(files) == 0 || files[0].Size == 0 {
			continue
		}
		if p.cfg.Media == nil {
			errs[key] = loc(c).T("ErrNoMediaStore")
			continue
		}
		fh := files[0]
		f, err := fh.Open()
		if err != nil {
			errs[key] = loc(c).T("ErrFileUnreadable")
			continue
		}
		stored, kind, err := p.cfg.Media.PutUpload(c.Request().Context(), tenantID, "", fh.Header.Get("Content-Type"), fh.Size, f)
		f.Close()
		var de *tenant.Error
		switch {
		case errors.As(err, &de):
			errs[key] = de.Msg
			continue
		case err != nil:
			p.log.Error("storing a rule's attachment", "tenant", tenantID, "err", err)
			errs[key] = loc(c).T("ErrFileNotStored")
			continue
		}
		rules[i].Attachment = &tenant.RuleAttachment{UploadID: stored.SHA256, Kind: kind, FileName: fh.Filename}
	}
	return errs
}

func botView(ch views.Chrome, cfg tenant.BotConfig, errs map[string]string) views.BotView {
	v := views.BotView{
		Chrome: ch, Enabled: cfg.Enabled, ReplyInGroups: cfg.ReplyInGroups, ReadReceipts: cfg.ReadReceipts,
		WelcomeReply: cfg.WelcomeReply, FallbackReply: cfg.FallbackReply, BusyReply: cfg.BusyReply,
		WebhookURL: cfg.Webhook.URL, WebhookSecret: cfg.Webhook.Secret,
		QueuePerChat: cfg.Limits.QueuePerChat, PerChatPerMinute: cfg.Limits.PerChatPerMinute, PerTenantPerMinute: cfg.Limits.PerTenantPerMinute,
		HandoverKeywords: strings.Join(cfg.Handover.Keywords, ", "), HandoverReply: cfg.Handover.Reply,
		HandoverResumeMinutes: cfg.Handover.ResumeAfterMinutes,
		Errors:                errs,
	}
	a := cfg.AI
	v.AI = views.AIForm{Enabled: a.Enabled, BaseURL: a.BaseURL, Model: a.Model, ClearKey: a.ClearAPIKey,
		SystemPrompt: a.SystemPrompt, Knowledge: a.Knowledge, Temperature: strconv.FormatFloat(a.Temperature, 'f', -1, 64),
		MaxAnswerChars: strconv.Itoa(a.MaxAnswerChars), HistoryMessages: strconv.Itoa(a.HistoryMessages),
		TimeoutSeconds: strconv.Itoa(a.TimeoutSeconds), MonthlyTokenBudget: strconv.FormatInt(a.MonthlyTokenBudget, 10),
		AnswersPerChatPerDay: strconv.Itoa(a.AnswersPerChatPerDay), OnFailure: a.OnFailure}
	if v.HandoverResumeMinutes == 0 {
		v.HandoverResumeMinutes = cfg.Handover.ResumeAfter()
	}
	for _, r := range cfg.Rules {
		rf := views.RuleForm{Kind: r.Kind, Match: r.Match, Pattern: r.Pattern, Reply: r.Reply}
		if a := r.Attachment; a != nil {
			rf.AttachmentID, rf.AttachmentKind, rf.AttachmentName = a.UploadID, string(a.Kind), a.FileName
		}
		v.Rules = append(v.Rules, rf)
	}
	return v
}
