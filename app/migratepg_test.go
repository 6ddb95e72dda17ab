package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wabot/app"
	"wabot/app/apptest"
	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// An SQLite installation with linked tenants, copied by wabot
// migrate-to-postgres, comes back on PostgreSQL with every tenant linked
// (no new QR code) and its message log; a second copy into the same
// database is refused.
func TestMigrateToPostgresKeepsTenantsLinked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	folders := map[string]string{
		"WABOT_DATA_DIR":     filepath.Join(dir, "data"),
		"WABOT_SESSIONS_DIR": filepath.Join(dir, "sessions"),
	}
	fake := fakewatest.NewServer(t, fakewa.Options{})
	// Two workspaces exist before wabot starts, so it runs their sessions.
	if err := os.MkdirAll(folders["WABOT_DATA_DIR"], 0o700); err != nil {
		t.Fatal(err)
	}
	before := tenanttest.OpenAt(t, filepath.Join(folders["WABOT_DATA_DIR"], "wabot.db"))
	var ids []string
	for _, name := range []string{"Bakery", "Florist"} {
		u, err := before.EnsureUser(ctx, strings.ToLower(name)+"@example.com")
		if err != nil {
			t.Fatal(err)
		}
		tn, err := before.CreateTenant(ctx, u.ID, name, true)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
	}
	before.Close()
	sqlite := apptest.Start(t, apptest.Options{Env: folders, Fake: fake, LogOnFailure: true})
	st := sqlite.Store()

	type linked struct {
		id, jid string
		contact *fakewa.Contact
	}
	var tenants []linked
	for i, id := range ids {
		name := []string{"Bakery", "Florist"}[i]
		tn := tenant.Tenant{ID: id}
		// A link attempt, as `wabot tenant reset` starts one.
		if _, err := st.RequestControl(ctx, tn.ID, tenant.ActionReset); err != nil {
			t.Fatal(err)
		}
		s := waitLink(t, st, tn.ID, "a QR code", func(l tenant.Link) bool { return l.State == tenant.StateQRReady })
		phone := fake.NewPhone("")
		if _, err := phone.Scan(ctx, s.QRCode); err != nil {
			t.Fatal(err)
		}
		s = waitLink(t, st, tn.ID, "CONNECTED", func(l tenant.Link) bool { return l.State == tenant.StateConnected })
		contact := phone.NewContact("", "Customer of "+name)
		if _, err := contact.Send("hello " + name); err != nil {
			t.Fatal(err)
		}
		rigtest.WaitFor(t, 20*time.Second, "the message in the log", func() bool {
			msgs, _, err := st.Messages(ctx, tn.ID, tenant.MessageQuery{Limit: 10})
			return err == nil && len(msgs) == 1
		})
		tenants = append(tenants, linked{id: tn.ID, jid: s.JID, contact: contact})
	}
	sctx, cancel := context.WithTimeout(ctx, app.ShutdownTimeout)
	defer cancel()
	if err := sqlite.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	pgURL := tenanttest.NewPostgresDatabase(t)
	env := func(k string) string {
		if k == "WABOT_DATABASE_URL" {
			return pgURL
		}
		return folders[k]
	}
	var out bytes.Buffer
	if err := app.Run(ctx, []string{"migrate-to-postgres"}, env, &out, &out); err != nil {
		t.Fatalf("migrate-to-postgres: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{"messages", "whatsmeow_device", "copied", "2 linked tenants"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}

	pgEnv := map[string]string{"WABOT_DATABASE_URL": pgURL}
	for k, v := range folders {
		pgEnv[k] = v
	}
	pg := apptest.Start(t, apptest.Options{Env: pgEnv, Fake: fake, LogOnFailure: true})
	if pg.Store().Dialect() != tenant.Postgres {
		t.Fatalf("wabot started on %s, want PostgreSQL", pg.Store().Dialect())
	}
	for _, tn := range tenants {
		s := waitLink(t, pg.Store(), tn.id, "CONNECTED from PostgreSQL", func(l tenant.Link) bool { return l.State == tenant.StateConnected })
		if s.JID != tn.jid || s.QRCode != "" {
			t.Fatalf("tenant %s after the move: %+v, want linked as %s without a QR code", tn.id, s, tn.jid)
		}
		msgs, _, err := pg.Store().Messages(ctx, tn.id, tenant.MessageQuery{Limit: 10})
		if err != nil || len(msgs) != 1 || !strings.HasPrefix(msgs[0].Body, "hello ") {
			t.Fatalf("tenant %s's log after the move: %+v %v", tn.id, msgs, err)
		}
		// The moved device still decrypts what its customers send.
		if _, err := tn.contact.Send("still there?"); err != nil {
			t.Fatal(err)
		}
		rigtest.WaitFor(t, 20*time.Second, "the new message in the log", func() bool {
			msgs, _, err := pg.Store().Messages(ctx, tn.id, tenant.MessageQuery{Limit: 10})
			return err == nil && len(msgs) == 2 && msgs[0].Body == "still there?"
		})
	}

	out.Reset()
	err := app.Run(ctx, []string{"migrate-to-postgres"}, env, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second copy into the same database: %v, want a refusal", err)
	}
}

func waitLink(t *testing.T, st *tenant.Store, id, what string, ok func(tenant.Link) bool) tenant.Link {
	t.Helper()
	var l tenant.Link
	rigtest.WaitFor(t, 30*time.Second, what, func() bool {
		var err error
		l, err = st.LinkOf(context.Background(), id)
		return err == nil && ok(l)
	})
	return l
}
