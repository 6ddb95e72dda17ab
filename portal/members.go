package portal

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// membersShow is Settings → Members (owners only).
func (p *Portal) membersShow(c echo.Context) error {
	return p.renderMembers(c, http.StatusOK, views.MembersView{})
}

func (p *Portal) renderMembers(c echo.Context, status int, v views.MembersView) error {
	ctx := c.Request().Context()
	t := currentTenant(c)
	u, _ := currentUser(c)
	ms, err := p.store.Members(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		v.Members = append(v.Members, views.MemberRow{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: string(m.Role), Me: m.UserID == u.ID})
	}
	ins, err := p.store.PendingInvitations(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, in := range ins {
		v.Invitations = append(v.Invitations, views.InvitationRow{ID: in.ID, Email: in.Email, Role: string(in.Role), Expires: loc(c).DateTime(in.ExpiresAt) + " UTC"})
	}
	v.Chrome = p.chrome(c, loc(c).T("NavMembers"), "members")
	c.Response().Header().Set("Cache-Control", "no-store") // it may hold a fresh invitation link
	return Render(c, status, views.MembersPage(v))
}

// memberInvite creates an invitation and shows its link once.
func (p *Portal) memberInvite(c echo.Context) error {
	ctx := c.Request().Context()
	t := currentTenant(c)
	u, _ := currentUser(c)
	email, role := strings.ToLower(strings.TrimSpace(c.FormValue("email"))), c.FormValue("role")
	token, err := p.store.CreateInvitation(ctx, t.ID, email, tenant.Role(role), u.ID)
	var de *tenant.Error
	if errors.As(err, &de) && de.Code == tenant.CodeInvalid {
		return p.renderMembers(c, http.StatusUnprocessableEntity, views.MembersView{Email: email, Role: role, Errors: fieldTexts(loc(c), de.Fields)})
	}
	if err != nil {
		return err
	}
	if err := p.store.Audit(ctx, u, "invite member", t.ID, email+" as "+role); err != nil {
		return err
	}
	return p.renderMembers(c, http.StatusOK, views.MembersView{Email: email, Role: role,
		InviteURL: strings.TrimSuffix(p.cfg.BaseURL.String(), "/") + "/invite/" + token})
}

// memberRoleApply changes a member's role; the last owner stays one.
func (p *Portal) memberRoleApply(c echo.Context) error {
	ctx := c.Request().Context()
	t := currentTenant(c)
	u, _ := currentUser(c)
	who, role := c.Param("user"), tenant.Role(c.FormValue("role"))
	if err := p.store.SetRole(ctx, t.ID, who, role); err != nil {
		return err
	}
	if err := p.store.Audit(ctx, u, "change member role", t.ID, p.emailOf(c, who)+" to "+string(role)); err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashRoleChanged"))
	return c.Redirect(http.StatusSeeOther, "/app/settings/members")
}

// memberRemoveConfirm asks before a member is removed.
func (p *Portal) memberRemoveConfirm(c echo.Context) error {
	ctx := c.Request().Context()
	t := currentTenant(c)
	u, _ := currentUser(c)
	who := c.Param("user")
	if _, err := p.store.RoleOf(ctx, t.ID, who); err != nil {
		return err
	}
	v := views.ConfirmView{Chrome: p.chrome(c, loc(c).T("RemoveMember"), "members"), Title: loc(c).T("RemoveWhom", "Email", p.emailOf(c, who)),
		Message: loc(c).T("RemoveMemberMessage", "Name", t.Name),
		Action:  "/app/settings/members/" + who + "/remove", Button: loc(c).T("Remove"), Cancel: "/app/settings/members", Danger: true}
	if who == u.ID {
		v.Title, v.Message, v.Button = loc(c).T("LeaveTitle", "Name", t.Name), loc(c).T("LeaveMessage", "Name", t.Name), loc(c).T("Leave")
	}
	return Render(c, http.StatusOK, views.ConfirmPage(v))
}

// memberRemoveApply takes a member out of the workspace: their next
// request and their open live streams no longer reach it.
func (p *Portal) memberRemoveApply(c echo.Context) error {
	ctx := c.Request().Context()
	t := currentTenant(c)
	u, _ := currentUser(c)
	who := c.Param("user")
	email := p.emailOf(c, who)
	if err := p.store.RemoveMember(ctx, t.ID, who); err != nil {
		return err
	}
	if err := p.store.Audit(ctx, u, "remove member", t.ID, email); err != nil {
		return err
	}
	if who == u.ID {
		return c.Redirect(http.StatusSeeOther, "/app")
	}
	p.flash(c, "ok", loc(c).T("FlashMemberRemoved"))
	return c.Redirect(http.StatusSeeOther, "/app/settings/members")
}

// invitationRevokeApply withdraws an invitation not yet accepted.
func (p *Portal) invitationRevokeApply(c echo.Context) error {
	ctx := c.Request().Context()
	t := currentTenant(c)
	u, _ := currentUser(c)
	if err := p.store.RevokeInvitation(ctx, t.ID, c.Param("id")); err != nil {
		return err
	}
	if err := p.store.Audit(ctx, u, "revoke invitation", t.ID, ""); err != nil {
		return err
	}
	p.flash(c, "ok", loc(c).T("FlashInvitationWithdrawn"))
	return c.Redirect(http.StatusSeeOther, "/app/settings/members")
}

func (p *Portal) emailOf(c echo.Context, userID string) string {
	if u, err := p.store.UserByID(c.Request().Context(), userID); err == nil {
		return u.Email
	}
	return userID
}

// invitationConfirm is an invitation link's page. Signed out, it sends the
// browser to sign in and back; signed in as the invitee, it asks, and the
// POST accepts. Spent or expired links get a clear refusal — except for
// the very user who accepted it, who is taken to the workspace.
func (p *Portal) invitationConfirm(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := currentUser(c)
	in, err := p.store.InvitationByToken(ctx, c.Param("token"))
	if err != nil {
		return err
	}
	if !in.Usable(time.Now()) {
		if in.UsedBy == u.ID {
			p.browser.Put(ctx, sessionTenantKey, in.TenantID)
			return c.Redirect(http.StatusSeeOther, "/app")
		}
		return tenant.ErrInvitationInvalid
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return Render(c, http.StatusOK, views.InvitationPage(views.InvitationView{
		Chrome: p.chrome(c, loc(c).T("JoinTenant", "Name", in.TenantName), ""), Token: c.Param("token"),
		Tenant: in.TenantName, Role: string(in.Role), Email: in.Email, SignedIn: u.Email,
	}))
}

// invitationAccept spends the invitation and makes its workspace this
// browser's current one.
func (p *Portal) invitationAccept(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := currentUser(c)
	in, err := p.store.AcceptInvitation(ctx, c.Param("token"), u)
	if err != nil {
		return err
	}
	if err := p.store.Audit(ctx, u, "join", in.TenantID, u.Email+" as "+string(in.Role)); err != nil {
		return err
	}
	p.browser.Put(ctx, sessionTenantKey, in.TenantID)
	p.flash(c, "ok", loc(c).T("FlashWelcomeTo", "Name", in.TenantName))
	return c.Redirect(http.StatusSeeOther, "/app")
}

// tenantSwitch makes another of the user's tenants this browser's current one.
func (p *Portal) tenantSwitch(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := currentUser(c)
	id := c.FormValue("tenant")
	if _, err := p.store.RoleOf(ctx, id, u.ID); err != nil {
		if errors.Is(err, tenant.ErrNotFound) {
			return &tenant.Error{Code: tenant.CodeNotFound, Msg: "you have no such workspace"}
		}
		return err
	}
	p.browser.Put(ctx, sessionTenantKey, id)
	return c.Redirect(http.StatusSeeOther, "/app")
}

// tenantNew shows the create-workspace form to someone who has one already.
func (p *Portal) tenantNew(c echo.Context) error {
	return Render(c, http.StatusOK, views.CreateTenantPage(views.CreateTenantView{Chrome: p.chrome(c, loc(c).T("CreateWorkspaceHeading"), "app")}))
}
