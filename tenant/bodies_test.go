package tenant_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"wabot/tenant"
)

// A body past the cap is stored cut, on a character boundary, for both
// directions; the reply written is the reply stored (and so the one sent).
func TestStoredBodiesAreCapped(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	_, tn := newTenant(t, st, "ann@example.com", "Ann's")
	huge := "x" + strings.Repeat("€", tenant.MaxBodyBytes) // 3 bytes each
	in := storeIn(t, st, tn.ID, tenant.Inbound{Chat: "1@s.whatsapp.net", Sender: "1@s.whatsapp.net", WAID: "w1", Body: huge, SenderName: strings.Repeat("n", 10000)})
	row, err := st.InboundByID(ctx, tn.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(row.Body) > tenant.MaxBodyBytes || !utf8.ValidString(row.Body) || !strings.HasPrefix(huge, row.Body) || len(row.Body) < tenant.MaxBodyBytes-3 {
		t.Errorf("inbound body stored as %d bytes (valid UTF-8: %v), want the first %d bytes at most", len(row.Body), utf8.ValidString(row.Body), tenant.MaxBodyBytes)
	}
	if len(row.SenderName) > 256 {
		t.Errorf("sender name stored as %d bytes", len(row.SenderName))
	}
	written, err := st.LogReplies(ctx, tn.ID, nil, []tenant.Reply{{InID: in, Chat: "1@s.whatsapp.net", Body: huge}},
		func(r tenant.Reply) tenant.Reply { r.Status, r.WAID = tenant.MsgPending, "out1"; return r })
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.RepliesTo(ctx, in)
	if err != nil || len(stored) != 1 {
		t.Fatalf("RepliesTo: %v, %v", stored, err)
	}
	if len(stored[0].Body) > tenant.MaxBodyBytes || stored[0].Body != written[0].Body {
		t.Errorf("reply stored as %d bytes, written as %d: want the same, at most %d", len(stored[0].Body), len(written[0].Body), tenant.MaxBodyBytes)
	}
}

// A page of the log is bounded by its bodies' size as well as its rows,
// and the cursor still walks every row once.
func TestMessagesPageBySize(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	_, tn := newTenant(t, st, "ann@example.com", "Ann's")
	const n = 40
	body := strings.Repeat("b", tenant.MaxBodyBytes)
	for i := range n {
		storeIn(t, st, tn.ID, tenant.Inbound{Chat: "1@s.whatsapp.net", Sender: "1@s.whatsapp.net", WAID: "w" + string(rune('A'+i)), Body: body})
	}
	seen := map[int64]bool{}
	pages := 0
	for before := ""; ; pages++ {
		page, next, err := st.Messages(ctx, tn.ID, tenant.MessageQuery{Limit: 200, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, m := range page {
			size += len(m.Body)
			if seen[m.ID] {
				t.Fatalf("message %d on two pages", m.ID)
			}
			seen[m.ID] = true
		}
		if size > tenant.MaxPageBytes {
			t.Fatalf("a page of %d rows carries %d bytes of bodies, more than %d", len(page), size, tenant.MaxPageBytes)
		}
		if next == "" {
			break
		}
		before = next
	}
	if len(seen) != n || pages < 2 {
		t.Errorf("walked %d of %d messages in %d pages", len(seen), n, pages+1)
	}

	// A preview cuts each body and says so; the row itself has it whole.
	page, _, err := st.Messages(ctx, tn.ID, tenant.MessageQuery{Limit: 50, Preview: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != n {
		t.Errorf("a page of previews has %d rows, want all %d", len(page), n)
	}
	if m := page[0]; utf8.RuneCountInString(m.Body) != 100 || !m.Cut {
		t.Errorf("preview of %d characters, cut %v", utf8.RuneCountInString(m.Body), m.Cut)
	}
	whole, err := st.MessageByID(ctx, tn.ID, page[0].ID)
	if err != nil || whole.Body != body || whole.Cut {
		t.Errorf("MessageByID: %d bytes, cut %v, %v", len(whole.Body), whole.Cut, err)
	}
	_, other := newTenant(t, st, "bob@example.com", "Bob's")
	_, err = st.MessageByID(ctx, other.ID, page[0].ID)
	wantNotFound(t, err)
}
