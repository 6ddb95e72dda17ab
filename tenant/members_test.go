package tenant_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"wabot/tenant"
)

func TestMembershipsRolesAndTheLastOwner(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	owner, acme := newTenant(t, st, "owner@example.com", "Acme")
	_, other := newTenant(t, st, "other@example.com", "Other")
	agent, err := st.EnsureUser(ctx, "agent@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RoleOf(ctx, acme.ID, agent.ID); err != tenant.ErrNotFound {
		t.Fatalf("role before joining: %v; want not found", err)
	}
	token, err := st.CreateInvitation(ctx, acme.ID, "Agent@Example.com", tenant.RoleAgent, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AcceptInvitation(ctx, token, agent); err != nil {
		t.Fatal(err)
	}
	if r, err := st.RoleOf(ctx, acme.ID, agent.ID); err != nil || r != tenant.RoleAgent {
		t.Fatalf("role %q, %v; want agent", r, err)
	}
	// Assignment takes a member of this tenant, not of another.
	if err := st.Assign(ctx, acme.ID, "15550001111@s.whatsapp.net", agent.ID); err != nil {
		t.Errorf("assign to a member: %v", err)
	}
	if err := st.Assign(ctx, other.ID, "15550001111@s.whatsapp.net", agent.ID); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Errorf("assign to someone of another tenant: %v; want invalid", err)
	}
	members, err := st.Members(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.Email+"="+string(m.Role))
	}
	if want := []string{"owner@example.com=owner", "agent@example.com=agent"}; !reflect.DeepEqual(got, want) {
		t.Errorf("members %v; want %v", got, want)
	}

	// The last owner can neither step down nor leave.
	wantCode(t, st.SetRole(ctx, acme.ID, owner.ID, tenant.RoleAgent), tenant.CodeConflict)
	wantCode(t, st.RemoveMember(ctx, acme.ID, owner.ID), tenant.CodeConflict)
	wantCode(t, st.SetRole(ctx, acme.ID, agent.ID, "boss"), tenant.CodeInvalid)
	// With a second owner, the first may.
	if err := st.SetRole(ctx, acme.ID, agent.ID, tenant.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRole(ctx, acme.ID, owner.ID, tenant.RoleAgent); err != nil {
		t.Fatalf("step down with another owner: %v", err)
	}
	if err := st.RemoveMember(ctx, acme.ID, owner.ID); err != nil {
		t.Fatalf("remove an agent: %v", err)
	}
	if _, err := st.RoleOf(ctx, acme.ID, owner.ID); err != tenant.ErrNotFound {
		t.Errorf("removed member's role: %v; want not found", err)
	}
	// Their only tenant is gone with the membership.
	if u, err := st.UserByID(ctx, owner.ID); err != nil || u.TenantID != "" {
		t.Errorf("removed user %+v, %v; want no tenant", u, err)
	}
	wantNotFound(t, st.RemoveMember(ctx, acme.ID, owner.ID))
}

func TestInvitationsAreSingleUseExpireAndBindTheEmail(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	owner, acme := newTenant(t, st, "owner@example.com", "Acme")
	invitee, _ := st.EnsureUser(ctx, "invitee@example.com")
	stranger, _ := st.EnsureUser(ctx, "stranger@example.com")

	_, err := st.CreateInvitation(ctx, acme.ID, "not an email", tenant.RoleAgent, owner.ID)
	wantCode(t, err, tenant.CodeInvalid)

	token, err := st.CreateInvitation(ctx, acme.ID, "invitee@example.com", tenant.RoleAgent, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := st.PendingInvitations(ctx, acme.ID); err != nil || len(p) != 1 || p[0].Email != "invitee@example.com" {
		t.Fatalf("pending %+v, %v", p, err)
	}
	// Someone else holding the link joins no one, and spends nothing.
	wantCode(t, func() error { _, err := st.AcceptInvitation(ctx, token, stranger); return err }(), tenant.CodeForbidden)
	in, err := st.AcceptInvitation(ctx, token, invitee)
	if err != nil || in.TenantName != "Acme" || in.Role != tenant.RoleAgent {
		t.Fatalf("accept: %+v, %v", in, err)
	}
	// Used twice: refused; the page can still tell it was this user.
	if _, err := st.AcceptInvitation(ctx, token, invitee); err != tenant.ErrInvitationInvalid {
		t.Errorf("second use: %v; want invalid", err)
	}
	if in, err := st.InvitationByToken(ctx, token); err != nil || in.UsedBy != invitee.ID || in.Usable(clk.Now()) {
		t.Errorf("spent invitation %+v, %v", in, err)
	}
	if p, _ := st.PendingInvitations(ctx, acme.ID); len(p) != 0 {
		t.Errorf("pending after acceptance: %+v", p)
	}

	// Revoked: gone, and only by its own tenant.
	revoked, _ := st.CreateInvitation(ctx, acme.ID, "stranger@example.com", tenant.RoleOwner, owner.ID)
	p, _ := st.PendingInvitations(ctx, acme.ID)
	if len(p) != 1 {
		t.Fatalf("pending %+v", p)
	}
	_, other := newTenant(t, st, "other@example.com", "Other")
	wantNotFound(t, st.RevokeInvitation(ctx, other.ID, p[0].ID))
	if err := st.RevokeInvitation(ctx, acme.ID, p[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AcceptInvitation(ctx, revoked, stranger); err != tenant.ErrInvitationInvalid {
		t.Errorf("revoked: %v; want invalid", err)
	}

	// Expired: refused, a minute after its seven days.
	late, _ := st.CreateInvitation(ctx, acme.ID, "stranger@example.com", tenant.RoleAgent, owner.ID)
	clk.Advance(tenant.InvitationTTL + time.Minute)
	if _, err := st.AcceptInvitation(ctx, late, stranger); err != tenant.ErrInvitationInvalid {
		t.Errorf("expired: %v; want invalid", err)
	}
	if got, err := st.AcceptPendingInvitations(ctx, stranger); err != nil || len(got) != 0 {
		t.Errorf("expired accepted on sign-in: %+v, %v", got, err)
	}
	if _, err := st.AcceptInvitation(ctx, "no-such-token", stranger); err != tenant.ErrInvitationInvalid {
		t.Errorf("unknown token: %v; want invalid", err)
	}
}

func TestSigningInAcceptsPendingInvitations(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	owner, acme := newTenant(t, st, "owner@example.com", "Acme")
	if _, err := st.CreateInvitation(ctx, acme.ID, "new@example.com", tenant.RoleAgent, owner.ID); err != nil {
		t.Fatal(err)
	}
	u, err := st.SignIn(ctx, tenant.Identity{Provider: "google", Subject: "g-1", Email: "new@example.com"}, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.AcceptPendingInvitations(ctx, u)
	if err != nil || len(got) != 1 || got[0].TenantID != acme.ID {
		t.Fatalf("accepted %+v, %v", got, err)
	}
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil || len(ms) != 1 || ms[0].TenantID != acme.ID || ms[0].Role != tenant.RoleAgent || ms[0].TenantName != "Acme" {
		t.Errorf("memberships %+v, %v", ms, err)
	}
	if again, _ := st.AcceptPendingInvitations(ctx, u); len(again) != 0 {
		t.Errorf("accepted twice: %+v", again)
	}
}
