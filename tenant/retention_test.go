package tenant

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openMigrated(t testing.TB) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "wabot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// seedLog writes n answered inbound messages created at `at`, each with
// deliveries outbox rows, straight into the tables (fast enough for
// thousands).
func seedLog(t testing.TB, st *Store, tenantID string, n, deliveries int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	err := st.db.inTx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			var id int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, wa_id, body, status, created_at, updated_at)
				VALUES (?, 'in', 'c@s.whatsapp.net', ?, 'old', 'replied', ?, ?) RETURNING id`, tenantID, fmt.Sprint("w", at.UnixNano(), i), ms(at), ms(at)).Scan(&id); err != nil {
				return err
			}
			for j := range deliveries {
				if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, tenant_id, message_id, url, payload, status, next_attempt_at, created_at, updated_at)
					VALUES (?, ?, ?, 'https://example.com', x'7b7d', 'delivered', 0, ?, ?)`, fmt.Sprint("d", id, "-", j), tenantID, id, ms(at), ms(at)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newTestTenant(t testing.TB, st *Store) string {
	t.Helper()
	ctx := context.Background()
	u, err := st.EnsureUser(ctx, NewID("x")+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, u.ID, "Shop", true)
	if err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

func TestRetentionRemovesOldRowsInBatchesAndKeepsOpenOnes(t *testing.T) {
	st := openMigrated(t)
	ctx := context.Background()
	id := newTestTenant(t, st)
	old := time.Now().Add(-100 * 24 * time.Hour)
	seedLog(t, st, id, 2*removeBatch+500, 2, old)
	seedLog(t, st, id, 3, 1, time.Now())
	for _, status := range []MessageStatus{MsgReceived, MsgPending} {
		if _, err := st.db.write.ExecContext(ctx, `INSERT INTO messages (tenant_id, direction, chat, wa_id, status, created_at, updated_at)
			VALUES (?, 'in', 'c@s.whatsapp.net', ?, ?, ?, ?)`, id, "open-"+status, status, ms(old), ms(old)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := st.RemoveOldMessages(ctx, time.Now().Add(-90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*removeBatch+500 {
		t.Fatalf("removed %d messages, want %d", n, 2*removeBatch+500)
	}
	var left, deliveries int
	st.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&left)
	st.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries`).Scan(&deliveries)
	if left != 5 || deliveries != 3 {
		t.Fatalf("left %d messages and %d deliveries, want the 3 recent and 2 open messages and the 3 recent deliveries", left, deliveries)
	}
}

// Deleting a message touches its deliveries through the foreign key: that
// lookup must use an index, or each deleted message scans the outbox.
func TestOutboxLookupByMessageUsesAnIndex(t *testing.T) {
	st := openMigrated(t)
	rows, err := st.db.read.Query(`EXPLAIN QUERY PLAN SELECT id FROM webhook_deliveries WHERE message_id = 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX") && !strings.Contains(p, "USING COVERING INDEX") {
		t.Fatalf("query plan %q scans the outbox", p)
	}
}

func TestWriterCapsTheWAL(t *testing.T) {
	st := openMigrated(t)
	var limit int64
	if err := st.db.write.QueryRow(`PRAGMA journal_size_limit`).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit != journalSizeLimit {
		t.Fatalf("journal_size_limit %d, want %d", limit, journalSizeLimit)
	}
}

// BenchmarkRetention measures one retention run over 4,000 old messages
// with 10 outbox rows each (the review's case: 12.5 s without the index).
func BenchmarkRetention(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		st := openMigrated(b)
		id := newTestTenant(b, st)
		seedLog(b, st, id, 4000, 10, time.Now().Add(-100*24*time.Hour))
		b.StartTimer()
		if _, err := st.RemoveOldMessages(context.Background(), time.Now().Add(-90*24*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}
