package tenant_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// Instances starting together on an empty PostgreSQL database apply each
// migration once between them, and a database a newer wabot migrated is
// refused.
func TestPostgresMigrationsRunOnceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	url := tenanttest.NewPostgresDatabase(t)
	var stores []*tenant.Store
	for range 3 {
		st, err := tenant.OpenURL(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
	}
	applied := make([]int, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() { applied[i], errs[i] = st.Migrate(ctx) })
	}
	wg.Wait()
	total := 0
	for i := range stores {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != tenant.SchemaVersion() {
		t.Fatalf("%d migrations applied in all, want each of %d once", total, tenant.SchemaVersion())
	}
	if v, err := stores[0].StoredSchemaVersion(ctx); err != nil || v != tenant.SchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", v, err, tenant.SchemaVersion())
	}

	raw := tenanttest.Raw(t, stores[0].Path())
	if _, err := raw.Exec(`UPDATE wabot_schema SET version = ?`, tenant.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].Migrate(ctx); !errors.Is(err, tenant.ErrSchemaTooNew) {
		t.Fatalf("a database from a newer wabot: %v, want ErrSchemaTooNew", err)
	}
}
