package tenant_test

import (
	"context"
	"testing"

	"wabot/tenant"
)

// A user's language is theirs alone; a tenant's is its own once set, its
// first owner's until then; and a tenant without a stored bot
// configuration gets its built-in replies in that language.
func TestLanguagesOfUsersAndTenants(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	ana, shop := newTenant(t, st, "ana@example.com", "Padaria")
	bob, _ := newTenant(t, st, "bob@example.com", "Bob's")

	if lang, err := st.UserLanguage(ctx, ana.ID); err != nil || lang != "" {
		t.Fatalf("a new user's language: %q, %v", lang, err)
	}
	if err := st.SetUserLanguage(ctx, ana.ID, "pt-BR"); err != nil {
		t.Fatal(err)
	}
	if lang, _ := st.UserLanguage(ctx, bob.ID); lang != "" {
		t.Errorf("another user's language changed: %q", lang)
	}
	if lang, _ := st.TenantLanguage(ctx, shop.ID); lang != "pt-BR" {
		t.Errorf("a tenant without its own language follows its owner's: %q", lang)
	}

	st.SetBotDefaults(func(lang string) (string, string) {
		if lang == "pt-BR" {
			return "Já respondemos!", "Uma pessoa já vem."
		}
		return "", ""
	})
	cfg, err := st.BotConfigOf(ctx, shop.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BusyReply != "Já respondemos!" || cfg.Handover.Reply != "Uma pessoa já vem." {
		t.Errorf("the default replies of a Portuguese tenant: %q, %q", cfg.BusyReply, cfg.Handover.Reply)
	}

	if err := st.SetTenantLanguage(ctx, shop.ID, "es"); err != nil {
		t.Fatal(err)
	}
	if lang, _ := st.TenantLanguage(ctx, shop.ID); lang != "es" {
		t.Errorf("the tenant's own language: %q", lang)
	}
	if cfg, _ := st.BotConfigOf(ctx, shop.ID); cfg.BusyReply != tenant.DefaultBotConfig().BusyReply {
		t.Errorf("a language without translations keeps the English default: %q", cfg.BusyReply)
	}
	if err := st.SetUserLanguage(ctx, "u-nobody", "es"); tenant.ErrorCode(err) != tenant.CodeNotFound {
		t.Errorf("an unknown user: %v", err)
	}
	if _, err := st.TenantLanguage(ctx, "t-nobody"); tenant.ErrorCode(err) != tenant.CodeNotFound {
		t.Errorf("an unknown tenant: %v", err)
	}
}
