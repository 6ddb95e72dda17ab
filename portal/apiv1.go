package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
)

// The versioned API under /api/v1: programs authenticate with an API key
// (Authorization: Bearer wabot_...), never with the portal's cookie, so
// no cross-site request can act through a signed-in browser. Every error
// has one shape:
//
//	{"error":{"code":"not_found","message":"A sentence.","fields":{"name":"A sentence."}}}
//
// with fields only on 422 validation_failed.

const ctxAPIKey = "wabot.apikey"

// apiV1Prefix is where the versioned API lives.
const apiV1Prefix = "/api/v1"

// DefaultAPIRatePerMinute is each key's budget of requests a minute when
// the configuration sets none.
const DefaultAPIRatePerMinute = 120

// apiV1Routes lists every route of /api/v1. Other areas (messages,
// webhooks) add theirs here, one line each, behind p.requireScope.
func (p *Portal) apiV1Routes(g *echo.Group) {
	g.GET("/openapi.json", p.openAPIShow) // public: the contract itself

	k := g.Group("", p.requireAPIKey)
	k.GET("/session", p.apiV1SessionShow, p.requireScope(tenant.ScopeSessionManage))
	k.POST("/session/link", p.apiV1LinkNew, p.requireScope(tenant.ScopeSessionManage))
	k.POST("/session/link/phone", p.apiV1LinkPhoneNew, p.requireScope(tenant.ScopeSessionManage))
	k.POST("/session/logout", p.apiV1SessionLogout, p.requireScope(tenant.ScopeSessionManage))
	k.POST("/session/reset", p.apiV1SessionReset, p.requireScope(tenant.ScopeSessionManage))
	k.POST("/session/restart", p.apiV1SessionRestart, p.requireScope(tenant.ScopeSessionManage))
	k.GET("/bot", p.apiV1BotShow, p.requireScope(tenant.ScopeBotManage))
	k.PUT("/bot", p.apiV1BotSave, p.requireScope(tenant.ScopeBotManage))
	k.GET("/bot/usage", p.apiV1BotUsageShow, p.requireScope(tenant.ScopeBotManage))
	k.POST("/messages", p.apiV1MessageSend, p.requireScope(tenant.ScopeMessagesSend))
	k.POST("/media", p.apiV1MediaCreate, p.requireScope(tenant.ScopeMessagesSend)) // apiv1_media.go
	k.GET("/messages", p.apiV1MessagesShow, p.requireScope(tenant.ScopeMessagesRead))
	k.GET("/messages/:id", p.apiV1MessageShow, p.requireScope(tenant.ScopeMessagesRead))
	k.GET("/messages/:id/media", p.apiV1MessageMediaShow, p.requireScope(tenant.ScopeMessagesRead))
	k.GET("/chats", p.apiV1ChatsShow, p.requireScope(tenant.ScopeMessagesRead))
	k.POST("/contacts/check", p.apiV1ContactsCheck, p.requireScope(tenant.ScopeMessagesRead))
	// apiv1_mcp.go: each MCP tool checks its own scope.
	k.POST("/mcp", p.apiV1MCP)
	p.apiV1WebhookRoutes(k.Group("/webhooks", p.requireScope(tenant.ScopeBotManage))) // apiv1_webhooks.go

	admin := k.Group("/admin", p.requireScope(tenant.ScopeAdmin))
	admin.GET("/tenants", p.apiV1AdminTenantsShow)
	admin.POST("/tenants", p.apiV1AdminTenantCreate)
	admin.POST("/tenants/:id/approve", p.apiV1AdminTenantAction(tenant.ActionApprove))
	admin.POST("/tenants/:id/suspend", p.apiV1AdminTenantAction(tenant.ActionSuspend))
	admin.POST("/tenants/:id/resume", p.apiV1AdminTenantAction(tenant.ActionResume))
	admin.POST("/tenants/:id/link", p.apiV1AdminTenantLink)
	admin.GET("/tenants/:id/session", p.apiV1AdminTenantSessionShow)
}

// apiError is an /api/v1 error with its own stable code, for the cases a
// tenant.Error's code does not name (not_on_whatsapp,
// session_not_connected, ...). Return one from a handler.
type apiError struct {
	Status int
	Code   string
	Msg    string
	Fields map[string]string
}

func (e *apiError) Error() string { return e.Msg }

// newAPIError returns an /api/v1 error: status, a stable snake_case code
// and a sentence for the caller.
func newAPIError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Msg: msg}
}

// apiCodeOf maps a domain error's code to the API's.
var apiCodeOf = map[tenant.Code]string{
	tenant.CodeInvalid:       "validation_failed",
	tenant.CodeBadRequest:    "bad_request",
	tenant.CodeNotFound:      "not_found",
	tenant.CodeConflict:      "conflict",
	tenant.CodeUnauthorized:  "unauthorized",
	tenant.CodeForbidden:     "forbidden",
	tenant.CodeUnavailable:   "unavailable",
	tenant.CodeTooMany:       "rate_limited",
	tenant.CodeTooLarge:      "too_large",
	tenant.CodeQuotaExceeded: "quota_exceeded",
}

// apiCodeOfStatus names the errors Echo raises itself (no route, wrong
// method, body too large).
var apiCodeOfStatus = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "validation_failed",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusInsufficientStorage:   "quota_exceeded",
}

func isAPIV1Path(path string) bool {
	return path == apiV1Prefix || strings.HasPrefix(path, apiV1Prefix+"/")
}

// apiV1ErrorBody is the one error shape of /api/v1.
type apiV1ErrorBody struct {
	Error apiV1ErrorJSON `json:"error"`
}

type apiV1ErrorJSON struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// renderAPIV1Error writes err in /api/v1's shape. status, msg and fields
// are what the error handler made of it (internal detail already hidden).
func renderAPIV1Error(c echo.Context, err error, status int, msg string, fields map[string]string) {
	code := apiCodeOfStatus[status]
	var ae *apiError
	var de *tenant.Error
	switch {
	case errors.As(err, &ae):
		status, code, msg, fields = ae.Status, ae.Code, ae.Msg, ae.Fields
	case errors.As(err, &de) && status < 500:
		code = apiCodeOf[de.Code]
	}
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusInsufficientStorage {
		code, msg = "internal", "internal error: it has been logged; try again later"
	}
	if code == "" {
		code = "error"
	}
	if status != http.StatusUnprocessableEntity {
		fields = nil
	} else if c.Request().Header.Get("Accept-Language") != "" {
		// A client that asks for a language gets the sentences in it;
		// the codes and field names stay as they are.
		l := loc(c)
		msg, fields = apiMessage(l, msg), fieldTexts(l, fields)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="wabot"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, apiV1ErrorBody{Error: apiV1ErrorJSON{Code: code, Message: sentence(msg), Fields: fields}})
}

// sentence starts msg with a capital and ends it with a full stop.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") && !strings.HasSuffix(msg, "!") && !strings.HasSuffix(msg, "।") {
		msg += "."
	}
	return msg
}

var (
	errNoAPIKey = newAPIError(http.StatusUnauthorized, "unauthorized",
		"send an API key as Authorization: Bearer wabot_...; create one on the portal under Settings → API keys")
	errAPIKeyInvalid = newAPIError(http.StatusUnauthorized, "unauthorized", "the API key is unknown or revoked")
)

// requireAPIKey authenticates the request by its bearer key, counts it
// against the key's rate limit and, for a workspace's key, loads the
// workspace. The portal's cookie is ignored here: a browser session
// never authenticates under /api/v1.
func (p *Portal) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(ctxUser, nil) // loadUser ran for every route; nothing here may use it
		auth := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, secret, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			return errNoAPIKey
		}
		ctx := c.Request().Context()
		k, err := p.store.AuthenticateAPIKey(ctx, strings.TrimSpace(secret))
		if tenant.ErrorCode(err) == tenant.CodeUnauthorized {
			return errAPIKeyInvalid
		}
		if err != nil {
			return err
		}
		if ok, wait := p.apiRate.allow(k.ID); !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			return newAPIError(http.StatusTooManyRequests, "rate_limited",
				fmt.Sprintf("this key made more than %d requests in a minute; try again in %s s", p.apiRate.max(), retryAfter(wait)))
		}
		c.Set(ctxAPIKey, k)
		if k.TenantID != "" {
			t, err := p.store.TenantByID(ctx, k.TenantID)
			if errors.Is(err, tenant.ErrNotFound) {
				return errAPIKeyInvalid
			}
			if err != nil {
				return err
			}
			if t.Status == tenant.StatusSuspended {
				return newAPIError(http.StatusForbidden, "forbidden", "this workspace is suspended; ask the operator")
			}
			c.Set(ctxTenant, t)
		}
		return next(c)
	}
}

// requireScope refuses a key that does not hold scope with 403. Workspace
// scopes also need a workspace's key: an instance key holds only admin.
func (p *Portal) requireScope(scope tenant.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			k := apiKeyOf(c)
			if !k.Has(scope) || (scope != tenant.ScopeAdmin && k.TenantID == "") {
				return newAPIError(http.StatusForbidden, "forbidden", "this API key does not hold the "+string(scope)+" scope")
			}
			return next(c)
		}
	}
}

// apiKeyOf is the request's API key (under requireAPIKey).
func apiKeyOf(c echo.Context) tenant.APIKey {
	k, _ := c.Get(ctxAPIKey).(tenant.APIKey)
	return k
}

// apiTenantID is the workspace whose key made the request: every
// workspace-scoped handler takes the tenant from here, never from the
// request's path or body.
func apiTenantID(c echo.Context) string { return apiKeyOf(c).TenantID }

// decodeAPIV1JSON reads exactly one JSON object into v. Unknown fields and
// values of the wrong type are 422 validation_failed with the field named;
// a body that is not JSON is 400 bad_request.
func decodeAPIV1JSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return newAPIError(http.StatusBadRequest, "bad_request", "the body must hold one JSON object and nothing after it")
		}
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return newAPIError(http.StatusBadRequest, "bad_request", "the body is empty; send a JSON object")
	case errors.As(err, &tooLarge):
		return newAPIError(http.StatusRequestEntityTooLarge, "too_large", "the body is too large")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "a field has the wrong type",
			Fields: map[string]string{typeErr.Field: "Must be " + jsonKind(typeErr.Type.Kind().String()) + ", not " + typeErr.Value + "."}}
	case errors.As(err, &typeErr):
		return newAPIError(http.StatusBadRequest, "bad_request", "the body must be a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return newAPIError(http.StatusBadRequest, "bad_request", "the body is not valid JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, err := strconv.Unquote(name); err == nil {
			name = unq
		}
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "the body has a field this API does not know",
			Fields: map[string]string{name: "Unknown field: leave it out."}}
	}
	return newAPIError(http.StatusBadRequest, "bad_request", "the body cannot be read as the expected JSON")
}

// jsonKind names a Go kind as JSON calls it.
func jsonKind(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return "another type"
}
