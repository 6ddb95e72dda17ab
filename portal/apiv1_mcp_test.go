package portal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"wabot/tenant"
)

// mcpConnect is an AI agent's MCP client from the SDK, speaking
// streamable HTTP to /api/v1/mcp with key as its bearer token, as a
// client configured with an Authorization header does.
func mcpConnect(t *testing.T, e *env, key string) (*mcp.ClientSession, error) {
	t.Helper()
	base := e.google.transport()
	hc := &http.Client{Timeout: 60 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		return base.RoundTrip(r)
	})}
	client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: e.url + "/api/v1/mcp", HTTPClient: hc, MaxRetries: -1}, nil)
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// mcpCall calls a tool and answers with its structured result, or with
// the error body of a failed tool ({"error":{"code":...}}).
func mcpCall(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (ok bool, out map[string]any) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d content blocks, want the JSON text", name, len(res.Content))
	}
	text, _ := res.Content[0].(*mcp.TextContent)
	if text == nil || json.Unmarshal([]byte(text.Text), &out) != nil {
		t.Fatalf("%s: content is not JSON text: %#v", name, res.Content[0])
	}
	if !res.IsError {
		// The structured result and the text are the same JSON.
		raw, _ := json.Marshal(res.StructuredContent)
		var structured map[string]any
		if err := json.Unmarshal(raw, &structured); err != nil || !jsonEqual(structured, out) {
			t.Fatalf("%s: structured %s differs from text %s", name, raw, text.Text)
		}
	}
	return !res.IsError, out
}

func jsonEqual(a, b any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return string(ra) == string(rb)
}

// mcpRefused fails unless the tool failed with code, and answers its message.
func mcpRefused(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any, code string) string {
	t.Helper()
	ok, out := mcpCall(t, cs, name, args)
	e, _ := out["error"].(map[string]any)
	if ok || e == nil || e["code"] != code {
		t.Fatalf("%s: %v, want a tool error %s", name, out, code)
	}
	return e["message"].(string)
}

// TestMCPAgentTools: an MCP client from the SDK, with a workspace's key,
// lists the tools, sends a message the fake WhatsApp contact decrypts,
// reads it back in the chat, checks numbers and reads the link's state,
// all as the fake says. A key holding only messages:read sees the same
// tools but is refused send_message and get_session, and nothing goes
// out; another workspace's key sees nothing of this one; no key is 401.
func TestMCPAgentTools(t *testing.T) {
	e := sendEnv(t, nil)
	api, phone := linkedAPI(t, e, "agent@example.com", "Agent Shop")
	dora := phone.NewContact("", "Dora")
	doraPhone := "+" + dora.JID().User

	agent, err := mcpConnect(t, e, api.key)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := agent.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		if tool.Description == "" {
			t.Errorf("tool %s has no description", tool.Name)
		}
		if tool.Name == "send_message" {
			var schema struct {
				Required   []string `json:"required"`
				Properties map[string]struct {
					Description string `json:"description"`
				} `json:"properties"`
			}
			raw, _ := json.Marshal(tool.InputSchema)
			if err := json.Unmarshal(raw, &schema); err != nil || !slices.Contains(schema.Required, "to") || !slices.Contains(schema.Required, "text") ||
				schema.Properties["to"].Description == "" || schema.Properties["idempotency_key"].Description == "" {
				t.Errorf("send_message's input schema %s", raw)
			}
		}
	}
	slices.Sort(names)
	if want := []string{"check_numbers", "get_message", "get_session", "list_chats", "read_chat", "send_message"}; !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	ok, sent := mcpCall(t, agent, "send_message", map[string]any{"to": doraPhone, "text": "Your table for two is booked for 8 pm."})
	if !ok || sent["status"] != "queued" || sent["chat"] != dora.JID().String() || sent["source"] != "api" || sent["wa_id"] == nil {
		t.Fatalf("send_message: %v", sent)
	}
	got, err := dora.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "Your table for two is booked for 8 pm." || got.ID != sent["wa_id"] {
		t.Fatalf("Dora decrypted %q (id %s), want the message %v", got.Text, got.ID, sent["wa_id"])
	}
	waitAPI(t, api, msgPath(sent), func(m map[string]any) bool { return m["status"] == "delivered" })
	if ok, m := mcpCall(t, agent, "get_message", map[string]any{"id": sent["id"]}); !ok || m["status"] != "delivered" || m["delivered_at"] == nil {
		t.Fatalf("get_message: %v", m)
	}
	if _, err := dora.Send("Thank you!"); err != nil {
		t.Fatal(err)
	}
	var chat map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, chat = mcpCall(t, agent, "read_chat", map[string]any{"chat": doraPhone}); !ok {
			t.Fatalf("read_chat: %v", chat)
		}
		if len(chat["messages"].([]any)) == 2 || time.Now().After(deadline) {
			break
		}
	}
	msgs := chat["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["text"] != "Thank you!" || msgs[0].(map[string]any)["direction"] != "in" ||
		msgs[1].(map[string]any)["id"] != sent["id"] {
		t.Fatalf("read_chat: %v, want Dora's answer, then the message sent", chat)
	}
	if ok, chats := mcpCall(t, agent, "list_chats", map[string]any{"limit": 10}); !ok || len(chats["chats"].([]any)) != 1 ||
		chats["chats"].([]any)[0].(map[string]any)["chat"] != dora.JID().String() || chats["chats"].([]any)[0].(map[string]any)["messages"] != 2.0 {
		t.Fatalf("list_chats: %v", chats)
	}

	ok, checked := mcpCall(t, agent, "check_numbers", map[string]any{"phones": []string{doraPhone, "+19995550123"}})
	contacts, _ := checked["contacts"].([]any)
	if !ok || len(contacts) != 2 {
		t.Fatalf("check_numbers: %v", checked)
	}
	if known, unknown := contacts[0].(map[string]any), contacts[1].(map[string]any); known["on_whatsapp"] != true || known["chat"] != dora.JID().String() ||
		unknown["on_whatsapp"] != false || unknown["chat"] != nil {
		t.Fatalf("check_numbers: %v", checked)
	}
	if ok, s := mcpCall(t, agent, "get_session", nil); !ok || s["state"] != "CONNECTED" || s["number"] != "+"+phone.Number() {
		t.Fatalf("get_session: %v, want CONNECTED as +%s", s, phone.Number())
	}
	mcpRefused(t, agent, "read_chat", map[string]any{"chat": "not a chat"}, "validation_failed")
	mcpRefused(t, agent, "send_message", map[string]any{"to": doraPhone, "text": ""}, "validation_failed")
	mcpRefused(t, agent, "list_chats", map[string]any{"limit": 500}, "validation_failed")

	// A key that may only read: the same tools, but no sending.
	ctx := context.Background()
	owner, err := e.app.Store().UserByEmail(ctx, "agent@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := e.app.Store().Memberships(ctx, owner.ID)
	if err != nil || len(ms) != 1 {
		t.Fatalf("memberships %v %v", ms, err)
	}
	_, readKey, err := e.app.Store().CreateAPIKey(ctx, ms[0].TenantID, "reader", []tenant.Scope{tenant.ScopeMessagesRead}, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := mcpConnect(t, e, readKey)
	if err != nil {
		t.Fatal(err)
	}
	if tools, err := reader.ListTools(ctx, nil); err != nil || len(tools.Tools) != len(names) {
		t.Fatalf("reader's tools: %v %v", tools, err)
	}
	if msg := mcpRefused(t, reader, "send_message", map[string]any{"to": doraPhone, "text": "Should not arrive."}, "forbidden"); !strings.Contains(msg, "messages:send") {
		t.Fatalf("refusal %q does not name the scope", msg)
	}
	mcpRefused(t, reader, "get_session", nil, "forbidden")
	if ok, m := mcpCall(t, reader, "read_chat", map[string]any{"chat": doraPhone}); !ok || len(m["messages"].([]any)) != 2 {
		t.Fatalf("reader's read_chat: %v", m)
	}
	out := api.call(http.MethodGet, "/api/v1/messages?direction=out", nil).json(t)["messages"].([]any)
	if len(out) != 1 || dora.Pending() != 0 {
		t.Fatalf("after the refusal: %d messages out, %d pending for Dora; want the first only", len(out), dora.Pending())
	}

	// Another workspace's key: its own empty workspace, nothing of this one.
	other, _ := e.tenantUser("rival@example.com", "Rival Shop")
	stranger, err := mcpConnect(t, e, other.createKey("/app/settings/keys", "all", "messages:send", "messages:read", "session:manage"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, m := mcpCall(t, stranger, "list_chats", nil); !ok || len(m["chats"].([]any)) != 0 {
		t.Fatalf("stranger's list_chats: %v", m)
	}
	if ok, m := mcpCall(t, stranger, "read_chat", map[string]any{"chat": doraPhone}); !ok || len(m["messages"].([]any)) != 0 {
		t.Fatalf("stranger's read_chat: %v", m)
	}
	mcpRefused(t, stranger, "get_message", map[string]any{"id": sent["id"]}, "not_found")
	if ok, s := mcpCall(t, stranger, "get_session", nil); !ok || s["state"] == "CONNECTED" || s["number"] != nil {
		t.Fatalf("stranger's get_session: %v", s)
	}
	// Its own workspace is not linked: WhatsApp is never asked through this one.
	mcpRefused(t, stranger, "check_numbers", map[string]any{"phones": []string{doraPhone}}, "session_not_connected")

	if _, err := mcpConnect(t, e, ""); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("no key: %v, want 401", err)
	}
	if _, err := mcpConnect(t, e, "wabot_not-a-key"); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("unknown key: %v, want 401", err)
	}
}

// TestMCPCrossSite: a browser signed in to the portal cannot reach the
// MCP endpoint from another site (the portal's cross-origin protection
// refuses the POST), nor from the portal's own pages (the cookie is not a
// key); a script, sending no Origin, gets past with a key. MCP requests
// count against the key's rate limit like any other.
func TestMCPCrossSite(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto", "WABOT_API_RATE_PER_MINUTE": "6"})
	b, _ := e.tenantUser("site@example.com", "Site Shop")
	key := b.createKey("/app/settings/keys", "agent", "messages:read")
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	hdr := func(extra map[string]string) map[string]string {
		h := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}

	r := b.do(http.MethodPost, "/api/v1/mcp", strings.NewReader(initialize), hdr(map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}))
	wantErr(t, "cross-site POST with the cookie", r, http.StatusForbidden, "forbidden")
	r = b.do(http.MethodPost, "/api/v1/mcp", strings.NewReader(initialize), hdr(map[string]string{"Origin": e.url, "Sec-Fetch-Site": "same-origin"}))
	wantErr(t, "same-origin POST with only the cookie", r, http.StatusUnauthorized, "unauthorized")
	checkResponse(t, http.MethodPost, "/api/v1/mcp", r.status, r.body)

	r = e.browser().do(http.MethodPost, "/api/v1/mcp", strings.NewReader(initialize), hdr(map[string]string{"Authorization": "Bearer " + key}))
	if r.status != http.StatusOK || !strings.Contains(r.body, `"serverInfo"`) || r.header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("script's initialize: %d %v %s, want 200 without a session id", r.status, r.header, r.body)
	}
	checkResponse(t, http.MethodPost, "/api/v1/mcp", r.status, r.body)

	// The script's initialize was the key's first request this minute.
	agent, err := mcpConnect(t, e, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		_, err := agent.ListTools(context.Background(), nil)
		if err != nil {
			if !strings.Contains(err.Error(), "Too Many Requests") {
				t.Fatalf("request %d refused with %v, want 429", i, err)
			}
			break
		}
		if i == 6 {
			t.Fatal("six tools/list after connecting and no 429: MCP requests are not counted")
		}
	}
}
