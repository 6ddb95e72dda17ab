package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"wabot/tenant"
)

// logFixture is one tenant's message log with one row per kind of thing a
// filter can pick, plus a neighbour tenant with look-alike rows.
type logFixture struct {
	st      *tenant.Store
	a, b    tenant.Tenant
	byBody  map[string]int64 // tenant a's rows by body
	inOrder []int64          // tenant a's rows, oldest first
}

func newLogFixture(t *testing.T) logFixture {
	t.Helper()
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	_, b := newTenant(t, st, "b@example.com", "B")
	f := logFixture{st: st, a: a, b: b, byBody: map[string]int64{}}
	group := "120363000000000001@g.us"
	rows := []struct {
		chat, sender, name, body string
		status                   tenant.MessageStatus
	}{
		{chatA, chatA, "Ann", "What is the price?", tenant.MsgReplied},
		{chatA, chatA, "Ann", "50% off?", tenant.MsgIgnored},
		{chatA, chatA, "Ann", "500 units", tenant.MsgReceived},
		{chatB, chatB, "Bob_Smith", "order a_b", tenant.MsgReplied},
		{chatB, chatB, "BobXSmith", "order axb", tenant.MsgFailed},
		{group, "15557654321@s.whatsapp.net", "Carol", `back\slash`, tenant.MsgReplied},
	}
	for i, r := range rows {
		clk.Advance(time.Second)
		id := storeIn(t, st, a.ID, tenant.Inbound{Chat: r.chat, Sender: r.sender, SenderName: r.name, WAID: fmt.Sprint("IN", i), Body: r.body, Status: r.status})
		f.byBody[r.body] = id
		f.inOrder = append(f.inOrder, id)
		if r.status == tenant.MsgReplied {
			clk.Advance(time.Second)
			body := "re: " + r.body
			rid, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: id, Chat: r.chat, Sender: "15559999999@s.whatsapp.net", WAID: fmt.Sprint("OUT", i), Body: body, Status: tenant.MsgReplied})
			if err != nil {
				t.Fatal(err)
			}
			f.byBody[body] = rid
			f.inOrder = append(f.inOrder, rid)
		}
		// The neighbour has the same conversation.
		storeIn(t, st, b.ID, tenant.Inbound{Chat: r.chat, Sender: r.sender, SenderName: r.name, WAID: fmt.Sprint("IN", i), Body: r.body, Status: r.status})
	}
	return f
}

func (f logFixture) bodies(ms []tenant.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Body
	}
	return out
}

func TestMessagesPagesNewestFirstWithTheCursor(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	total := len(f.inOrder)
	for _, limit := range []int{1, 2, 3, total - 1, total, total + 1, 200} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			var got []int64
			cursor, pages := "", 0
			for {
				page, next, err := f.st.Messages(ctx, f.a.ID, tenant.MessageQuery{Limit: limit, Before: cursor})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page) > limit || len(page) == 0 {
					t.Fatalf("page %d has %d rows, limit %d", pages, len(page), limit)
				}
				for _, m := range page {
					got = append(got, m.ID)
				}
				if next == "" {
					break
				}
				if next != strconv.FormatInt(page[len(page)-1].ID, 10) {
					t.Errorf("cursor %q is not the last row's id %d", next, page[len(page)-1].ID)
				}
				cursor = next
				if pages > total {
					t.Fatal("paging does not end")
				}
			}
			want := make([]int64, total)
			for i, id := range f.inOrder {
				want[total-1-i] = id
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("paged ids %v, want %v", got, want)
			}
			if wantPages := (total + limit - 1) / limit; pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

func TestMessagesDefaultLimitIs50(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	for i := range 51 {
		storeIn(t, st, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: fmt.Sprint(i), Body: fmt.Sprint(i)})
	}
	for _, limit := range []int{0, -5} {
		page, next, err := st.Messages(ctx, a.ID, tenant.MessageQuery{Limit: limit})
		if err != nil || len(page) != 50 || next == "" {
			t.Errorf("limit %d: %d rows, next %q, %v; want 50 and a cursor", limit, len(page), next, err)
		}
	}
}

func TestMessagesFilters(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	cases := []struct {
		name string
		q    tenant.MessageQuery
		want []string // bodies, newest first
	}{
		{"direction in", tenant.MessageQuery{Direction: "in"},
			[]string{`back\slash`, "order axb", "order a_b", "500 units", "50% off?", "What is the price?"}},
		{"direction out", tenant.MessageQuery{Direction: "out"},
			[]string{`re: back\slash`, "re: order a_b", "re: What is the price?"}},
		{"status replied", tenant.MessageQuery{Status: tenant.MsgReplied},
			[]string{`re: back\slash`, `back\slash`, "re: order a_b", "order a_b", "re: What is the price?", "What is the price?"}},
		{"status and direction", tenant.MessageQuery{Status: tenant.MsgReplied, Direction: "in"},
			[]string{`back\slash`, "order a_b", "What is the price?"}},
		{"status failed", tenant.MessageQuery{Status: tenant.MsgFailed}, []string{"order axb"}},
		{"status with no rows", tenant.MessageQuery{Status: tenant.MsgDropped}, []string{}},
		{"text ignores ASCII case", tenant.MessageQuery{Text: "PRICE"}, []string{"re: What is the price?", "What is the price?"}},
		{"text is trimmed", tenant.MessageQuery{Text: "  price  "}, []string{"re: What is the price?", "What is the price?"}},
		{"blank text is no filter", tenant.MessageQuery{Text: "   ", Direction: "out"}, []string{`re: back\slash`, "re: order a_b", "re: What is the price?"}},
		{"percent is literal", tenant.MessageQuery{Text: "50%"}, []string{"50% off?"}},
		{"underscore is literal", tenant.MessageQuery{Text: "a_b"}, []string{"re: order a_b", "order a_b"}},
		{"underscore in a sender name", tenant.MessageQuery{Text: "Bob_"}, []string{"order a_b"}},
		{"backslash is literal", tenant.MessageQuery{Text: `k\s`}, []string{`re: back\slash`, `back\slash`}},
		{"chat", tenant.MessageQuery{Text: "15550000002"}, []string{"order axb", "re: order a_b", "order a_b"}},
		{"sender name", tenant.MessageQuery{Text: "carol"}, []string{`back\slash`}},
		{"text and direction", tenant.MessageQuery{Text: "order", Direction: "in"}, []string{"order axb", "order a_b"}},
		{"no match", tenant.MessageQuery{Text: "zebra"}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next, err := f.st.Messages(ctx, f.a.ID, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if b := f.bodies(got); !reflect.DeepEqual(b, c.want) {
				t.Errorf("bodies %q, want %q", b, c.want)
			}
			if next != "" {
				t.Errorf("cursor %q on the only page", next)
			}
			for _, m := range got {
				if m.TenantID != f.a.ID {
					t.Errorf("row of tenant %s in tenant %s's log", m.TenantID, f.a.ID)
				}
			}
		})
	}
}

// Paging keeps the filter: every page of a filtered query holds only
// matching rows, and together they hold all of them.
func TestMessagesPagesAFilteredQuery(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	q := tenant.MessageQuery{Direction: "in", Limit: 2}
	var got []string
	for {
		page, next, err := f.st.Messages(ctx, f.a.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if m.Direction != "in" {
				t.Errorf("outgoing row %+v in an inbound query", m)
			}
		}
		got = append(got, f.bodies(page)...)
		if next == "" {
			break
		}
		q.Before = next
	}
	want := []string{`back\slash`, "order axb", "order a_b", "500 units", "50% off?", "What is the price?"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bodies %q, want %q", got, want)
	}
}

func TestMessagesRowHasEveryField(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	clk.Advance(1500 * time.Millisecond)
	in := tenant.Inbound{Chat: chatA, Sender: chatB, SenderName: "Ann", WAID: "3EB0IN", Kind: "image", Body: "caption", Status: tenant.MsgReceived}
	inID := storeIn(t, st, a.ID, in)
	created := clk.Now()
	clk.Advance(time.Second)
	outID, err := st.LogReply(ctx, a.ID, tenant.Reply{InID: inID, Chat: chatA, Sender: "15559999999@s.whatsapp.net", WAID: "3EB0OUT", Body: "thanks", Status: tenant.MsgPending})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := st.SetReplyStatus(ctx, outID, tenant.MsgFailed, "timed out"); err != nil {
		t.Fatal(err)
	}
	got, _, err := st.Messages(ctx, a.ID, tenant.MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := []tenant.Message{
		{ID: outID, TenantID: a.ID, Direction: "out", Chat: chatA, Sender: "15559999999@s.whatsapp.net", WAID: "3EB0OUT", Kind: "text",
			Body: "thanks", Status: tenant.MsgFailed, Error: "timed out", ReplyTo: inID, CreatedAt: created.Add(time.Second), UpdatedAt: clk.Now()},
		{ID: inID, TenantID: a.ID, Direction: "in", Chat: chatA, Sender: chatB, SenderName: "Ann", WAID: "3EB0IN", Kind: "image",
			Body: "caption", Status: tenant.MsgReceived, CreatedAt: created, UpdatedAt: created},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("row %d times %v / %v, want %v / %v", i, g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
		}
		g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestMessagesRefusesBadQueries(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	cases := []struct {
		name  string
		q     tenant.MessageQuery
		code  tenant.Code
		field string
	}{
		{"limit over 200", tenant.MessageQuery{Limit: 201}, tenant.CodeInvalid, "limit"},
		{"cursor not a number", tenant.MessageQuery{Before: "abc"}, tenant.CodeBadRequest, ""},
		{"cursor zero", tenant.MessageQuery{Before: "0"}, tenant.CodeBadRequest, ""},
		{"cursor negative", tenant.MessageQuery{Before: "-3"}, tenant.CodeBadRequest, ""},
		{"cursor with junk", tenant.MessageQuery{Before: "12; DROP TABLE messages"}, tenant.CodeBadRequest, ""},
		{"unknown direction", tenant.MessageQuery{Direction: "sideways"}, tenant.CodeInvalid, "direction"},
		{"direction in capitals", tenant.MessageQuery{Direction: "IN"}, tenant.CodeInvalid, "direction"},
		{"unknown status", tenant.MessageQuery{Status: "deleted"}, tenant.CodeInvalid, "status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next, err := f.st.Messages(ctx, f.a.ID, c.q)
			wantCode(t, err, c.code)
			if got != nil || next != "" {
				t.Errorf("rows %v, cursor %q with the error", got, next)
			}
			var e *tenant.Error
			if c.field != "" && (!errors.As(err, &e) || e.Fields[c.field] == "") {
				t.Errorf("error %v does not name field %q", err, c.field)
			}
		})
	}
	if page, _, err := f.st.Messages(ctx, f.a.ID, tenant.MessageQuery{Limit: 200}); err != nil || len(page) != len(f.inOrder) {
		t.Errorf("limit 200: %d rows, %v", len(page), err)
	}
}

// A tenant's log never shows another tenant's rows, whatever the filter
// or cursor.
func TestMessagesAreTenantIsolated(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	for _, q := range []tenant.MessageQuery{
		{},
		{Direction: "out"},
		{Text: "price"},
		{Status: tenant.MsgReplied},
		{Before: strconv.FormatInt(f.inOrder[len(f.inOrder)-1]+1, 10)},
	} {
		got, _, err := f.st.Messages(ctx, f.b.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if m.TenantID != f.b.ID || m.Direction != "in" {
				t.Errorf("query %+v for b returned %+v", q, m)
			}
			for _, id := range f.inOrder {
				if m.ID == id {
					t.Errorf("query %+v for b returned a's row %d", q, id)
				}
			}
		}
	}
	if got, next, err := f.st.Messages(ctx, "taaaaaaaaaaaaaaaa", tenant.MessageQuery{}); err != nil || len(got) != 0 || next != "" {
		t.Errorf("unknown tenant: %v, %q, %v; want nothing", got, next, err)
	}
}

// In a group the participant's number is only in the sender: searching
// the log for it finds their messages.
func TestMessagesSearchFindsAGroupParticipantByNumber(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	storeIn(t, st, a.ID, tenant.Inbound{Chat: "120363000000000001@g.us", Sender: "15557654321@s.whatsapp.net",
		SenderName: "Carol", WAID: "G1", Body: "hello group"})
	got, _, err := st.Messages(ctx, a.ID, tenant.MessageQuery{Text: "15557654321"})
	if err != nil || len(got) != 1 {
		t.Fatalf("search by the participant's number found %d messages (%v), want 1", len(got), err)
	}
}
