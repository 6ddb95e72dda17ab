package bot

import (
	"context"
	"slices"
	"testing"
	"time"

	"wabot/session/fakewa/fakewatest"
	"wabot/tenant"
)

// A workspace awaiting approval may link its number, but its messages are
// logged without their contents, neither answered nor sent to its
// webhook; once approved, messages are stored and answered as usual.
func TestAPendingTenantsMessagesAreLoggedWithoutTheirContents(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{AllowPrivateWebhooks: true})
	ctx := context.Background()
	u, err := r.store.EnsureUser(ctx, "pending@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := r.store.CreateTenant(ctx, u.ID, "Pending", false)
	if err != nil || tn.Status != tenant.StatusPending {
		t.Fatalf("tenant %+v, %v", tn, err)
	}
	h := newHook(t, "")
	h.secret = "k"
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"})
	cfg.Webhook = tenant.Webhook{URL: h.srv.URL, Secret: h.secret}
	if _, err := r.bot.SaveConfig(ctx, tn.ID, cfg); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Add(tn.ID); err != nil {
		t.Fatal(err)
	}
	phone := fakewatest.Link(t, r.srv, r.m, r.store, tn.ID, 30*time.Second)
	ann := phone.NewContact("15550007777", "Ann")

	ann.Send("hi, my one-time code is 4711")
	ms := r.waitLogs(tn.ID, "the pending tenant's message", func(ms []tenant.Message) bool { return count(ms, "in", "") == 1 })
	in := ms[0]
	if in.Body != "" || in.Status != tenant.MsgIgnored || in.Error != withheldReason {
		t.Fatalf("pending tenant's message logged as %+v", in)
	}
	if in.SenderName != "Ann" || in.Chat == "" {
		t.Fatalf("the admin cannot see the traffic: %+v", in)
	}
	if found, _, err := r.store.Messages(ctx, tn.ID, tenant.MessageQuery{Text: "4711", Limit: 10}); err != nil || len(found) != 0 {
		t.Fatalf("the contents were stored: %+v %v", found, err)
	}

	if err := r.store.SetTenantStatus(ctx, tn.ID, tenant.StatusActive); err != nil {
		t.Fatal(err)
	}
	ann.Send("hi again")
	expect(t, ann, "hello") // the first message was never answered
	ms = r.waitLogs(tn.ID, "the approved tenant's message", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgReplied) == 1 })
	if i := slices.IndexFunc(ms, func(m tenant.Message) bool { return m.Direction == "in" && m.Status == tenant.MsgReplied }); ms[i].Body != "hi again" {
		t.Fatalf("after approval the message is logged as %+v", ms[i])
	}
	waitFor(t, "the webhook delivery", func() bool { return len(h.texts()) > 0 })
	if got := h.texts(); len(got) != 1 || got[0] != "hi again" {
		t.Fatalf("the webhook got %q", got)
	}
}
