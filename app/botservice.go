package app

import (
	"context"

	"wabot/tenant"
)

// botService stores bot configurations for the portal.
type botService struct {
	store        *tenant.Store
	allowPrivate bool
}

func newBotService(st *tenant.Store, allowPrivate bool) *botService {
	return &botService{store: st, allowPrivate: allowPrivate}
}

func (b *botService) Config(ctx context.Context, tenantID string) (tenant.BotConfig, error) {
	return b.store.BotConfigOf(ctx, tenantID)
}

func (b *botService) SaveConfig(ctx context.Context, tenantID string, cfg tenant.BotConfig) (tenant.BotConfig, error) {
	return b.store.SaveBotConfig(ctx, tenantID, cfg)
}
