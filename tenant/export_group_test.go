package tenant

import (
	"context"
	"database/sql"
)

// InGroup exposes the group commit to tests in package tenant_test.
func (s *Store) InGroup(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.inGroup(ctx, fn)
}
