package tenant_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

// A keyword is a whole word or phrase anywhere in the message, in any
// case and spacing; a word that merely contains it is not a request.
func TestHandoverKeywordMatching(t *testing.T) {
	h := tenant.Handover{Keywords: []string{"agent", "talk to a human", "ayuda"}}
	for text, want := range map[string]bool{
		"agent":                         true,
		"  AGENT  ":                     true,
		"I want an agent, please!":      true,
		"Can I Talk to  a\nHuman?":      true,
		"¿Ayuda?":                       true,
		"agents":                        false,
		"reagent":                       false,
		"talk to a humanoid":            false,
		"what are your opening hours?":  false,
		"":                              false,
		"management agent7":             false,
		"the agent-of-record is absent": true,
	} {
		if got := h.AsksForPerson(text); got != want {
			t.Errorf("AsksForPerson(%q) = %v, want %v", text, got, want)
		}
	}
	if (&tenant.Handover{}).AsksForPerson("agent") {
		t.Error("no keywords, yet a message asked for a person")
	}
}

// The hand-over settings are checked field by field; a configuration
// without them (saved before they existed) takes the defaults.
func TestHandoverSettingsValidation(t *testing.T) {
	def := tenant.DefaultBotConfig()
	if def.Handover.ResumeAfterMinutes != 60 || len(def.Handover.Keywords) != 0 || def.Handover.Reply == "" {
		t.Fatalf("defaults %+v", def.Handover)
	}
	many := make([]string, tenant.MaxKeywords+1)
	for i := range many {
		many[i] = "k" + strings.Repeat("x", i)
	}
	for name, c := range map[string]struct {
		h     tenant.Handover
		field string
	}{
		"too many keywords":  {tenant.Handover{Keywords: many, Reply: "r", ResumeAfterMinutes: 60}, "handover.keywords"},
		"a long keyword":     {tenant.Handover{Keywords: []string{strings.Repeat("a", 51)}, Reply: "r", ResumeAfterMinutes: 60}, "handover.keywords"},
		"no letters":         {tenant.Handover{Keywords: []string{"?!"}, Reply: "r", ResumeAfterMinutes: 60}, "handover.keywords"},
		"no reply":           {tenant.Handover{Keywords: []string{"agent"}, Reply: " ", ResumeAfterMinutes: 60}, "handover.reply"},
		"a long reply":       {tenant.Handover{Reply: strings.Repeat("a", tenant.MaxReplyLength+1), ResumeAfterMinutes: 60}, "handover.reply"},
		"resume too late":    {tenant.Handover{Reply: "r", ResumeAfterMinutes: tenant.MaxResumeMinutes + 1}, "handover.resume_after_minutes"},
		"resume in the past": {tenant.Handover{Reply: "r", ResumeAfterMinutes: -5}, "handover.resume_after_minutes"},
	} {
		cfg := tenant.DefaultBotConfig()
		cfg.Handover = c.h
		cfg.Normalize()
		err := cfg.Validate()
		var e *tenant.Error
		if !errors.As(err, &e) || e.Fields[c.field] == "" || len(e.Fields) != 1 {
			t.Errorf("%s: %v, want one error on %s", name, err, c.field)
		}
	}
	ok := tenant.DefaultBotConfig()
	ok.Handover = tenant.Handover{Keywords: []string{" agent ", "", strings.Repeat("é", 50)}, Reply: "A person comes.", ResumeAfterMinutes: 0}
	ok.Normalize()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(ok.Handover.Keywords) != 2 || ok.Handover.Keywords[0] != "agent" || ok.Handover.ResumeAfter() != 60 {
		t.Fatalf("normalized %+v", ok.Handover)
	}

	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	ctx := context.Background()
	if _, err := st.SaveBotConfig(ctx, a.ID, ok); err != nil {
		t.Fatal(err)
	}
	got, err := st.BotConfigOf(ctx, a.ID)
	if err != nil || got.Handover.Reply != "A person comes." || len(got.Handover.Keywords) != 2 {
		t.Fatalf("read back %+v, %v", got.Handover, err)
	}
}

// Handing over pauses the chat and logs the reply in one transaction:
// when the reply cannot be logged, the chat is not paused either.
func TestHandOverPausesAndLogsTogether(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	in := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "W1", Body: "agent please"})
	pending := func(r tenant.Reply) tenant.Reply { r.Status, r.WAID = tenant.MsgPending, "OUT-"+r.Origin; return r }

	// A reply to a message that is not there fails its insert, after the
	// pause was written.
	if _, err := st.HandOver(ctx, a.ID, tenant.PausedByKeyword, nil, tenant.Reply{InID: in + 1000, Chat: chatA, Body: "x", Origin: tenant.OriginHandover}, pending); err == nil {
		t.Fatal("a reply to a missing message was logged")
	}
	if c, _ := st.ChatStateOf(ctx, a.ID, chatA); c.BotPaused {
		t.Fatal("the chat was paused without its hand-over reply")
	}

	welcome := &tenant.Reply{InID: in, Chat: chatA, Body: "Welcome", Origin: tenant.OriginWelcome}
	written, err := st.HandOver(ctx, a.ID, tenant.PausedByKeyword, welcome, tenant.Reply{InID: in, Chat: chatA, Body: "A person comes.", Origin: tenant.OriginHandover}, pending)
	if err != nil || len(written) != 2 || written[0].Origin != tenant.OriginWelcome || written[1].Origin != tenant.OriginHandover {
		t.Fatalf("written %+v, %v", written, err)
	}
	c, _ := st.ChatStateOf(ctx, a.ID, chatA)
	if !c.BotPaused || !c.Waiting || c.PausedBy != tenant.PausedByKeyword {
		t.Fatalf("after the hand-over: %+v", c)
	}
	// Recovery reads the replies with their origin; the log shows it.
	again, err := st.RepliesTo(ctx, in)
	if err != nil || len(again) != 2 || again[1].Origin != tenant.OriginHandover || again[1].Body != "A person comes." {
		t.Fatalf("replies %+v, %v", again, err)
	}
	m, err := st.MessageByID(ctx, a.ID, written[1].ID)
	if err != nil || m.Origin != tenant.OriginHandover {
		t.Fatalf("log row %+v, %v", m, err)
	}
}

// A person's reply takes the chat over (or keeps it), ends the wait, and
// moves the idle clock; the bot resumes only where both the last reply
// and the pause are older than the idle time, and only in that tenant.
func TestResumeIdleChatsAndHumanReplies(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	u, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	chatB := "15550002222@s.whatsapp.net"
	chatC := "15550003333@s.whatsapp.net"
	state := func(tenantID, chat string) tenant.ChatState {
		t.Helper()
		c, err := st.ChatStateOf(ctx, tenantID, chat)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	resume := func(want int64) {
		t.Helper()
		n, err := st.ResumeIdleChats(ctx, a.ID, time.Hour)
		if err != nil || n != want {
			t.Fatalf("at %s resumed %d, %v; want %d", clk.now.Sub(t0), n, err, want)
		}
	}

	must(t, st.PauseBot(ctx, a.ID, chatA, tenant.PausedByKeyword, true)) // the customer asked at t0
	must(t, st.NoteHumanReply(ctx, a.ID, chatB, u.ID))                   // a person wrote first at t0
	must(t, st.PauseBot(ctx, b.ID, chatA, tenant.PausedByKeyword, true)) // another tenant, same contact
	if c := state(a.ID, chatB); !c.BotPaused || c.PausedBy != u.ID || c.Waiting || !c.LastHumanAt.Equal(t0) || !c.PausedAt.Equal(t0) {
		t.Fatalf("a person's first reply: %+v", c)
	}
	resume(0)

	clk.Advance(30 * time.Minute)
	must(t, st.NoteHumanReply(ctx, a.ID, chatA, u.ID)) // the person answers the waiting customer
	if c := state(a.ID, chatA); !c.BotPaused || c.PausedBy != tenant.PausedByKeyword || c.Waiting || !c.PausedAt.Equal(t0) ||
		!c.LastHumanAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("a reply in a waiting chat: %+v", c)
	}
	must(t, st.PauseBot(ctx, a.ID, chatC, u.ID, false)) // paused by hand at t0+30m

	clk.Advance(31 * time.Minute) // t0+61m: only chat B is an hour quiet
	resume(1)
	if state(a.ID, chatB).BotPaused || !state(a.ID, chatA).BotPaused || !state(a.ID, chatC).BotPaused {
		t.Fatal("resumed the wrong chats at t0+61m")
	}
	clk.Advance(30 * time.Minute) // t0+91m: A's reply and C's pause are an hour old
	resume(2)
	if c := state(a.ID, chatA); c.BotPaused || c.Waiting || c.PausedBy != "" || !c.PausedAt.IsZero() {
		t.Fatalf("resumed: %+v", c)
	}
	if !state(b.ID, chatA).BotPaused {
		t.Fatal("resuming tenant A's chats resumed tenant B's")
	}
	resume(0)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
