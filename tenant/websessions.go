package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebSessions keeps the portal's browser sessions. It is an scs session
// store: the session manager hands it tokens already hashed, so the table
// never holds a cookie's value.
type WebSessions struct{ s *Store }

// WebSessions returns the browser session store.
func (s *Store) WebSessions() WebSessions { return WebSessions{s} }

// FindCtx returns an unexpired session's data.
func (w WebSessions) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var data []byte
	err := w.s.db.read.QueryRowContext(ctx, `SELECT data FROM web_sessions WHERE token = ? AND expiry > ?`, token, ms(w.s.now())).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading a browser session: %w", err)
	}
	return data, true, nil
}

// CommitCtx writes a session, replacing it if it exists.
func (w WebSessions) CommitCtx(ctx context.Context, token string, data []byte, expiry time.Time) error {
	_, err := w.s.db.write.ExecContext(ctx, `INSERT INTO web_sessions (token, data, expiry) VALUES (?, ?, ?)
		ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry`, token, data, ms(expiry))
	if err != nil {
		return fmt.Errorf("writing a browser session: %w", err)
	}
	return nil
}

// DeleteCtx removes a session.
func (w WebSessions) DeleteCtx(ctx context.Context, token string) error {
	if _, err := w.s.db.write.ExecContext(ctx, `DELETE FROM web_sessions WHERE token = ?`, token); err != nil {
		return fmt.Errorf("deleting a browser session: %w", err)
	}
	return nil
}

// Find, Commit and Delete are the context-free forms scs also requires.
func (w WebSessions) Find(token string) ([]byte, bool, error) {
	return w.FindCtx(context.Background(), token)
}

func (w WebSessions) Commit(token string, data []byte, expiry time.Time) error {
	return w.CommitCtx(context.Background(), token, data, expiry)
}

func (w WebSessions) Delete(token string) error { return w.DeleteCtx(context.Background(), token) }

// RemoveExpired deletes sessions past their expiry.
func (w WebSessions) RemoveExpired(ctx context.Context) error {
	if _, err := w.s.db.write.ExecContext(ctx, `DELETE FROM web_sessions WHERE expiry <= ?`, ms(w.s.now())); err != nil {
		return fmt.Errorf("removing expired browser sessions: %w", err)
	}
	return nil
}
