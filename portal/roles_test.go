package portal_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/oauth2-proxy/mockoidc"

	"wabot/app/apptest"
	"wabot/portal"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// agentRoutes are the /app and /api/portal routes any member may use: the
// conversations, quick replies, the message log and media, and their own
// workspaces. ownerRoutes are the rest. A route in neither fails
// TestEveryAppRouteHasARole, so none slips through unclassified.
var agentRoutes = []string{
	"GET /app", "POST /app/tenant", "GET /app/tenant/new", "POST /app/tenant/switch",
	"GET /app/chats", "GET /app/chats/events", "GET /app/chats/:chat",
	"POST /app/chats/:chat/reply", "POST /app/chats/:chat/pause", "POST /app/chats/:chat/resume",
	"POST /app/chats/:chat/assign", "POST /app/chats/:chat/contact",
	"GET /app/settings/quick-replies", "POST /app/settings/quick-replies", "POST /app/settings/quick-replies/:id/delete",
	"GET /app/logs", "GET /app/logs/:id", "GET /app/media/:id",
	"POST /api/portal/tenant", "GET /api/portal/tenant/current/logs",
}

var ownerRoutes = []string{
	"GET /app/link", "POST /app/link", "GET /app/link/events", "POST /app/link/phone",
	"GET /app/bot", "POST /app/bot", "GET /app/session/:action", "POST /app/session/:action",
	"GET /app/settings/webhooks", "POST /app/settings/webhooks", "POST /app/settings/webhooks/:id/test",
	"POST /app/settings/webhooks/:id/secret", "GET /app/settings/webhooks/:id/delete", "POST /app/settings/webhooks/:id/delete",
	"POST /app/settings/webhooks/deliveries/:id/resend",
	"GET /app/settings/keys", "POST /app/settings/keys", "GET /app/settings/keys/:id/revoke", "POST /app/settings/keys/:id/revoke",
	"GET /app/settings/members", "POST /app/settings/members", "POST /app/settings/members/:user/role", "GET /app/settings/members/:user/remove", "POST /app/settings/members/:user/remove",
	"POST /app/settings/members/invitations/:id/revoke",
	"GET /api/portal/tenant/current/qr", "GET /api/portal/tenant/current/status", "GET /api/portal/tenant/current/bot",
	"PUT /api/portal/tenant/current/bot", "POST /api/portal/tenant/current/link", "POST /api/portal/tenant/current/link/phone",
}

// invite has owner invite email with role on the Members page and returns
// the link the page shows.
func invite(t *testing.T, owner *browser, email, role string) string {
	t.Helper()
	r := owner.postForm("/app/settings/members", url.Values{"email": {email}, "role": {role}})
	if r.status != http.StatusOK {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	m := regexp.MustCompile(`data-testid="invite-url"[^>]*|value="([^"]+/invite/[^"]+)"`).FindAllStringSubmatch(r.body, -1)
	for _, g := range m {
		if g[1] != "" {
			return g[1]
		}
	}
	t.Fatalf("no invitation link on the page:\n%.2000s", r.body)
	return ""
}

// joinByLink follows an invitation link as a signed-out invitee: the link
// sends them to sign in, the one-time login link brings them back, and
// the invitation's page asks before joining.
func (e *env) joinByLink(link, email string) *browser {
	e.t.Helper()
	b := e.browser()
	path := strings.TrimPrefix(link, e.url)
	if r := b.get(path); r.status != http.StatusOK || !strings.Contains(r.url, "next="+url.QueryEscape(path)) {
		e.t.Fatalf("signed-out invitation link: %d at %s", r.status, r.url)
	}
	token, err := e.app.Store().CreateLoginLink(context.Background(), email, false)
	if err != nil {
		e.t.Fatal(err)
	}
	landed := apptest.SignIn(e.t, b.c, e.url+"/auth/link?token="+url.QueryEscape(token)+"&next="+url.QueryEscape(path))
	if !strings.HasSuffix(landed, path) {
		e.t.Fatalf("after signing in: at %s, want the invitation", landed)
	}
	page := b.get(path)
	if page.status != http.StatusOK || testidText(e.t, page.body, "invitation-accept") == "" {
		e.t.Fatalf("invitation page: %d %.1500s", page.status, page.body)
	}
	if r := b.postForm(path, nil); r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app/chats") && !strings.HasSuffix(r.url, "/app") {
		e.t.Fatalf("accept: %d at %s", r.status, r.url)
	}
	return b
}

// TestEveryAppRouteHasARole walks every /app and /api/portal route as an
// agent: owner-only ones answer 403, the agent's anything but 403.
func TestEveryAppRouteHasARole(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, tid := e.tenantUser("owner@roles.example", "Roles Shop")
	agent := e.joinByLink(invite(t, owner, "agent@roles.example", "agent"), "agent@roles.example")
	agentUser, _ := e.app.Store().UserByEmail(context.Background(), "agent@roles.example")
	if r, err := e.app.Store().RoleOf(context.Background(), tid, agentUser.ID); err != nil || r != tenant.RoleAgent {
		t.Fatalf("agent's role %q, %v", r, err)
	}

	ec := echo.New()
	p := portal.New(portal.Config{BaseURL: e.cfg.BaseURL}, slog.New(slog.DiscardHandler), tenanttest.Open(t), nil, nil)
	t.Cleanup(p.Close)
	p.Routes(ec)
	fill := strings.NewReplacer(":chat", "15550001111@s.whatsapp.net", ":id", "1", ":action", "restart", ":user", agentUser.ID)
	seen := 0
	for _, rt := range ec.Routes() {
		if rt.Method == echo.RouteNotFound || !(strings.HasPrefix(rt.Path, "/app") || strings.HasPrefix(rt.Path, "/api/portal")) {
			continue
		}
		key := rt.Method + " " + rt.Path
		ownerOnly := slices.Contains(ownerRoutes, key)
		if !ownerOnly && !slices.Contains(agentRoutes, key) {
			t.Errorf("route %s is in neither agentRoutes nor ownerRoutes: decide who may use it", key)
			continue
		}
		seen++
		status := agent.status(rt.Method, fill.Replace(rt.Path))
		switch {
		case ownerOnly && status != http.StatusForbidden:
			t.Errorf("agent %s: %d, want 403", key, status)
		case !ownerOnly && status == http.StatusForbidden:
			t.Errorf("agent %s: 403, want it allowed", key)
		}
	}
	if want := len(agentRoutes) + len(ownerRoutes); seen != want {
		t.Errorf("walked %d routes; the lists name %d (a listed route is gone?)", seen, want)
	}
	// The owner is not refused where the agent is.
	if s := owner.status(http.MethodGet, "/app/bot"); s != http.StatusOK {
		t.Errorf("owner's Bot page: %d", s)
	}
	// The agent's 403 is a page that says why.
	if r := agent.get("/app/bot"); r.status != http.StatusForbidden || !strings.Contains(r.body, "owners may open this") {
		t.Errorf("agent's Bot page: %d %.500s", r.status, r.body)
	}
}

// status sends an empty request and returns the status, reading no
// further than the headers (a live stream would never end).
func (b *browser) status(method, path string) int {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var body io.Reader
	req, _ := http.NewRequestWithContext(ctx, method, b.e.url+path, body)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if strings.HasPrefix(path, "/api/") {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	r.Body.Close()
	return r.StatusCode
}

// TestInvitationLinkIsSingleUseAndForItsEmail: the link joins its invitee
// once; a second use, and anyone else, get a refusal page.
func TestInvitationLinkIsSingleUseAndForItsEmail(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, _ := e.tenantUser("owner@invite.example", "Invite Shop")
	link := invite(t, owner, "agent@invite.example", "agent")
	path := strings.TrimPrefix(link, e.url)

	stranger := e.browser()
	stranger.loginLink("stranger@invite.example", false)
	if r := stranger.get(path); r.status != http.StatusOK || testidText(t, r.body, "invitation-wrong-user") == "" {
		t.Fatalf("someone else's view: %d %.800s", r.status, r.body)
	}
	if r := stranger.postForm(path, nil); r.status != http.StatusForbidden {
		t.Fatalf("someone else accepting: %d", r.status)
	}

	agent := e.joinByLink(link, "agent@invite.example")
	if r := agent.get("/app/chats"); r.status != http.StatusOK || testidText(t, r.body, "current-tenant") != "Invite Shop" {
		t.Fatalf("agent's chats: %d %.800s", r.status, r.body)
	}
	// Used: a second acceptance and anyone else's view are refused.
	if r := agent.postForm(path, nil); r.status != http.StatusForbidden || !strings.Contains(r.body, "already used") {
		t.Errorf("second use: %d %.500s", r.status, r.body)
	}
	if r := stranger.get(path); r.status != http.StatusForbidden || !strings.Contains(r.body, "already used") {
		t.Errorf("used link for someone else: %d %.500s", r.status, r.body)
	}
	if r := e.browser().get("/invite/NOTATOKEN"); r.status != http.StatusOK || !strings.Contains(r.url, "next=") {
		t.Errorf("signed out, unknown token: %d at %s (sign in first)", r.status, r.url)
	}
	// A withdrawn invitation's link is refused too.
	withdrawn := strings.TrimPrefix(invite(t, owner, "later@invite.example", "agent"), e.url)
	page := owner.get("/app/settings/members")
	action := regexp.MustCompile(`action="(/app/settings/members/invitations/[0-9a-f]+/revoke)"`).FindStringSubmatch(page.body)
	if action == nil {
		t.Fatalf("no withdraw button:\n%.2000s", page.body)
	}
	if r := owner.postForm(action[1], nil); r.status != http.StatusOK || strings.Contains(r.body, "later@invite.example") {
		t.Errorf("withdraw: %d, still listed: %v", r.status, strings.Contains(r.body, "later@invite.example"))
	}
	later := e.browser()
	later.loginLink("later@invite.example", false)
	if r := later.get(withdrawn); r.status != http.StatusForbidden {
		t.Errorf("withdrawn link: %d", r.status)
	}
	// The owner's audit trail names the invitation and the join.
	log, _ := e.app.Store().AuditLog(context.Background(), 10)
	var actions []string
	for _, l := range log {
		actions = append(actions, l.ActorEmail+" "+l.Action)
	}
	for _, want := range []string{"owner@invite.example invite member", "agent@invite.example join"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log %v lacks %q", actions, want)
		}
	}
}

// TestGoogleSignInAcceptsTheInvitation: the invitee signs in with Google
// under the invited email and is a member without opening the link.
func TestGoogleSignInAcceptsTheInvitation(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, _ := e.tenantUser("owner@g.example", "Google Shop")
	invite(t, owner, "agent@g.example", "agent")
	b := e.browser()
	e.google.signInAs(googleUser{Sub: "g-agent", Email: "agent@g.example", EmailVerified: true})
	r := b.get("/auth/google")
	if r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app/chats") {
		t.Fatalf("after Google: %d at %s", r.status, r.url)
	}
	if r := b.get("/app/bot"); r.status != http.StatusForbidden {
		t.Errorf("the agent's Bot page: %d, want 403", r.status)
	}
}

// TestRemovedMemberLosesAccessAtOnce: after removal, the member's next
// request and their open live stream no longer reach the tenant.
func TestRemovedMemberLosesAccessAtOnce(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, _ := e.tenantUser("owner@remove.example", "Remove Shop")
	agent := e.joinByLink(invite(t, owner, "agent@remove.example", "agent"), "agent@remove.example")
	agentUser, _ := e.app.Store().UserByEmail(context.Background(), "agent@remove.example")

	rig := newStreamRig(t, e, portal.Config{StreamRecheck: 200 * time.Millisecond})
	status, ended := rig.openStreamAt(t, agent, "/app/chats/events")
	if status != http.StatusOK {
		t.Fatalf("agent's inbox stream: %d", status)
	}
	if endsWithin(ended, time.Second) {
		t.Fatal("the stream ended while still a member")
	}
	// The last owner cannot be removed; the agent can.
	ownerUser, _ := e.app.Store().UserByEmail(context.Background(), "owner@remove.example")
	if r := owner.postForm("/app/settings/members/"+ownerUser.ID+"/remove", nil); r.status != http.StatusConflict {
		t.Errorf("removing the last owner: %d", r.status)
	}
	if r := owner.get("/app/settings/members/" + agentUser.ID + "/remove"); r.status != http.StatusOK || !strings.Contains(testidText(t, r.body, "confirm"), "agent@remove.example") {
		t.Fatalf("removal's confirmation: %d %.500s", r.status, r.body)
	}
	if r := owner.postForm("/app/settings/members/"+agentUser.ID+"/remove", nil); r.status != http.StatusOK || !strings.Contains(r.body, "Member removed") {
		t.Fatalf("remove: %d %.500s", r.status, r.body)
	}
	if !endsWithin(ended, 10*time.Second) {
		t.Fatal("the removed member's stream still runs")
	}
	if r := agent.get("/app/chats"); !strings.HasSuffix(r.url, "/app") || testidText(t, r.body, "current-tenant") != "" {
		t.Errorf("removed member's chats: %d at %s", r.status, r.url)
	}
	if r := agent.get("/api/portal/tenant/current/logs"); r.status == http.StatusOK {
		t.Errorf("removed member's API: %d", r.status)
	}
}

// TestSwitchingTenants: a member of two workspaces works in one per
// browser session and switches in the header.
func TestSwitchingTenants(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, first := e.tenantUser("agency@switch.example", "First Shop")
	r := owner.postJSON(http.MethodPost, "/api/portal/tenant", map[string]string{"name": "Second Shop"})
	if r.status != http.StatusCreated {
		t.Fatalf("second workspace: %d %s", r.status, r.body)
	}
	if r := owner.get("/app/chats"); testidText(t, r.body, "current-tenant") != "Second Shop" {
		t.Errorf("after creating: current %q, want the new one", testidText(t, r.body, "current-tenant"))
	}
	if r := owner.postForm("/app/tenant/switch", url.Values{"tenant": {first}}); r.status != http.StatusOK || testidText(t, r.body, "current-tenant") != "First Shop" {
		t.Errorf("after switching: %d current %q", r.status, testidText(t, r.body, "current-tenant"))
	}
	// Another browser of the same user keeps its own current tenant.
	other := e.browser()
	other.loginLink("agency@switch.example", false)
	if r := other.get("/app/chats"); testidText(t, r.body, "current-tenant") != "First Shop" {
		t.Errorf("a fresh session: current %q, want the first membership", testidText(t, r.body, "current-tenant"))
	}
	// A workspace one is not in cannot be switched to.
	_, foreign := e.tenantUser("else@switch.example", "Else Shop")
	if r := owner.postForm("/app/tenant/switch", url.Values{"tenant": {foreign}}); r.status != http.StatusNotFound {
		t.Errorf("switching to someone else's: %d", r.status)
	}
}

// TestAssignToAMemberAndTheAuditTrail: the thread's assign control lists
// the workspace's members; an agent's pause, assignment and owner's role
// change are in the audit log with who did them.
func TestAssignToAMemberAndTheAuditTrail(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, tid := e.tenantUser("owner@assign.example", "Assign Shop")
	agent := e.joinByLink(invite(t, owner, "agent@assign.example", "agent"), "agent@assign.example")
	agentUser, _ := e.app.Store().UserByEmail(context.Background(), "agent@assign.example")
	_, _ = e.tenantUser("outsider@assign.example", "Outside Shop")
	outsider, _ := e.app.Store().UserByEmail(context.Background(), "outsider@assign.example")
	customerWrites(t, e, tid, inboxChat, "Dora", "Hello")
	base := "/app/chats/" + inboxChat

	page := owner.get(base)
	for _, who := range []string{"owner@assign.example", "agent@assign.example"} {
		if !strings.Contains(testidText(t, page.body, "assign-to"), who) {
			t.Errorf("the assign control lacks %s: %q", who, testidText(t, page.body, "assign-to"))
		}
	}
	if r := owner.postForm(base+"/assign", url.Values{"to": {agentUser.ID}}); r.status != http.StatusOK || testidText(t, r.body, "assigned-to") != "Assigned to agent@assign.example" {
		t.Errorf("assign to the agent: %d %q", r.status, testidText(t, r.body, "assigned-to"))
	}
	if r := agent.get("/app/chats?filter=mine"); !strings.Contains(r.body, `data-chat="`+inboxChat+`"`) {
		t.Errorf("the agent's \"assigned to me\" lacks the chat: %d", r.status)
	}
	if r := owner.postForm(base+"/assign", url.Values{"to": {outsider.ID}}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("assign to someone of another workspace: %d", r.status)
	}
	if r := agent.postForm(base+"/pause", nil); r.status != http.StatusOK {
		t.Fatalf("agent pauses: %d", r.status)
	}
	if r := owner.postForm("/app/settings/members/"+agentUser.ID+"/role", url.Values{"role": {"owner"}}); r.status != http.StatusOK {
		t.Fatalf("role change: %d", r.status)
	}
	if r := agent.get("/app/bot"); r.status != http.StatusOK {
		t.Errorf("the new owner's Bot page: %d", r.status)
	}
	log, _ := e.app.Store().AuditLog(context.Background(), 20)
	var got []string
	for _, l := range log {
		if l.TenantID == tid {
			got = append(got, l.ActorEmail+" "+l.Action+" "+l.Detail)
		}
	}
	for _, want := range []string{
		"owner@assign.example assign chat " + inboxChat + " to agent@assign.example",
		"agent@assign.example pause bot " + inboxChat,
		"owner@assign.example change member role agent@assign.example to owner",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("audit log lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// TestDemotedOwnersLinkStreamEnds: the link page's stream is an owner's;
// made an agent, the member's open stream ends at the next check.
func TestDemotedOwnersLinkStreamEnds(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, _ := e.tenantUser("owner@demote.example", "Demote Shop")
	second := e.joinByLink(invite(t, owner, "second@demote.example", "owner"), "second@demote.example")
	secondUser, _ := e.app.Store().UserByEmail(context.Background(), "second@demote.example")
	rig := newStreamRig(t, e, portal.Config{StreamRecheck: 200 * time.Millisecond})
	status, ended := rig.openStream(t, second)
	if status != http.StatusOK {
		t.Fatalf("second owner's link stream: %d", status)
	}
	if endsWithin(ended, time.Second) {
		t.Fatal("the stream ended while still an owner")
	}
	if r := owner.postForm("/app/settings/members/"+secondUser.ID+"/role", url.Values{"role": {"agent"}}); r.status != http.StatusOK {
		t.Fatalf("demote: %d", r.status)
	}
	if !endsWithin(ended, 10*time.Second) {
		t.Fatal("the demoted member's link stream still runs")
	}
	if r := second.get("/app/link"); r.status != http.StatusForbidden {
		t.Errorf("demoted member's Link page: %d", r.status)
	}
}

// TestOIDCSignInAcceptsTheInvitation: single sign-on under the invited
// email joins as Google's does.
func TestOIDCSignInAcceptsTheInvitation(t *testing.T) {
	e, m := oidcEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	owner, tid := e.tenantUser("owner@sso.example", "SSO Shop")
	invite(t, owner, "agent@sso.example", "agent")
	m.QueueUser(&mockoidc.MockUser{Subject: "kc-agent", Email: "agent@sso.example", EmailVerified: true})
	b := e.browser()
	if r := b.get("/auth/oidc"); r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app/chats") || testidText(t, r.body, "current-tenant") != "SSO Shop" {
		t.Fatalf("after single sign-on: %d at %s", r.status, r.url)
	}
	u, _ := e.app.Store().UserByEmail(context.Background(), "agent@sso.example")
	if r, err := e.app.Store().RoleOf(context.Background(), tid, u.ID); err != nil || r != tenant.RoleAgent {
		t.Errorf("role %q, %v; want agent", r, err)
	}
}
