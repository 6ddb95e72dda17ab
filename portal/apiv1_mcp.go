package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"wabot/tenant"
)

// POST /api/v1/mcp speaks the Model Context Protocol (streamable HTTP) so
// an AI agent can use the workspace through its API key: the route sits
// behind requireAPIKey like every /api/v1 route (same key, same rate
// limit, cookies ignored), and each tool checks the key's scope itself,
// answering a missing scope with a tool error the agent can read.
//
// The server is stateless: no Mcp-Session-Id is kept, each HTTP request
// is a session of its own, so any instance behind a load balancer answers
// any request without stickiness, and a revoked key stops working on its
// next request. Stateless MCP gives up server-to-client requests and
// notifications outside a call, which these tools do not need. Answers are
// plain JSON rather than an event stream: every tool answers at once.

// newMCPHandler builds the MCP server and its HTTP handler once. The key
// requireAPIKey authenticated reaches the tools per request as the SDK's
// TokenInfo (CallToolRequest.Extra.TokenInfo).
func (p *Portal) newMCPHandler() http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "wabot", Title: "wabot WhatsApp workspace", Version: "1"}, &mcp.ServerOptions{
		Instructions: "Tools for one WhatsApp workspace: its chats, its messages, sending, number checks and the link's state. " +
			"Numbers are in international format (+15551234567); chats are WhatsApp ids (15551234567@s.whatsapp.net, 120363000000000000@g.us). " +
			"A tool the API key's scopes do not allow answers with a forbidden error.",
	})
	t := mcpTools{p: p}
	mcp.AddTool(s, &mcp.Tool{Name: "list_chats", Title: "List chats",
		Description: "The workspace's chats, most recently active first, each with its last message and counts. Scope messages:read.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, t.listChats)
	mcp.AddTool(s, &mcp.Tool{Name: "read_chat", Title: "Read a chat",
		Description: "The messages of one chat, newest first, in both directions, with their delivery status. Scope messages:read.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, t.readChat)
	mcp.AddTool(s, &mcp.Tool{Name: "get_message", Title: "Get a message",
		Description: "One message by its id, for example to follow a sent message from queued to sent, delivered and read. Scope messages:read.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, t.getMessage)
	mcp.AddTool(s, &mcp.Tool{Name: "send_message", Title: "Send a message",
		Description: "Queues a WhatsApp text message to a number or chat and answers with it as queued; it goes out through the workspace's session " +
			"(get_message follows it). Give an idempotency_key when retrying, so the message is not sent twice. Scope messages:send.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: new(false), OpenWorldHint: new(true)}}, t.sendMessage)
	mcp.AddTool(s, &mcp.Tool{Name: "check_numbers", Title: "Check numbers",
		Description: "Asks WhatsApp which of 1 to 50 phone numbers have an account, and the chat id to send to. Needs the session connected. Scope messages:read.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(true)}}, t.checkNumbers)
	mcp.AddTool(s, &mcp.Tool{Name: "get_session", Title: "Get the session state",
		Description: "The state of the workspace's WhatsApp link (CONNECTED, QR_READY, LOGGED_OUT...), its number and its last error. Scope session:manage.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, t.getSession)

	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Stateless:    true,
		JSONResponse: true,
		// The SDK refuses a loopback connection whose Host is not loopback,
		// against DNS rebinding of a local server with ambient authority.
		// Here authority is the bearer key, which a rebound page does not
		// have, and a reverse proxy on the same machine sends the public
		// Host: the check would only refuse the proxy.
		DisableLocalhostProtection: true,
		Logger:                     p.log,
	})
	// The SDK's way into RequestExtra.TokenInfo: its bearer middleware,
	// here handing on the key requireAPIKey already checked.
	return auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		k, ok := ctx.Value(mcpKeyCtx{}).(tenant.APIKey)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: k.ID, Extra: map[string]any{mcpKeyExtra: k}}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
}

type mcpKeyCtx struct{}

const mcpKeyExtra = "wabot.apikey"

// apiV1MCP serves one MCP request made with the request's key.
func (p *Portal) apiV1MCP(c echo.Context) error {
	r := c.Request()
	c.Response().Header().Set("Cache-Control", "no-store")
	p.mcp.ServeHTTP(c.Response(), r.WithContext(context.WithValue(r.Context(), mcpKeyCtx{}, apiKeyOf(c))))
	return nil
}

// mcpTools are the tool handlers.
type mcpTools struct{ p *Portal }

// allow is requireScope for a tool: the request's key holds scope, and a
// workspace scope needs a workspace's key. It answers with the workspace.
func (t mcpTools) allow(req *mcp.CallToolRequest, scope tenant.Scope) (string, error) {
	var k tenant.APIKey
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		k, _ = req.Extra.TokenInfo.Extra[mcpKeyExtra].(tenant.APIKey)
	}
	if !k.Has(scope) || k.TenantID == "" {
		return "", mcpError(t.p, newAPIError(http.StatusForbidden, "forbidden", "this API key does not hold the "+string(scope)+" scope"))
	}
	return k.TenantID, nil
}

// mcpPageIn pages a list; the store checks the limit (0 is its default).
type mcpPageIn struct {
	Limit  int    `json:"limit,omitempty" jsonschema:"how many to return, 1 to 200 (default 50)"`
	Cursor string `json:"cursor,omitempty" jsonschema:"the next value of the previous page, to read on"`
}

func (t mcpTools) listChats(ctx context.Context, req *mcp.CallToolRequest, in mcpPageIn) (*mcp.CallToolResult, chatsV1, error) {
	tid, err := t.allow(req, tenant.ScopeMessagesRead)
	if err != nil {
		return nil, chatsV1{}, err
	}
	chats, next, err := t.p.bot.Chats(ctx, tid, in.Cursor, in.Limit)
	if err != nil {
		return nil, chatsV1{}, mcpError(t.p, err)
	}
	return nil, chatsV1Of(chats, next), nil
}

type mcpReadChatIn struct {
	Chat string `json:"chat" jsonschema:"the chat id (15551234567@s.whatsapp.net, 120363000000000000@g.us) or a number in international format (+15551234567)"`
	mcpPageIn
}

func (t mcpTools) readChat(ctx context.Context, req *mcp.CallToolRequest, in mcpReadChatIn) (*mcp.CallToolResult, messagesV1, error) {
	tid, err := t.allow(req, tenant.ScopeMessagesRead)
	if err != nil {
		return nil, messagesV1{}, err
	}
	chat, _, err := tenant.ValidateSend(tenant.SendRequest{To: in.Chat, Text: "-"})
	if err != nil {
		return nil, messagesV1{}, mcpError(t.p, &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Msg: "the chat is not valid",
			Fields: map[string]string{"chat": "Use a chat id (15551234567@s.whatsapp.net, 120363000000000000@g.us) or a number in international format (+15551234567)."}})
	}
	ms, next, err := t.p.bot.Messages(ctx, tid, tenant.APIMessageQuery{Chat: chat, Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, messagesV1{}, mcpError(t.p, err)
	}
	out := messagesV1{Messages: make([]messageV1, 0, len(ms)), Next: nullIfEmpty(next)}
	for _, m := range ms {
		out.Messages = append(out.Messages, messageV1Of(m))
	}
	if err := t.p.withMedia(ctx, tid, out.Messages); err != nil {
		return nil, messagesV1{}, mcpError(t.p, err)
	}
	return nil, out, nil
}

type mcpMessageIn struct {
	ID int64 `json:"id" jsonschema:"the message's id, as send_message, read_chat or list_chats gave it"`
}

func (t mcpTools) getMessage(ctx context.Context, req *mcp.CallToolRequest, in mcpMessageIn) (*mcp.CallToolResult, messageV1, error) {
	tid, err := t.allow(req, tenant.ScopeMessagesRead)
	if err != nil {
		return nil, messageV1{}, err
	}
	m, err := t.p.bot.Message(ctx, tid, in.ID)
	if errors.Is(err, tenant.ErrNotFound) || in.ID <= 0 {
		return nil, messageV1{}, mcpError(t.p, newAPIError(http.StatusNotFound, "not_found", "there is no message with this id"))
	}
	if err != nil {
		return nil, messageV1{}, mcpError(t.p, err)
	}
	out := []messageV1{messageV1Of(m)}
	if err := t.p.withMedia(ctx, tid, out); err != nil {
		return nil, messageV1{}, mcpError(t.p, err)
	}
	return nil, out[0], nil
}

type mcpSendIn struct {
	To             string `json:"to" jsonschema:"a number in international format (+15551234567) or a chat id (15551234567@s.whatsapp.net, 120363000000000000@g.us)"`
	Text           string `json:"text" jsonschema:"the message text (WhatsApp formatting such as *bold* works)"`
	ReplyTo        int64  `json:"reply_to,omitempty" jsonschema:"the id of a message in the same chat to quote"`
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"up to 255 characters; the same key within 24 hours answers with the first message and sends nothing again"`
}

func (t mcpTools) sendMessage(ctx context.Context, req *mcp.CallToolRequest, in mcpSendIn) (*mcp.CallToolResult, messageV1, error) {
	tid, err := t.allow(req, tenant.ScopeMessagesSend)
	if err != nil {
		return nil, messageV1{}, err
	}
	// The API's own send path: validated, stored as queued, then sent by
	// the bot's durable sender with pacing, retries and receipts.
	m, _, err := t.p.bot.Send(ctx, tid, tenant.SendRequest{To: in.To, Text: in.Text, ReplyTo: in.ReplyTo, IdempotencyKey: in.IdempotencyKey})
	if err != nil {
		return nil, messageV1{}, mcpError(t.p, err)
	}
	return nil, messageV1Of(m), nil
}

type mcpCheckIn struct {
	Phones []string `json:"phones" jsonschema:"1 to 50 phone numbers in international format (+15551234567)"`
}

func (t mcpTools) checkNumbers(ctx context.Context, req *mcp.CallToolRequest, in mcpCheckIn) (*mcp.CallToolResult, contactsV1, error) {
	tid, err := t.allow(req, tenant.ScopeMessagesRead)
	if err != nil {
		return nil, contactsV1{}, err
	}
	out, err := t.p.checkContactsV1(ctx, tid, in.Phones)
	if err != nil {
		return nil, contactsV1{}, mcpError(t.p, err)
	}
	return nil, out, nil
}

func (t mcpTools) getSession(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, sessionV1, error) {
	tid, err := t.allow(req, tenant.ScopeSessionManage)
	if err != nil {
		return nil, sessionV1{}, err
	}
	l, err := t.p.store.LinkOf(ctx, tid)
	if err != nil {
		return nil, sessionV1{}, mcpError(t.p, err)
	}
	return nil, sessionV1Of(l), nil
}

// mcpToolError is a tool's failure as the agent reads it: the text is
// /api/v1's error body, {"error":{"code":...,"message":...,"fields":...}}.
type mcpToolError struct{ body apiV1ErrorBody }

func (e *mcpToolError) Error() string {
	raw, _ := json.Marshal(e.body)
	return string(raw)
}

// mcpError turns err into the tool error /api/v1 would have answered
// with: the same codes and sentences, internal detail logged and hidden.
func mcpError(p *Portal, err error) error {
	code, msg, fields := "internal", "internal error: it has been logged; try again later", map[string]string(nil)
	var ae *apiError
	var de *tenant.Error
	switch {
	case errors.As(err, &ae):
		code, msg, fields = ae.Code, ae.Msg, ae.Fields
	case errors.As(err, &de) && apiCodeOf[de.Code] != "" && (statusOf[de.Code] < 500 || de.Code == tenant.CodeUnavailable || de.Code == tenant.CodeQuotaExceeded):
		code, msg, fields = apiCodeOf[de.Code], de.Msg, de.Fields
	case errors.Is(err, context.Canceled):
		code, msg = "unavailable", "the request was canceled"
	default:
		p.log.Error("MCP tool failed", "err", err)
	}
	if code != "validation_failed" {
		fields = nil
	}
	return &mcpToolError{body: apiV1ErrorBody{Error: apiV1ErrorJSON{Code: code, Message: sentence(msg), Fields: fields}}}
}
