package tenant_test

import (
	"context"
	"testing"

	"wabot/tenant"
)

// A chat without state has the defaults; pausing and resuming the bot is
// kept per chat and per tenant.
func TestChatStatePauseAndResume(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	c, err := st.ChatStateOf(ctx, a.ID, chatA)
	if err != nil || c.BotPaused || c.Chat != chatA || c.TenantID != a.ID {
		t.Fatalf("a fresh chat: %+v, %v", c, err)
	}
	if err := st.PauseBot(ctx, a.ID, chatA, tenant.PausedByKeyword, true); err != nil {
		t.Fatal(err)
	}
	c, _ = st.ChatStateOf(ctx, a.ID, chatA)
	if !c.BotPaused || !c.Waiting || c.PausedBy != tenant.PausedByKeyword || c.PausedAt.IsZero() {
		t.Fatalf("paused: %+v", c)
	}
	if other, _ := st.ChatStateOf(ctx, b.ID, chatA); other.BotPaused {
		t.Fatal("pausing A's chat paused B's chat with the same contact")
	}
	if err := st.ResumeBot(ctx, a.ID, chatA); err != nil {
		t.Fatal(err)
	}
	if c, _ = st.ChatStateOf(ctx, a.ID, chatA); c.BotPaused || c.Waiting || !c.PausedAt.IsZero() {
		t.Fatalf("resumed: %+v", c)
	}
}
