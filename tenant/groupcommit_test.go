package tenant_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// TestGroupCommitKeepsEveryWriteApart: many messages stored at once share
// transactions, yet each caller gets its own outcome. A write that fails
// after it wrote leaves nothing behind, the others sharing its transaction
// are all stored and answerable, and every caller returns only once its
// write is settled. A write that panics fails alone too.
func TestGroupCommitKeepsEveryWriteApart(t *testing.T) {
	ctx := context.Background()
	st := tenanttest.Open(t)
	_, a := newTenant(t, st, "a@example.com", "A")
	errBroken := errors.New("broken after writing")
	const n = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := map[int64]bool{}
	for i := range n {
		wg.Go(func() {
			if i%10 == 5 { // writes, then panics: fails alone, nothing stays
				err := st.InGroup(ctx, func(tx *sql.Tx) error {
					tx.ExecContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, sender, wa_id, kind, body, status, error, created_at, updated_at)
						VALUES (?, 'in', ?, ?, ?, 'text', 'half', 'received', '', 0, 0)`, a.ID, chatA, chatA, fmt.Sprintf("PANIC%d", i))
					panic("boom")
				})
				if err == nil {
					t.Errorf("write %d panicked, yet no error", i)
				}
				return
			}
			if i%3 == 0 { // writes a message, then fails: must not stay
				err := st.InGroup(ctx, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, sender, wa_id, kind, body, status, error, created_at, updated_at)
						VALUES (?, 'in', ?, ?, ?, 'text', 'half', 'received', '', 0, 0)`, a.ID, chatA, chatA, fmt.Sprintf("BROKEN%d", i)); err != nil {
						return err
					}
					return errBroken
				})
				if !errors.Is(err, errBroken) {
					t.Errorf("write %d: %v, want its own error", i, err)
				}
				return
			}
			id, dup, err := st.StoreInbound(ctx, a.ID, tenant.Inbound{Chat: chatA, Sender: chatA, WAID: fmt.Sprintf("OK%d", i), Kind: "text", Body: "ping", Status: tenant.MsgReceived})
			if err != nil || dup {
				t.Errorf("message %d: dup %v, %v", i, dup, err)
				return
			}
			mu.Lock()
			stored[id] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	open, err := st.Unanswered(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range open {
		if !stored[in.ID] {
			row, _ := st.InboundByID(ctx, a.ID, in.ID)
			t.Errorf("message %d (%s) is stored though its write failed", in.ID, row.WAID)
		}
		delete(stored, in.ID)
	}
	if len(stored) != 0 {
		t.Errorf("%d messages reported stored are missing", len(stored))
	}
}
