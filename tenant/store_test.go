package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

func TestOpenNeedsAnExistingFolder(t *testing.T) {
	if st, err := tenant.Open(filepath.Join(t.TempDir(), "missing", "wabot.db")); err == nil {
		st.Close()
		t.Fatal("Open created a database in a folder that does not exist")
	}
	st, _ := openStore(t)
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, err := st.StoredSchemaVersion(context.Background()); err != nil || v != tenant.SchemaVersion() {
		t.Errorf("stored schema version %d, %v; want %d", v, err, tenant.SchemaVersion())
	}
}

func TestCreateTenantValidatesTheName(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, in, want string // want "" means refused
	}{
		{"plain", "Acme", "Acme"},
		{"trimmed", "  Acme Bakery \t", "Acme Bakery"},
		{"80 runes", strings.Repeat("é", 80), strings.Repeat("é", 80)},
		{"empty", "", ""},
		{"blank", "   ", ""},
		{"81 runes", strings.Repeat("a", 81), ""},
		{"newline", "Acme\nBakery", ""},
		{"carriage return", "Acme\rBakery", ""},
		{"NUL", "Acme\x00", ""},
	}
	st, _ := openStore(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := st.EnsureUser(ctx, "owner"+string(rune('a'+i))+"@example.com")
			if err != nil {
				t.Fatal(err)
			}
			tn, err := st.CreateTenant(ctx, u.ID, c.in, true)
			if c.want == "" {
				wantCode(t, err, tenant.CodeInvalid)
				var e *tenant.Error
				if !errors.As(err, &e) || e.Fields["name"] == "" {
					t.Errorf("error %v does not name the field", err)
				}
				if tn != (tenant.Tenant{}) {
					t.Errorf("got tenant %+v with the error", tn)
				}
				if _, err := st.TenantOfUser(ctx, u.ID); !errors.Is(err, tenant.ErrNotFound) {
					t.Errorf("a refused name left the user with a tenant: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tn.Name != c.want || !tenant.ValidTenantID(tn.ID) {
				t.Errorf("created %+v, want name %q and a valid id", tn, c.want)
			}
		})
	}
}

func TestCreateTenantSeveralPerUserUpToALimit(t *testing.T) {
	ctx := context.Background()
	for _, auto := range []bool{true, false} {
		st, clk := openStore(t)
		u, err := st.EnsureUser(ctx, "owner@example.com")
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		tn, err := st.CreateTenant(ctx, u.ID, "Acme", auto)
		if err != nil {
			t.Fatal(err)
		}
		want := tenant.StatusPending
		if auto {
			want = tenant.StatusActive
		}
		if tn.Status != want || !tn.CreatedAt.Equal(clk.Now()) || !tn.UpdatedAt.Equal(clk.Now()) {
			t.Errorf("autoApprove %v: created %+v, want status %s at %v", auto, tn, want, clk.Now())
		}
		for name, get := range map[string]func() (tenant.Tenant, error){
			"TenantByID":   func() (tenant.Tenant, error) { return st.TenantByID(ctx, tn.ID) },
			"TenantOfUser": func() (tenant.Tenant, error) { return st.TenantOfUser(ctx, u.ID) },
		} {
			got, err := get()
			if err != nil || got.ID != tn.ID || got.Name != tn.Name || got.Status != tn.Status ||
				!got.CreatedAt.Equal(tn.CreatedAt) || !got.UpdatedAt.Equal(tn.UpdatedAt) {
				t.Errorf("%s = %+v, %v; want %+v", name, got, err, tn)
			}
		}
		if owner, err := st.UserByID(ctx, u.ID); err != nil || owner.TenantID != tn.ID {
			t.Errorf("owner %+v, %v; want tenant %s", owner, err, tn.ID)
		}
		// It comes with a session waiting for a QR code and a stopped worker.
		if s, err := st.LinkOf(ctx, tn.ID); err != nil || s.State != tenant.StateQRPending || s.TenantID != tn.ID {
			t.Errorf("session %+v, %v", s, err)
		}
		if w, err := st.WorkerOf(ctx, tn.ID); err != nil || w.Status != tenant.WorkerStopped || w.TenantID != tn.ID || !w.LastSeenAt.IsZero() {
			t.Errorf("worker %+v, %v", w, err)
		}

		// A second workspace is allowed (an agency's), up to the limit;
		// the user's default tenant stays the first.
		for i := 2; i <= tenant.MaxOwnedTenants; i++ {
			clk.Advance(time.Millisecond)
			if _, err := st.CreateTenant(ctx, u.ID, fmt.Sprintf("Acme %d", i), true); err != nil {
				t.Fatalf("workspace %d: %v", i, err)
			}
		}
		_, err = st.CreateTenant(ctx, u.ID, "One too many", true)
		wantCode(t, err, tenant.CodeConflict)
		if all, err := st.Tenants(ctx); err != nil || len(all) != tenant.MaxOwnedTenants {
			t.Errorf("after a conflict: %d tenants, %v; want %d", len(all), err, tenant.MaxOwnedTenants)
		}
		if owner, err := st.UserByID(ctx, u.ID); err != nil || owner.TenantID != tn.ID {
			t.Errorf("owner of several %+v, %v; want first tenant %s", owner, err, tn.ID)
		}
	}
}

func TestCreateTenantForAnUnknownUser(t *testing.T) {
	st, _ := openStore(t)
	_, err := st.CreateTenant(context.Background(), "unobody", "Acme", true)
	wantNotFound(t, err)
	if all, err := st.Tenants(context.Background()); err != nil || len(all) != 0 {
		t.Errorf("%d tenants, %v; want none", len(all), err)
	}
}

func TestTenantLookupsReportNotFound(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	loner, err := st.EnsureUser(ctx, "loner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	newTenant(t, st, "owner@example.com", "Acme")
	for name, get := range map[string]func() (tenant.Tenant, error){
		"TenantByID of an unknown id":      func() (tenant.Tenant, error) { return st.TenantByID(ctx, "taaaaaaaaaaaaaaaa") },
		"TenantOfUser without a tenant":    func() (tenant.Tenant, error) { return st.TenantOfUser(ctx, loner.ID) },
		"TenantOfUser of an unknown user":  func() (tenant.Tenant, error) { return st.TenantOfUser(ctx, "unobody") },
		"TenantByID of the empty string":   func() (tenant.Tenant, error) { return st.TenantByID(ctx, "") },
		"TenantOfUser of the empty string": func() (tenant.Tenant, error) { return st.TenantOfUser(ctx, "") },
	} {
		got, err := get()
		if got != (tenant.Tenant{}) || !errors.Is(err, tenant.ErrNotFound) || tenant.ErrorCode(err) != tenant.CodeNotFound {
			t.Errorf("%s = %+v, %v; want the zero tenant and ErrNotFound", name, got, err)
		}
	}
	for name, get := range map[string]func() error{
		"SessionOf": func() error { _, err := st.LinkOf(ctx, "taaaaaaaaaaaaaaaa"); return err },
		"WorkerOf":  func() error { _, err := st.WorkerOf(ctx, "taaaaaaaaaaaaaaaa"); return err },
	} {
		if err := get(); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("%s of an unknown tenant: %v, want ErrNotFound", name, err)
		}
	}
}

func TestTransitionTenantStatusOnlyFromTheGivenStatus(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		current     tenant.Status
		from, to    tenant.Status
		wantChanged bool
	}{
		{"session failure turns ACTIVE into ERROR", tenant.StatusActive, tenant.StatusActive, tenant.StatusError, true},
		{"recovery turns ERROR into ACTIVE", tenant.StatusError, tenant.StatusError, tenant.StatusActive, true},
		{"a failure leaves PENDING alone", tenant.StatusPending, tenant.StatusActive, tenant.StatusError, false},
		{"a failure leaves SUSPENDED alone", tenant.StatusSuspended, tenant.StatusActive, tenant.StatusError, false},
		{"a recovery leaves SUSPENDED alone", tenant.StatusSuspended, tenant.StatusError, tenant.StatusActive, false},
		{"a recovery leaves ACTIVE alone", tenant.StatusActive, tenant.StatusError, tenant.StatusActive, false},
	}
	st, clk := openStore(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, tn := newTenant(t, st, "owner"+string(rune('a'+i))+"@example.com", "Acme")
			if err := st.SetTenantStatus(ctx, tn.ID, c.current); err != nil {
				t.Fatal(err)
			}
			before := clk.Now()
			clk.Advance(time.Minute)
			changed, err := st.TransitionTenantStatus(ctx, tn.ID, c.from, c.to)
			if err != nil || changed != c.wantChanged {
				t.Fatalf("TransitionTenantStatus = %v, %v; want %v", changed, err, c.wantChanged)
			}
			got, err := st.TenantByID(ctx, tn.ID)
			if err != nil {
				t.Fatal(err)
			}
			want, wantUpdated := c.current, before
			if c.wantChanged {
				want, wantUpdated = c.to, clk.Now()
			}
			if got.Status != want || !got.UpdatedAt.Equal(wantUpdated) {
				t.Errorf("now %s updated %v, want %s updated %v", got.Status, got.UpdatedAt, want, wantUpdated)
			}
		})
	}
	if changed, err := st.TransitionTenantStatus(ctx, "taaaaaaaaaaaaaaaa", tenant.StatusActive, tenant.StatusError); err != nil || changed {
		t.Errorf("unknown tenant: %v, %v; want false, nil", changed, err)
	}
}

func TestSetTenantStatus(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, tn := newTenant(t, st, "owner@example.com", "Acme")
	for _, s := range tenant.Statuses {
		if err := st.SetTenantStatus(ctx, tn.ID, s); err != nil {
			t.Fatal(err)
		}
		if got, err := st.TenantByID(ctx, tn.ID); err != nil || got.Status != s {
			t.Errorf("status %s, %v; want %s", got.Status, err, s)
		}
	}
	wantNotFound(t, st.SetTenantStatus(ctx, "taaaaaaaaaaaaaaaa", tenant.StatusActive))
	if err := st.SetTenantStatus(ctx, tn.ID, "DELETED"); err == nil {
		t.Error("an unknown status was stored")
	}
}

func TestTenantsOldestFirst(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	var want []string
	for _, e := range []string{"c@example.com", "a@example.com", "b@example.com"} {
		clk.Advance(time.Second)
		_, tn := newTenant(t, st, e, "T "+e)
		want = append(want, tn.ID)
	}
	all, err := st.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tn := range all {
		got = append(got, tn.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Tenants = %v, want %v", got, want)
	}
}

func TestSessionRowRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, tn := newTenant(t, st, "owner@example.com", "Acme")
	full := tenant.Link{
		TenantID:          tn.ID,
		State:             tenant.StateConnected,
		QRCode:            "2@abc,def,ghi",
		QRDataURI:         "data:image/png;base64,iVBOR",
		QRUpdatedAt:       t0.Add(-2 * time.Minute),
		QRExpiresAt:       t0.Add(20*time.Second + 123*time.Millisecond),
		PairCode:          "ABCD-EFGH",
		JID:               "15551234567:3@s.whatsapp.net",
		PushName:          "Acme Shop",
		ConnectedAt:       t0.Add(-time.Minute),
		ErrorCode:         "stream_replaced",
		LastError:         "replaced by another session",
		ReconnectAttempts: 3,
		Reconnects:        17,
	}
	steps := []struct {
		name string
		save tenant.Link
	}{
		{"every field", full},
		{"cleared again", tenant.Link{TenantID: tn.ID, State: tenant.StateLoggedOut}},
		{"every field once more", full},
	}
	for _, s := range steps {
		clk.Advance(time.Second)
		if err := st.SaveLink(ctx, s.save); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := st.LinkOf(ctx, tn.ID)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.save
		want.UpdatedAt = clk.Now() // the store stamps it
		if !sameSession(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", s.name, got, want)
		}
	}
}

// sameSession compares sessions field by field, times by instant.
func sameSession(a, b tenant.Link) bool {
	times := [][2]time.Time{{a.QRUpdatedAt, b.QRUpdatedAt}, {a.QRExpiresAt, b.QRExpiresAt}, {a.ConnectedAt, b.ConnectedAt}, {a.UpdatedAt, b.UpdatedAt}}
	for _, p := range times {
		if !p[0].Equal(p[1]) {
			return false
		}
	}
	a.QRUpdatedAt, a.QRExpiresAt, a.ConnectedAt, a.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	b.QRUpdatedAt, b.QRExpiresAt, b.ConnectedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

func TestWorkerRowRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	_, tn := newTenant(t, st, "owner@example.com", "Acme")
	seen := t0.Add(30*time.Second + 7*time.Millisecond)
	steps := []struct {
		name     string
		save     tenant.Worker
		wantSeen time.Time
	}{
		{"starting, never seen", tenant.Worker{TenantID: tn.ID, Status: tenant.WorkerStarting}, time.Time{}},
		{"running, seen", tenant.Worker{TenantID: tn.ID, Status: tenant.WorkerRunning, LastSeenAt: seen}, seen},
		{"crashed, a zero LastSeenAt keeps the stored one", tenant.Worker{TenantID: tn.ID, Status: tenant.WorkerCrashed, Restarts: 4}, seen},
		{"running again, seen later", tenant.Worker{TenantID: tn.ID, Status: tenant.WorkerRunning, Restarts: 4, LastSeenAt: seen.Add(time.Hour)}, seen.Add(time.Hour)},
		{"stopped", tenant.Worker{TenantID: tn.ID, Status: tenant.WorkerStopped, Restarts: 5}, seen.Add(time.Hour)},
	}
	for _, s := range steps {
		clk.Advance(time.Second)
		if err := st.SaveWorker(ctx, s.save); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := st.WorkerOf(ctx, tn.ID)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.TenantID != tn.ID || got.Status != s.save.Status || got.Restarts != s.save.Restarts ||
			!got.LastSeenAt.Equal(s.wantSeen) || !got.UpdatedAt.Equal(clk.Now()) {
			t.Errorf("%s: got %+v, want status %s restarts %d seen %v updated %v",
				s.name, got, s.save.Status, s.save.Restarts, s.wantSeen, clk.Now())
		}
	}
}

func TestOverviewsFilterBySessionState(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	type row struct {
		owner  string
		state  tenant.LinkState
		status tenant.Status
		worker tenant.WorkerStatus
	}
	rows := []row{
		{"a@example.com", tenant.StateConnected, tenant.StatusActive, tenant.WorkerRunning},
		{"b@example.com", tenant.StateQRReady, tenant.StatusPending, tenant.WorkerRunning},
		{"c@example.com", tenant.StateConnected, tenant.StatusSuspended, tenant.WorkerStopped},
		{"d@example.com", tenant.StateError, tenant.StatusError, tenant.WorkerCrashed},
	}
	tenantOf := map[string]string{}
	for i, r := range rows {
		clk.Advance(time.Minute)
		_, tn := newTenant(t, st, r.owner, "T"+r.owner)
		tenantOf[tn.ID] = r.owner
		if err := st.SetTenantStatus(ctx, tn.ID, r.status); err != nil {
			t.Fatal(err)
		}
		s := tenant.Link{TenantID: tn.ID, State: r.state, JID: "1555000000" + string(rune('0'+i)) + "@s.whatsapp.net",
			PushName: "Shop " + r.owner, ConnectedAt: clk.Now().Add(-time.Second), ErrorCode: tenant.Problem("code" + r.owner), LastError: "err " + r.owner,
			ReconnectAttempts: i, Reconnects: 10 * i}
		if err := st.SaveLink(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveWorker(ctx, tenant.Worker{TenantID: tn.ID, Status: r.worker, Restarts: i, LastSeenAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.Overviews(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(rows) {
		t.Fatalf("Overviews(\"\") listed %d, want %d", len(all), len(rows))
	}
	for i, o := range all {
		r := rows[i]
		created := t0.Add(time.Duration(i+1) * time.Minute)
		if o.Owner != r.owner || tenantOf[o.Tenant.ID] != r.owner || o.Tenant.Status != r.status || !o.Tenant.CreatedAt.Equal(created) {
			t.Errorf("overview %d: tenant %+v owner %q, want %s %s created %v", i, o.Tenant, o.Owner, r.owner, r.status, created)
		}
		if o.Link.TenantID != o.Tenant.ID || o.Link.State != r.state || o.Link.PushName != "Shop "+r.owner ||
			string(o.Link.ErrorCode) != "code"+r.owner || o.Link.LastError != "err "+r.owner || !strings.HasPrefix(o.Link.JID, "1555000000") ||
			o.Link.ReconnectAttempts != i || o.Link.Reconnects != 10*i || !o.Link.ConnectedAt.Equal(created.Add(-time.Second)) {
			t.Errorf("overview %d: session %+v", i, o.Link)
		}
		if o.Worker.TenantID != o.Tenant.ID || o.Worker.Status != r.worker || o.Worker.Restarts != i || !o.Worker.LastSeenAt.Equal(created) {
			t.Errorf("overview %d: worker %+v", i, o.Worker)
		}
	}
	for _, c := range []struct {
		state tenant.LinkState
		want  []string
	}{
		{tenant.StateConnected, []string{"a@example.com", "c@example.com"}},
		{tenant.StateQRReady, []string{"b@example.com"}},
		{tenant.StateError, []string{"d@example.com"}},
		{tenant.StateLoggedOut, nil},
	} {
		got, err := st.Overviews(ctx, c.state)
		if err != nil {
			t.Fatal(err)
		}
		var owners []string
		for _, o := range got {
			if o.Link.State != c.state {
				t.Errorf("Overviews(%s) listed a %s session", c.state, o.Link.State)
			}
			owners = append(owners, o.Owner)
		}
		if !reflect.DeepEqual(owners, c.want) {
			t.Errorf("Overviews(%s) owners %v, want %v", c.state, owners, c.want)
		}
	}
}

func TestBotConfigIsTheDefaultUntilSaved(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, tn := newTenant(t, st, "owner@example.com", "Acme")
	for _, id := range []string{tn.ID, "taaaaaaaaaaaaaaaa"} {
		got, err := st.BotConfigOf(ctx, id)
		if err != nil || !reflect.DeepEqual(got, tenant.DefaultBotConfig()) {
			t.Errorf("BotConfigOf(%s) = %+v, %v; want the default", id, got, err)
		}
	}
}

func TestSaveBotConfigRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	_, tn := newTenant(t, st, "owner@example.com", "Acme")
	in := tenant.BotConfig{
		Enabled:       true,
		ReplyInGroups: true,
		Rules: []tenant.Rule{
			{Match: " Exact ", Pattern: "  hours ", Reply: "9 to 5"},
			{Match: "REGEX", Pattern: ` order\s+(\d+) `, Reply: "order {{text}}"},
		},
		WelcomeReply:  "Hi {{name}}",
		FallbackReply: "Sorry?",
		BusyReply:     "",
		Webhook:       tenant.Webhook{URL: " https://hooks.example.com/wabot "},
		Limits:        tenant.Limits{QueuePerChat: 0, PerChatPerMinute: 0, PerTenantPerMinute: 500},
	}
	saved, err := st.SaveBotConfig(ctx, tn.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Rules = []tenant.Rule{
		{Match: tenant.MatchExact, Pattern: "hours", Reply: "9 to 5"},
		{Match: tenant.MatchRegex, Pattern: ` order\s+(\d+) `, Reply: "order {{text}}"}, // a regex keeps its spaces
	}
	want.Webhook.URL = "https://hooks.example.com/wabot"
	want.Webhook.Secret = saved.Webhook.Secret
	want.Limits.QueuePerChat = tenant.DefaultBotConfig().Limits.QueuePerChat
	def := tenant.DefaultBotConfig().AI
	want.AI = tenant.AI{MaxAnswerChars: def.MaxAnswerChars, TimeoutSeconds: def.TimeoutSeconds, OnFailure: def.OnFailure}
	if len(saved.Webhook.Secret) < 26 {
		t.Errorf("a webhook without a secret got secret %q, want a random one of 128 bits or more", saved.Webhook.Secret)
	}
	if !reflect.DeepEqual(saved, want) {
		t.Errorf("SaveBotConfig returned\n %+v\nwant\n %+v", saved, want)
	}
	got, err := st.BotConfigOf(ctx, tn.ID)
	if err != nil || !reflect.DeepEqual(got, saved) {
		t.Errorf("BotConfigOf = %+v, %v\nwant %+v", got, err, saved)
	}

	// Saving again replaces it, and a given secret is kept.
	next := tenant.DefaultBotConfig()
	next.Enabled = false
	next.Webhook = tenant.Webhook{URL: "http://10.0.0.1:8080/in", Secret: "s3cret"}
	if _, err := st.SaveBotConfig(ctx, tn.ID, next); err != nil {
		t.Fatal(err)
	}
	got, err = st.BotConfigOf(ctx, tn.ID)
	if err != nil || !reflect.DeepEqual(got, next) {
		t.Errorf("after a second save BotConfigOf = %+v, %v\nwant %+v", got, err, next)
	}
}

func TestSaveBotConfigNamesEveryBadField(t *testing.T) {
	ctx := context.Background()
	valid := tenant.Rule{Match: tenant.MatchContains, Pattern: "price", Reply: "see the list"}
	long := strings.Repeat("x", tenant.MaxReplyLength+1)
	cases := []struct {
		name   string
		change func(c *tenant.BotConfig)
		fields []string
	}{
		{"unknown match", func(c *tenant.BotConfig) { c.Rules = []tenant.Rule{valid, {Match: "fuzzy", Pattern: "a", Reply: "b"}} }, []string{"rules[1].match"}},
		{"blank pattern", func(c *tenant.BotConfig) { c.Rules = []tenant.Rule{{Match: "exact", Pattern: "  ", Reply: "b"}} }, []string{"rules[0].pattern"}},
		{"long pattern", func(c *tenant.BotConfig) {
			c.Rules = []tenant.Rule{{Match: "exact", Pattern: strings.Repeat("p", tenant.MaxPatternLength+1), Reply: "b"}}
		}, []string{"rules[0].pattern"}},
		{"bad regex", func(c *tenant.BotConfig) {
			c.Rules = []tenant.Rule{valid, valid, {Match: "regex", Pattern: "(unclosed", Reply: "b"}}
		}, []string{"rules[2].pattern"}},
		{"blank reply", func(c *tenant.BotConfig) { c.Rules = []tenant.Rule{{Match: "exact", Pattern: "a", Reply: " "}} }, []string{"rules[0].reply"}},
		{"long reply", func(c *tenant.BotConfig) { c.Rules = []tenant.Rule{{Match: "exact", Pattern: "a", Reply: long}} }, []string{"rules[0].reply"}},
		{"too many rules", func(c *tenant.BotConfig) {
			c.Rules = make([]tenant.Rule, tenant.MaxRules+1)
			for i := range c.Rules {
				c.Rules[i] = valid
			}
		}, []string{"rules"}},
		{"long canned replies", func(c *tenant.BotConfig) { c.WelcomeReply, c.FallbackReply, c.BusyReply = long, long, long },
			[]string{"welcome_reply", "fallback_reply", "busy_reply"}},
		{"webhook not http", func(c *tenant.BotConfig) { c.Webhook.URL = "ftp://example.com/x" }, []string{"webhook.url"}},
		{"webhook without host", func(c *tenant.BotConfig) { c.Webhook.URL = "https:///x" }, []string{"webhook.url"}},
		{"webhook with a password", func(c *tenant.BotConfig) { c.Webhook.URL = "https://u:p@example.com/x" }, []string{"webhook.url"}},
		{"webhook URL too long", func(c *tenant.BotConfig) {
			c.Webhook.URL = "https://example.com/" + strings.Repeat("a", tenant.MaxURLLength)
		}, []string{"webhook.url"}},
		{"long secret", func(c *tenant.BotConfig) { c.Webhook.Secret = strings.Repeat("s", 257) }, []string{"webhook.secret"}},
		{"limits out of range", func(c *tenant.BotConfig) {
			c.Limits = tenant.Limits{QueuePerChat: 1001, PerChatPerMinute: -1, PerTenantPerMinute: 100001}
		}, []string{"limits.queue_per_chat", "limits.per_chat_per_minute", "limits.per_tenant_per_minute"}},
		{"negative queue", func(c *tenant.BotConfig) { c.Limits.QueuePerChat = -1 }, []string{"limits.queue_per_chat"}},
	}
	st, _ := openStore(t)
	_, tn := newTenant(t, st, "owner@example.com", "Acme")
	before := tenant.DefaultBotConfig()
	before.Rules = []tenant.Rule{valid}
	before, err := st.SaveBotConfig(ctx, tn.ID, before)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tenant.DefaultBotConfig()
			c.change(&cfg)
			_, err := st.SaveBotConfig(ctx, tn.ID, cfg)
			wantCode(t, err, tenant.CodeInvalid)
			var e *tenant.Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not a *tenant.Error", err)
			}
			var got []string
			for f := range e.Fields {
				got = append(got, f)
			}
			if len(got) != len(c.fields) {
				t.Errorf("fields %v, want %v", got, c.fields)
			}
			for _, f := range c.fields {
				if e.Fields[f] == "" {
					t.Errorf("no message for %s in %v", f, e.Fields)
				}
			}
			if stored, err := st.BotConfigOf(ctx, tn.ID); err != nil || !reflect.DeepEqual(stored, before) {
				t.Errorf("a refused configuration changed the stored one: %+v, %v", stored, err)
			}
		})
	}
}

func TestCountStatesListsEveryState(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	empty, err := st.CountStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Tenants) != len(tenant.Statuses) || len(empty.Sessions) != len(tenant.LinkStates) || len(empty.Workers) != len(tenant.WorkerStatuses) {
		t.Fatalf("counts of an empty database: %+v", empty)
	}
	for _, m := range []map[string]int{asStrings(empty.Tenants), asStrings(empty.Sessions), asStrings(empty.Workers)} {
		for k, n := range m {
			if n != 0 {
				t.Errorf("%s = %d in an empty database", k, n)
			}
		}
	}

	type setup struct {
		status tenant.Status
		state  tenant.LinkState
		worker tenant.WorkerStatus
	}
	for i, s := range []setup{
		{tenant.StatusActive, tenant.StateConnected, tenant.WorkerRunning},
		{tenant.StatusActive, tenant.StateConnected, tenant.WorkerRunning},
		{tenant.StatusPending, tenant.StateQRReady, tenant.WorkerRunning},
		{tenant.StatusSuspended, tenant.StateDisconnected, tenant.WorkerStopped},
		{tenant.StatusError, tenant.StateLoggedOut, tenant.WorkerCrashed},
	} {
		_, tn := newTenant(t, st, "o"+string(rune('a'+i))+"@example.com", "T")
		if err := st.SetTenantStatus(ctx, tn.ID, s.status); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveLink(ctx, tenant.Link{TenantID: tn.ID, State: s.state}); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveWorker(ctx, tenant.Worker{TenantID: tn.ID, Status: s.worker}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.CountStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Counts{
		Tenants: map[tenant.Status]int{tenant.StatusPending: 1, tenant.StatusActive: 2, tenant.StatusSuspended: 1, tenant.StatusError: 1},
		Sessions: map[tenant.LinkState]int{tenant.StateQRPending: 0, tenant.StateQRReady: 1, tenant.StateQRExpired: 0, tenant.StateConnected: 2,
			tenant.StateDisconnected: 1, tenant.StateError: 0, tenant.StateLoggedOut: 1},
		Workers: map[tenant.WorkerStatus]int{tenant.WorkerStarting: 0, tenant.WorkerRunning: 3, tenant.WorkerStopped: 1, tenant.WorkerCrashed: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CountStates =\n %+v\nwant\n %+v", got, want)
	}
}

func asStrings[K ~string](m map[K]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

func TestConnectedCountLeavesOutSuspendedTenants(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name                 string
		tenants              [][2]string // status, session state
		wantConnected, total int
	}{
		{"none", nil, 0, 0},
		{"one connected", [][2]string{{"ACTIVE", "CONNECTED"}}, 1, 1},
		{"mixed", [][2]string{
			{"ACTIVE", "CONNECTED"},
			{"ACTIVE", "DISCONNECTED"},
			{"PENDING", "CONNECTED"},
			{"ERROR", "ERROR"},
			{"SUSPENDED", "CONNECTED"},
			{"SUSPENDED", "QR_PENDING"},
		}, 2, 4},
		{"only suspended", [][2]string{{"SUSPENDED", "CONNECTED"}}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _ := openStore(t)
			for i, x := range c.tenants {
				_, tn := newTenant(t, st, "o"+string(rune('a'+i))+"@example.com", "T")
				if err := st.SetTenantStatus(ctx, tn.ID, tenant.Status(x[0])); err != nil {
					t.Fatal(err)
				}
				if err := st.SaveLink(ctx, tenant.Link{TenantID: tn.ID, State: tenant.LinkState(x[1])}); err != nil {
					t.Fatal(err)
				}
			}
			connected, total, err := st.ConnectedCount(ctx)
			if err != nil || connected != c.wantConnected || total != c.total {
				t.Errorf("ConnectedCount = %d of %d, %v; want %d of %d", connected, total, err, c.wantConnected, c.total)
			}
		})
	}
}
