package tenant_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

func chatsOf(cs []tenant.Conversation) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Chat
	}
	return out
}

func conversations(t *testing.T, st *tenant.Store, tenantID string, q tenant.ConversationQuery) []tenant.Conversation {
	t.Helper()
	cs, _, err := st.Conversations(context.Background(), tenantID, q)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// The list is newest first, names come from the business or else from
// the contact, and unread counts follow the read mark; another tenant's
// chats never show.
func TestConversationsListUnreadAndNames(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	const (
		ann = "15550000001@s.whatsapp.net"
		bob = "15550000002@s.whatsapp.net"
	)
	in := func(tenantID, chat, name, text string) int64 {
		clk.Advance(time.Second)
		return storeIn(t, st, tenantID, tenant.Inbound{Chat: chat, Sender: chat, SenderName: name, WAID: "W" + strconv.FormatInt(clk.now.UnixNano(), 10), Body: text})
	}
	in(a.ID, ann, "Ann", "hello")
	a2 := in(a.ID, ann, "", "are you there?")
	// A redelivery is no message of its own.
	if _, dup, err := st.StoreInbound(ctx, a.ID, tenant.Inbound{Chat: ann, Sender: ann, WAID: "dup", Body: "x", Kind: "text", Status: tenant.MsgReceived}); err != nil || dup {
		t.Fatal(err)
	}
	if _, dup, _ := st.StoreInbound(ctx, a.ID, tenant.Inbound{Chat: ann, Sender: ann, WAID: "dup", Body: "x", Kind: "text", Status: tenant.MsgReceived}); !dup {
		t.Fatal("not a duplicate")
	}
	in(a.ID, bob, "Bob", "price?")
	in(b.ID, "15550000009@s.whatsapp.net", "Zed", "other tenant")

	cs := conversations(t, st, a.ID, tenant.ConversationQuery{})
	if got := chatsOf(cs); !slices.Equal(got, []string{bob, ann}) {
		t.Fatalf("chats %v", got)
	}
	byChat := map[string]tenant.Conversation{}
	for _, c := range cs {
		byChat[c.Chat] = c
	}
	if c := byChat[bob]; c.Name != "Bob" || c.Phone != "+15550000002" || c.Unread != 1 || c.Last.Body != "price?" {
		t.Fatalf("bob: %+v", c)
	}
	if c := byChat[ann]; c.Unread != 3 {
		t.Fatalf("ann: %d unread, want 3 (the redelivery not counted)", c.Unread)
	}
	if c := byChat[ann]; c.Name != "Ann" {
		t.Fatalf("ann's name falls back to the last name she sent: %+v", c)
	}
	if _, err := st.MarkRead(ctx, a.ID, ann, a2); err != nil {
		t.Fatal(err)
	}
	if before, err := st.MarkRead(ctx, a.ID, ann, 1); err != nil || before != a2 { // never moves back
		t.Fatalf("a mark behind the last: the mark before was %d (want %d), %v", before, a2, err)
	}
	if err := st.SetContact(ctx, a.ID, bob, "Bob the Builder", "wants a quote"); err != nil {
		t.Fatal(err)
	}
	byChat = map[string]tenant.Conversation{}
	for _, c := range conversations(t, st, a.ID, tenant.ConversationQuery{}) {
		byChat[c.Chat] = c
	}
	if byChat[bob].Name != "Bob the Builder" || byChat[bob].ContactName != "Bob the Builder" {
		t.Fatalf("the business's name wins: %+v", byChat[bob])
	}
	if byChat[ann].Unread != 1 { // the one after a2, counted once
		t.Fatalf("ann unread %d, want 1", byChat[ann].Unread)
	}
	if n, err := st.UnreadChats(ctx, a.ID); err != nil || n != 2 {
		t.Fatalf("unread chats %d, %v", n, err)
	}
	if got := chatsOf(conversations(t, st, b.ID, tenant.ConversationQuery{})); !slices.Equal(got, []string{"15550000009@s.whatsapp.net"}) {
		t.Fatalf("tenant B sees %v", got)
	}
	if err := st.SetContact(ctx, a.ID, bob, string(make([]rune, 101)), ""); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Fatalf("a 101-character name: %v", err)
	}
}

// Unread counts exactly the inbound messages after the mark; the unread
// filter and the title's count agree with it.
func TestConversationsUnreadFilter(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	var last int64
	for i := range 3 {
		last = storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: fmt.Sprintf("A%d", i), Body: "hi"})
	}
	storeIn(t, st, a.ID, tenant.Inbound{Chat: "15550000003@s.whatsapp.net", Sender: "15550000003@s.whatsapp.net", WAID: "C1", Body: "yo"})
	if _, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: last, Chat: chatA, WAID: "R1", Body: "hello", Status: tenant.MsgReplied}); err != nil {
		t.Fatal(err)
	}
	cs := conversations(t, st, a.ID, tenant.ConversationQuery{Unread: true})
	if len(cs) != 2 {
		t.Fatalf("unread chats %v", chatsOf(cs))
	}
	for _, c := range cs {
		if c.Chat == chatA && (c.Unread != 3 || c.Last.Direction != "out") {
			t.Fatalf("chat A: %+v (3 unread, the bot's reply last)", c)
		}
	}
	if _, err := st.MarkRead(ctx, a.ID, chatA, last); err != nil {
		t.Fatal(err)
	}
	cs = conversations(t, st, a.ID, tenant.ConversationQuery{Unread: true})
	if got := chatsOf(cs); !slices.Equal(got, []string{"15550000003@s.whatsapp.net"}) {
		t.Fatalf("after reading A, unread: %v", got)
	}
	if n, _ := st.UnreadChats(ctx, a.ID); n != 1 {
		t.Fatalf("unread chats %d, want 1", n)
	}
}

// Search finds a chat by the business's name, the sender's name, the
// number however typed, and the text of any message; filters narrow to
// assigned and paused chats.
func TestConversationsSearchAndFilters(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	u, a := newTenant(t, st, "a@example.com", "A")
	other, _ := newTenant(t, st, "o@example.com", "O")
	const (
		c1 = "4915112345678@s.whatsapp.net"
		c2 = "15550000002@s.whatsapp.net"
		c3 = "120363000000000001@g.us"
	)
	storeIn(t, st, a.ID, tenant.Inbound{Chat: c1, Sender: c1, SenderName: "Jürgen", WAID: "1", Body: "Wie teuer ist das Fahrrad?"})
	storeIn(t, st, a.ID, tenant.Inbound{Chat: c2, Sender: c2, SenderName: "Mia", WAID: "2", Body: "100% sure"})
	storeIn(t, st, a.ID, tenant.Inbound{Chat: c3, Sender: c2, SenderName: "Mia", WAID: "3", Body: "group hello"})
	if err := st.SetContact(ctx, a.ID, c2, "Maria Lopez", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		search string
		want   []string
	}{
		{"fahrrad", []string{c1}},
		{"jürgen", []string{c1}},
		{"+49 151 1234", []string{c1}},
		{"lopez", []string{c2}},
		{"mia", []string{c3, c2}},
		{"100%", []string{c2}},
		{"_", nil},
		{"nobody", nil},
	} {
		got := chatsOf(conversations(t, st, a.ID, tenant.ConversationQuery{Search: tc.search}))
		sort.Strings(got)
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", tc.search, got, want)
		}
	}
	if err := st.Assign(ctx, a.ID, c1, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Assign(ctx, a.ID, c2, other.ID); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Fatalf("assigning to another workspace's user: %v", err)
	}
	if err := st.PauseBot(ctx, a.ID, c3, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := chatsOf(conversations(t, st, a.ID, tenant.ConversationQuery{AssignedTo: u.ID})); !slices.Equal(got, []string{c1}) {
		t.Fatalf("assigned to me: %v", got)
	}
	if got := chatsOf(conversations(t, st, a.ID, tenant.ConversationQuery{Paused: true})); !slices.Equal(got, []string{c3}) {
		t.Fatalf("paused: %v", got)
	}
	if err := st.Assign(ctx, a.ID, c1, ""); err != nil {
		t.Fatal(err)
	}
	if got := conversations(t, st, a.ID, tenant.ConversationQuery{AssignedTo: u.ID}); len(got) != 0 {
		t.Fatalf("unassigned, still listed: %v", chatsOf(got))
	}
}

// Pages follow each other without gaps or repeats, and a chat that gets
// a new message moves to the top.
func TestConversationsPaging(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	var want []string
	for i := range 7 {
		chat := fmt.Sprintf("155500000%02d@s.whatsapp.net", i)
		storeIn(t, st, a.ID, tenant.Inbound{Chat: chat, Sender: chat, WAID: "W" + strconv.Itoa(i), Body: "m"})
		want = append([]string{chat}, want...)
	}
	// The oldest chat writes again: it moves to the top, and its older
	// message does not list it a second time on a later page.
	oldest := want[len(want)-1]
	storeIn(t, st, a.ID, tenant.Inbound{Chat: oldest, Sender: oldest, WAID: "again", Body: "m"})
	want = append([]string{oldest}, want[:len(want)-1]...)
	for _, q := range []tenant.ConversationQuery{{}, {Search: "m"}} { // walked, and grouped
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			q.Limit, q.Cursor = 3, cursor
			cs, next, err := st.Conversations(ctx, a.ID, q)
			if err != nil || pages > 3 {
				t.Fatalf("page %d: %v", pages, err)
			}
			got = append(got, chatsOf(cs)...)
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %+v: %v, want %v", q, got, want)
		}
	}
	_, _, err := st.Conversations(ctx, a.ID, tenant.ConversationQuery{Cursor: "x"})
	wantCode(t, err, tenant.CodeInvalid)
}

// A thread is the chat's messages oldest first with who wrote each:
// the bot's origin, the person's name; older pages by cursor; another
// tenant's chat is not found.
func TestThread(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	u, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	in1 := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "1", Body: "first"})
	if _, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: in1, Chat: chatA, WAID: "R1", Body: "bot says", Status: tenant.MsgReplied}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.QueueOutbound(ctx, a.ID, tenant.NewOutbound{Chat: chatA, Text: "a person says", WAID: "P1", AuthorID: u.ID},
		tenant.QueueLimits{IdempotencyTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "2", Body: "skipped", Status: tenant.MsgIgnored, Error: tenant.ReasonBotPaused + ": a person is answering"})
	ms, older, err := st.Thread(ctx, a.ID, chatA, "", 10)
	if err != nil || older != "" {
		t.Fatalf("thread: %v, older %q", err, older)
	}
	var bodies []string
	for _, m := range ms {
		bodies = append(bodies, m.Body)
	}
	if !slices.Equal(bodies, []string{"first", "bot says", "a person says", "skipped"}) {
		t.Fatalf("thread %v", bodies)
	}
	if ms[1].Source != "bot" || ms[2].AuthorID != u.ID || ms[2].AuthorName != "a@example.com" || ms[2].Source != "api" {
		t.Fatalf("authors: %+v / %+v", ms[1], ms[2])
	}
	if !tenant.SkippedPaused(ms[3].Message) || tenant.SkippedPaused(ms[0].Message) {
		t.Fatal("the paused skip is not told apart")
	}
	page, older, err := st.Thread(ctx, a.ID, chatA, "", 2)
	if err != nil || len(page) != 2 || page[0].Body != "a person says" || older == "" {
		t.Fatalf("newest page of 2: %v %q %v", page, older, err)
	}
	page, older, _ = st.Thread(ctx, a.ID, chatA, older, 2)
	if len(page) != 2 || page[0].Body != "first" || older != "" {
		t.Fatalf("older page: %+v %q", page, older)
	}
	_, _, err = st.Thread(ctx, b.ID, chatA, "", 10)
	wantNotFound(t, err)
}

func TestQuickReplies(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	q, err := st.SaveQuickReply(ctx, a.ID, "/hours", "We open at 9.")
	if err != nil || q.Shortcut != "hours" {
		t.Fatalf("save: %+v %v", q, err)
	}
	if q2, err := st.SaveQuickReply(ctx, a.ID, "hours", "We open at 10."); err != nil || q2.ID != q.ID {
		t.Fatalf("the same shortcut replaces: %+v %v", q2, err)
	}
	for _, bad := range []struct{ shortcut, body string }{{"Hours", "x"}, {"", "x"}, {"a b", "x"}, {"ok", " "}, {"ok", string(make([]rune, 4097))}} {
		_, err := st.SaveQuickReply(ctx, a.ID, bad.shortcut, bad.body)
		wantCode(t, err, tenant.CodeInvalid)
	}
	qs, _ := st.QuickReplies(ctx, a.ID)
	if len(qs) != 1 || qs[0].Body != "We open at 10." {
		t.Fatalf("list %+v", qs)
	}
	if qs, _ := st.QuickReplies(ctx, b.ID); len(qs) != 0 {
		t.Fatalf("B sees %+v", qs)
	}
	wantNotFound(t, st.DeleteQuickReply(ctx, b.ID, q.ID))
	for i := 1; i < tenant.MaxQuickReplies; i++ {
		if _, err := st.SaveQuickReply(ctx, a.ID, "s"+strconv.Itoa(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = st.SaveQuickReply(ctx, a.ID, "one-too-many", "x")
	wantCode(t, err, tenant.CodeInvalid)
	if err := st.DeleteQuickReply(ctx, a.ID, q.ID); err != nil {
		t.Fatal(err)
	}
	if qs, _ := st.QuickReplies(ctx, a.ID); len(qs) != tenant.MaxQuickReplies-1 {
		t.Fatalf("%d left", len(qs))
	}
}

// BenchmarkConversations measures the first page of the list for a
// tenant with 100,000 messages across 2,000 chats (and another tenant as
// large beside it).
func BenchmarkConversations(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "wabot.db")
	st := tenanttest.OpenAt(b, path)
	var tenants []string
	for _, email := range []string{"a@example.com", "b@example.com"} {
		u, err := st.EnsureUser(ctx, email)
		if err != nil {
			b.Fatal(err)
		}
		tn, err := st.CreateTenant(ctx, u.ID, email, true)
		if err != nil {
			b.Fatal(err)
		}
		tenants = append(tenants, tn.ID)
	}
	raw := tenanttest.Raw(b, path)
	const messages, chats = 100_000, 2_000
	for _, tid := range tenants {
		tx, err := raw.Begin()
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.Prepare(`INSERT INTO messages (tenant_id, direction, chat, sender, sender_name, wa_id, body, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for i := range messages {
			chat := fmt.Sprintf("1555%07d@s.whatsapp.net", (i*7919)%chats)
			dir, status := "in", "received"
			if i%2 == 1 {
				dir, status = "out", "replied"
			}
			if _, err := stmt.Exec(tid, dir, chat, chat, "Customer", "W"+strconv.Itoa(i), "message number "+strconv.Itoa(i), status, i, i); err != nil {
				b.Fatal(err)
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := raw.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    tenant.ConversationQuery
	}{
		{"list", tenant.ConversationQuery{}},
		{"page2", tenant.ConversationQuery{Cursor: "99000"}},
		{"unread", tenant.ConversationQuery{Unread: true}},
		{"search", tenant.ConversationQuery{Search: "number 99999"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				cs, _, err := st.Conversations(ctx, tenants[0], bc.q)
				if err != nil || len(cs) == 0 {
					b.Fatalf("%d chats, %v", len(cs), err)
				}
			}
		})
	}
	b.Run("unreadchats", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.UnreadChats(ctx, tenants[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mark", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.InboxMark(ctx, tenants[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Reading a chat again up to the same message changes nothing the live
// pages watch.
func TestMarkReadTwiceIsNoChange(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	id := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "1", Body: "hi"})
	if _, err := st.MarkRead(ctx, a.ID, chatA, id); err != nil {
		t.Fatal(err)
	}
	before, _ := st.InboxMark(ctx, a.ID)
	clk.Advance(time.Second)
	if _, err := st.MarkRead(ctx, a.ID, chatA, id); err != nil {
		t.Fatal(err)
	}
	if after, _ := st.InboxMark(ctx, a.ID); after != before {
		t.Fatalf("the mark moved from %s to %s", before, after)
	}
	clk.Advance(time.Second)
	storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "2", Body: "again"})
	if after, _ := st.InboxMark(ctx, a.ID); after == before {
		t.Fatal("a new message left the mark as it was")
	}
}
