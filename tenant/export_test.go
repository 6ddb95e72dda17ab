package tenant

import (
	"context"
	"time"
)

// SetNow replaces the store's clock, so tests in package tenant_test can
// reach expiry and ordering by moving time instead of sleeping.
func SetNow(s *Store, now func() time.Time) { s.now = now }

// LogReply writes one reply as the pipeline does, through LogReplies,
// keeping its status and WhatsApp id.
func (s *Store) LogReply(ctx context.Context, tenantID string, r Reply) (int64, error) {
	written, err := s.LogReplies(ctx, tenantID, nil, []Reply{r}, func(r Reply) Reply { return r })
	if err != nil {
		return 0, err
	}
	return written[0].ID, nil
}

// MarkWelcomed records a chat's welcome as LogReplies does, and says
// whether it was the first.
func (s *Store) MarkWelcomed(ctx context.Context, tenantID, chat string) (bool, error) {
	res, err := s.db.write.ExecContext(ctx, `INSERT INTO welcomed_chats (tenant_id, chat, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		tenantID, chat, ms(s.now()))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
