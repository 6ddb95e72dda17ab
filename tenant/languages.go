package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// A user's language is their own choice in the portal's header; empty
// means none yet, so the portal follows the browser's Accept-Language.
// A tenant's language picks the bot's built-in replies; empty means its
// first owner's. Codes are BCP 47 ("pt-BR"); the portal checks them.

// UserLanguage is the language the user chose, "" when none.
func (s *Store) UserLanguage(ctx context.Context, userID string) (string, error) {
	var lang string
	err := s.db.read.QueryRowContext(ctx, `SELECT language FROM users WHERE id = ?`, userID).Scan(&lang)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading user language: %w", err)
	}
	return lang, nil
}

// SetUserLanguage stores the user's choice.
func (s *Store) SetUserLanguage(ctx context.Context, userID, lang string) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE users SET language = ? WHERE id = ?`, lang, userID)
	if err != nil {
		return fmt.Errorf("saving user language: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// TenantLanguage is the tenant's language, else its first owner's, else "".
func (s *Store) TenantLanguage(ctx context.Context, tenantID string) (string, error) {
	var lang string
	err := s.db.read.QueryRowContext(ctx, `SELECT COALESCE(NULLIF(t.language, ''),
		(SELECT u.language FROM memberships m JOIN users u ON u.id = m.user_id
		 WHERE m.tenant_id = t.id AND m.role = 'owner' ORDER BY m.created_at, m.user_id LIMIT 1), '')
		FROM tenants t WHERE t.id = ?`, tenantID).Scan(&lang)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading tenant language: %w", err)
	}
	return lang, nil
}

// SetTenantLanguage stores the tenant's language.
func (s *Store) SetTenantLanguage(ctx context.Context, tenantID, lang string) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE tenants SET language = ? WHERE id = ?`, lang, tenantID)
	if err != nil {
		return fmt.Errorf("saving tenant language: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetBotDefaults gives the store the bot's built-in replies per language
// (the portal's translations); without it they are English. Call it
// before the store is used.
func (s *Store) SetBotDefaults(fn func(lang string) (busy, handover string)) { s.botDefaults = fn }

// defaultBotConfigOf is DefaultBotConfig with its replies in the tenant's
// language, so a Brazilian shop's customers are not told to wait in English.
func (s *Store) defaultBotConfigOf(ctx context.Context, tenantID string) BotConfig {
	c := DefaultBotConfig()
	if s.botDefaults == nil {
		return c
	}
	lang, err := s.TenantLanguage(ctx, tenantID)
	if err != nil || lang == "" {
		return c
	}
	if busy, handover := s.botDefaults(lang); busy != "" && handover != "" {
		c.BusyReply, c.Handover.Reply = busy, handover
	}
	return c
}
