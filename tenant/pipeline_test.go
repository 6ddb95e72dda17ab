package tenant_test

import (
	"context"
	"database/sql"
	"reflect"
	"sync"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

const (
	chatA = "15550000001@s.whatsapp.net"
	chatB = "15550000002@s.whatsapp.net"
)

func TestStoreInboundLogsARedeliveryAsDuplicate(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	first := tenant.Inbound{Chat: chatA, Sender: chatA, SenderName: "Ann", WAID: "WA1", Kind: "text", Body: "hello", Status: tenant.MsgReceived}
	firstID := storeIn(t, st, a.ID, first)

	steps := []struct {
		name     string
		tenantID string
		in       tenant.Inbound
		wantDup  bool
	}{
		{"the same message again", a.ID, first, true},
		{"the same id with another body", a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "WA1", Kind: "text", Body: "edited?", Status: tenant.MsgReceived}, true},
		{"the same id in another chat", a.ID, tenant.Inbound{Chat: chatB, Sender: chatB, WAID: "WA1", Kind: "text", Body: "hi", Status: tenant.MsgReceived}, false},
		{"the same chat and id at another tenant", b.ID, first, false},
		{"a new id in the same chat", a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "WA2", Kind: "text", Body: "more", Status: tenant.MsgIgnored, Error: "no rule"}, false},
	}
	for _, s := range steps {
		clk.Advance(time.Second)
		id, dup, err := st.StoreInbound(ctx, s.tenantID, s.in)
		if err != nil || dup != s.wantDup {
			t.Fatalf("%s: dup %v, %v; want dup %v", s.name, dup, err, s.wantDup)
		}
		if !dup && (id <= 0 || id == firstID) {
			t.Errorf("%s: id %d, want a new id", s.name, id)
		}
	}
	// Answering the first does not let a redelivery through either.
	if err := st.SetInboundStatus(ctx, firstID, tenant.MsgReplied, ""); err != nil {
		t.Fatal(err)
	}
	if _, dup, err := st.StoreInbound(ctx, a.ID, first); err != nil || !dup {
		t.Errorf("redelivery of an answered message: dup %v, %v; want true", dup, err)
	}

	// The first row stays as it was stored; each redelivery is one more
	// 'duplicate' row of the same message.
	got, err := st.InboundByID(ctx, a.ID, firstID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "hello" || got.Status != tenant.MsgReplied || got.SenderName != "Ann" || !got.CreatedAt.Equal(t0) {
		t.Errorf("first row changed: %+v", got)
	}
	dups, _, err := st.Messages(ctx, a.ID, tenant.MessageQuery{Status: tenant.MsgDuplicate})
	if err != nil {
		t.Fatal(err)
	}
	if len(dups) != 3 {
		t.Fatalf("%d duplicate rows, want 3", len(dups))
	}
	for _, d := range dups {
		if d.WAID != "WA1" || d.Chat != chatA || d.Direction != "in" || d.Error == "" || d.ID == firstID {
			t.Errorf("duplicate row %+v", d)
		}
	}
	if un, err := st.Unanswered(ctx, a.ID); err != nil || len(un) != 1 || un[0].Chat != chatB {
		t.Errorf("Unanswered = %+v, %v; want only the chatB message (duplicates are never answered)", un, err)
	}
}

// Several goroutines storing the same delivery at once: exactly one of
// them gets the row, through the single writer, without "database is
// locked".
func TestStoreInboundOnceUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	st := tenanttest.Open(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh, dups := 0, 0
	for range n {
		wg.Go(func() {
			_, dup, err := st.StoreInbound(ctx, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "SAME", Kind: "text", Body: "x", Status: tenant.MsgReceived})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case dup:
				dups++
			default:
				fresh++
			}
		})
	}
	wg.Wait()
	if fresh != 1 || dups != n-1 {
		t.Errorf("%d stored, %d duplicates; want 1 and %d", fresh, dups, n-1)
	}
}

func TestUnansweredListsOnlyReceivedInboundOldestFirst(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	rows := []struct {
		tenantID string
		chat     string
		status   tenant.MessageStatus
		open     bool
	}{
		{a.ID, chatA, tenant.MsgReceived, true},
		{a.ID, chatB, tenant.MsgIgnored, false},
		{b.ID, chatA, tenant.MsgReceived, false},
		{a.ID, chatB, tenant.MsgReceived, true},
		{a.ID, chatA, tenant.MsgDropped, false},
		{a.ID, chatA, tenant.MsgReceived, true}, // answered below
		{a.ID, chatA, tenant.MsgReceived, true},
	}
	var want []int64
	var answered int64
	for i, r := range rows {
		clk.Advance(time.Second)
		id := storeIn(t, st, r.tenantID, tenant.Inbound{Chat: r.chat, Sender: r.chat, WAID: string(rune('A' + i)), Status: r.status})
		if i == 5 {
			answered = id
			continue
		}
		if r.open {
			want = append(want, id)
		}
	}
	if err := st.SetInboundStatus(ctx, answered, tenant.MsgReplied, ""); err != nil {
		t.Fatal(err)
	}
	// A reply logged as 'received' is still not an inbound message.
	if _, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: want[0], Chat: chatA, WAID: "OUT", Body: "x", Status: tenant.MsgReceived}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Unanswered(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gotIDs := ids(got, func(in tenant.Inbound) int64 { return in.ID }); !reflect.DeepEqual(gotIDs, want) {
		t.Fatalf("Unanswered(a) = %v, want %v", gotIDs, want)
	}
	for _, in := range got {
		if in.Status != tenant.MsgReceived || in.Chat == "" {
			t.Errorf("unanswered %+v", in)
		}
	}
	if got, err := st.Unanswered(ctx, b.ID); err != nil || len(got) != 1 || got[0].Chat != chatA {
		t.Errorf("Unanswered(b) = %+v, %v; want its one message", got, err)
	}
	if got, err := st.Unanswered(ctx, "taaaaaaaaaaaaaaaa"); err != nil || len(got) != 0 {
		t.Errorf("Unanswered(unknown) = %+v, %v; want none", got, err)
	}
}

func TestInboundByIDIsPerTenant(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	clk.Advance(1234 * time.Millisecond)
	want := tenant.Inbound{Chat: "120363000000000001@g.us", Sender: chatA, SenderName: "Ann", WAID: "3EB0ABC", Kind: "image",
		Body: "a caption", Status: tenant.MsgIgnored, Error: "groups are off"}
	want.ID = storeIn(t, st, a.ID, want)
	want.CreatedAt = clk.Now()
	got, err := st.InboundByID(ctx, a.ID, want.ID)
	if err != nil || !sameInbound(got, want) {
		t.Fatalf("InboundByID = %+v, %v\nwant %+v", got, err, want)
	}

	clk.Advance(time.Minute)
	if err := st.SetInboundStatus(ctx, want.ID, tenant.MsgFailed, "could not send"); err != nil {
		t.Fatal(err)
	}
	want.Status, want.Error = tenant.MsgFailed, "could not send"
	if got, err := st.InboundByID(ctx, a.ID, want.ID); err != nil || !sameInbound(got, want) {
		t.Errorf("after SetInboundStatus: %+v, %v; want %+v", got, err, want)
	}

	replyID, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: want.ID, Chat: want.Chat, WAID: "OUT1", Body: "hi", Status: tenant.MsgPending})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		tenantID string
		id       int64
	}{
		"another tenant's message": {b.ID, want.ID},
		"a reply":                  {a.ID, replyID},
		"an unknown id":            {a.ID, want.ID + 1000},
		"an unknown tenant":        {"taaaaaaaaaaaaaaaa", want.ID},
	} {
		got, err := st.InboundByID(ctx, c.tenantID, c.id)
		if tenant.ErrorCode(err) != tenant.CodeNotFound {
			t.Errorf("%s: %v, want not found", name, err)
		}
		if got.Body != "" || got.Chat != "" {
			t.Errorf("%s: returned %+v with the error", name, got)
		}
	}
	// SetInboundStatus leaves replies alone.
	if err := st.SetInboundStatus(ctx, replyID, tenant.MsgIgnored, "x"); err != nil {
		t.Fatal(err)
	}
	if rs, err := st.RepliesTo(ctx, want.ID); err != nil || len(rs) != 1 || rs[0].Status != tenant.MsgPending {
		t.Errorf("SetInboundStatus changed a reply: %+v, %v", rs, err)
	}
}

func sameInbound(a, b tenant.Inbound) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return a == b
}

func TestRepliesRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	inID := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1", Body: "hours?"})
	otherIn := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN2", Body: "price?"})
	own := "15559999999@s.whatsapp.net"
	logged := []tenant.Reply{
		{InID: inID, Chat: chatA, Sender: own, WAID: "3EB0OUT1", Body: "Welcome!", Status: tenant.MsgPending},
		{InID: inID, Chat: chatA, Sender: own, WAID: "3EB0OUT2", Body: "9 to 5", Status: tenant.MsgPending},
		{InID: otherIn, Chat: chatA, Sender: own, WAID: "3EB0OUT3", Body: "see the list", Status: tenant.MsgPending},
		{InID: inID, Chat: chatA, Sender: own, Body: "slow down", Status: tenant.MsgRateLimited, Error: "over the chat's limit"},
	}
	for i := range logged {
		clk.Advance(time.Second)
		id, err := st.LogReply(ctx, a.ID, logged[i])
		if err != nil {
			t.Fatal(err)
		}
		logged[i].ID = id
	}
	// What became of each, as the pipeline records it.
	updates := []struct {
		i      int
		status tenant.MessageStatus
		reason string
	}{
		{0, tenant.MsgReplied, ""},
		{1, tenant.MsgFailed, "not on WhatsApp"},
	}
	for _, u := range updates {
		clk.Advance(time.Second)
		if err := st.SetReplyStatus(ctx, logged[u.i].ID, u.status, u.reason); err != nil {
			t.Fatal(err)
		}
		logged[u.i].Status, logged[u.i].Error = u.status, u.reason
	}
	// SetReplyStatus leaves inbound rows alone.
	if err := st.SetReplyStatus(ctx, inID, tenant.MsgReplied, ""); err != nil {
		t.Fatal(err)
	}
	if in, err := st.InboundByID(ctx, a.ID, inID); err != nil || in.Status != tenant.MsgReceived {
		t.Errorf("SetReplyStatus changed an inbound row: %+v, %v", in, err)
	}

	got, err := st.RepliesTo(ctx, inID)
	if err != nil {
		t.Fatal(err)
	}
	want := []tenant.Reply{logged[0], logged[1], logged[3]}
	if len(got) != len(want) {
		t.Fatalf("RepliesTo = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if w.WAID == "" {
			g.WAID = "" // a reply that never got an id is stored with a placeholder
		}
		if g != w {
			t.Errorf("reply %d = %+v, want %+v", i, got[i], w)
		}
	}
	if got, err := st.RepliesTo(ctx, otherIn); err != nil || len(got) != 1 || got[0] != logged[2] {
		t.Errorf("RepliesTo(other) = %+v, %v; want %+v", got, err, logged[2])
	}
	if got, err := st.RepliesTo(ctx, inID+1000); err != nil || len(got) != 0 {
		t.Errorf("RepliesTo(unknown) = %+v, %v; want none", got, err)
	}

	// The log shows each reply as outgoing, answering its message.
	out, _, err := st.Messages(ctx, a.ID, tenant.MessageQuery{Direction: "out"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out {
		if m.Direction != "out" || m.ReplyTo == 0 || m.Kind != "text" || m.TenantID != a.ID {
			t.Errorf("logged reply %+v", m)
		}
	}
}

// A reply's sending time is set when it is recorded as sent, and only then.
func TestReplySentTimeOnlyWhenReplied(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	inID := storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "IN1"})
	raw := tenanttest.Raw(t, st.Path())
	sentAt := func(id int64) sql.NullInt64 {
		t.Helper()
		var v sql.NullInt64
		if err := raw.QueryRow(`SELECT sent_at FROM messages WHERE id = ?`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		statuses []tenant.MessageStatus
		sentStep int // 1-based step whose time is the sending time; 0 for never sent
	}{
		{"pending", nil, 0},
		{"replied", []tenant.MessageStatus{tenant.MsgReplied}, 1},
		{"failed", []tenant.MessageStatus{tenant.MsgFailed}, 0},
		{"rate limited", []tenant.MessageStatus{tenant.MsgRateLimited}, 0},
		{"failed, then sent on a retry", []tenant.MessageStatus{tenant.MsgFailed, tenant.MsgReplied}, 2},
		{"sent, then marked otherwise, keeps its sending time", []tenant.MessageStatus{tenant.MsgReplied, tenant.MsgFailed}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: inID, Chat: chatA, WAID: "OUT-" + c.name, Body: "x", Status: tenant.MsgPending})
			if err != nil {
				t.Fatal(err)
			}
			var want sql.NullInt64
			for i, s := range c.statuses {
				clk.Advance(time.Second)
				if err := st.SetReplyStatus(ctx, id, s, ""); err != nil {
					t.Fatal(err)
				}
				if i+1 == c.sentStep {
					want = sql.NullInt64{Int64: clk.Now().UnixMilli(), Valid: true}
				}
			}
			if got := sentAt(id); got != want {
				t.Errorf("sent_at %v, want %v", got, want)
			}
		})
	}
}

func TestMarkWelcomedTrueOncePerChat(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	steps := []struct {
		tenantID, chat string
		first          bool
	}{
		{a.ID, chatA, true},
		{a.ID, chatA, false},
		{a.ID, chatB, true},
		{b.ID, chatA, true},
		{b.ID, chatA, false},
		{a.ID, chatB, false},
	}
	for i, s := range steps {
		if first, err := st.MarkWelcomed(ctx, s.tenantID, s.chat); err != nil || first != s.first {
			t.Errorf("step %d: MarkWelcomed = %v, %v; want %v", i, first, err, s.first)
		}
	}
	// A welcome outlives the message log's retention.
	clk.Advance(365 * 24 * time.Hour)
	if _, err := st.RemoveOldMessages(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if first, err := st.MarkWelcomed(ctx, a.ID, chatA); err != nil || first {
		t.Errorf("after removing old messages MarkWelcomed = %v, %v; want false", first, err)
	}
}

func TestRemoveOldMessagesKeepsOpenAndRecentRows(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")

	type msg struct {
		name     string
		tenantID string
		out      bool
		status   tenant.MessageStatus
		keep     bool
	}
	old := []msg{
		{"old received", a.ID, false, tenant.MsgReceived, true},
		{"old pending inbound", a.ID, false, tenant.MsgPending, true},
		{"old replied", a.ID, false, tenant.MsgReplied, false},
		{"old ignored", b.ID, false, tenant.MsgIgnored, false},
		{"old dropped", a.ID, false, tenant.MsgDropped, false},
		{"old failed", a.ID, false, tenant.MsgFailed, false},
		{"old pending reply", a.ID, true, tenant.MsgPending, true},
		{"old sent reply", a.ID, true, tenant.MsgReplied, false},
		{"old rate-limited reply", b.ID, true, tenant.MsgRateLimited, false},
	}
	recent := []msg{
		{"recent replied", a.ID, false, tenant.MsgReplied, true},
		{"recent sent reply", a.ID, true, tenant.MsgReplied, true},
		{"recent ignored", b.ID, false, tenant.MsgIgnored, true},
	}
	idOf := map[string]int64{}
	anchor := map[string]int64{} // per tenant, an inbound message replies can answer
	write := func(ms []msg) {
		for i, m := range ms {
			if !m.out {
				idOf[m.name] = storeIn(t, st, m.tenantID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: m.name, Status: m.status})
				anchor[m.tenantID] = idOf[m.name]
				continue
			}
			id, err := st.LogReply(ctx, m.tenantID, tenant.Reply{InID: anchor[m.tenantID], Chat: chatA, WAID: "out" + string(rune('a'+i)), Body: m.name, Status: m.status})
			if err != nil {
				t.Fatal(err)
			}
			idOf[m.name] = id
		}
	}
	write(old)
	// A duplicate is logged too, and goes with the old rows.
	if _, dup, err := st.StoreInbound(ctx, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: "old replied", Kind: "text", Status: tenant.MsgReceived}); err != nil || !dup {
		t.Fatalf("dup %v, %v", dup, err)
	}
	deliveries := []struct {
		id     string
		status tenant.DeliveryStatus
		keep   bool
	}{
		{"old-pending", tenant.DeliveryPending, true},
		{"old-delivered", tenant.DeliveryDelivered, false},
		{"old-failed", tenant.DeliveryFailed, false},
	}
	for _, d := range deliveries {
		queue(t, st, tenant.WebhookDelivery{ID: d.id, TenantID: a.ID, MessageID: idOf["old replied"], URL: "https://example.com/h", Payload: []byte("{}"), NextAt: clk.Now()})
		if d.status != tenant.DeliveryPending {
			if err := st.RecordWebhookAttempt(ctx, tenant.WebhookDelivery{ID: d.id, Status: d.status, Attempts: 1, NextAt: clk.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}

	clk.Advance(48 * time.Hour)
	cutoff := clk.Now().Add(-24 * time.Hour)
	write(recent)
	queue(t, st, tenant.WebhookDelivery{ID: "recent-delivered", TenantID: a.ID, MessageID: idOf["recent replied"], URL: "https://example.com/h", Payload: []byte("{}"), NextAt: clk.Now()})
	if err := st.RecordWebhookAttempt(ctx, tenant.WebhookDelivery{ID: "recent-delivered", Status: tenant.DeliveryDelivered, Attempts: 1, NextAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}

	n, err := st.RemoveOldMessages(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := int64(1) // the duplicate
	for _, m := range old {
		if !m.keep {
			wantRemoved++
		}
	}
	if n != wantRemoved {
		t.Errorf("removed %d messages, want %d", n, wantRemoved)
	}
	left := map[int64]bool{}
	for _, tn := range []string{a.ID, b.ID} {
		ms, _, err := st.Messages(ctx, tn, tenant.MessageQuery{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			left[m.ID] = true
			if m.Status == tenant.MsgDuplicate {
				t.Errorf("an old duplicate row is left: %+v", m)
			}
		}
	}
	for _, m := range append(old, recent...) {
		if left[idOf[m.name]] != m.keep {
			t.Errorf("%s: left %v, want %v", m.name, left[idOf[m.name]], m.keep)
		}
	}
	outbox, err := st.WebhookDeliveries(ctx, a.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, d := range outbox {
		kept[d.ID] = true
	}
	wantKept := map[string]bool{"old-pending": true, "recent-delivered": true}
	if !reflect.DeepEqual(kept, wantKept) {
		t.Errorf("deliveries left %v, want %v", kept, wantKept)
	}
	// The pending delivery of a removed message still goes out.
	if d, err := st.WebhookDeliveryByID(ctx, "old-pending"); err != nil || d.Status != tenant.DeliveryPending || d.MessageID != 0 {
		t.Errorf("old pending delivery %+v, %v; want pending with its message gone", d, err)
	}

	// Nothing more is old enough a second time.
	if n, err := st.RemoveOldMessages(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("second run removed %d, %v; want 0", n, err)
	}
}
