package tenant_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// Each sign-in in order: a provider identity maps to one user for good,
// a new identity joins the user with its verified email, and makeAdmin
// only ever grants.
func TestSignInMapsEachIdentityToOneUser(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	steps := []struct {
		name      string
		id        tenant.Identity
		makeAdmin bool
		sameAs    string // the step whose user this must be; "" for a new user
		wantEmail string
		wantName  string
		wantAdmin bool
	}{
		{name: "ann-google", id: tenant.Identity{Provider: "google", Subject: "g-ann", Email: " Ann@Example.COM ", Name: "Ann"},
			wantEmail: "ann@example.com", wantName: "Ann"},
		{name: "ann-google-again, no name given keeps the name", id: tenant.Identity{Provider: "google", Subject: "g-ann", Email: "ann@example.com"},
			sameAs: "ann-google", wantEmail: "ann@example.com", wantName: "Ann"},
		{name: "ann-oidc joins by verified email", id: tenant.Identity{Provider: "oidc", Subject: "o-ann", Email: "ANN@example.com", Name: "Ann B."},
			sameAs: "ann-google", wantEmail: "ann@example.com", wantName: "Ann B."},
		{name: "ann-google with a changed email is still ann", id: tenant.Identity{Provider: "google", Subject: "g-ann", Email: "ann@new.example"},
			sameAs: "ann-google", wantEmail: "ann@example.com", wantName: "Ann B."},
		{name: "same subject at another provider is someone else", id: tenant.Identity{Provider: "oidc", Subject: "g-ann", Email: "eve@example.com"},
			wantEmail: "eve@example.com"},
		{name: "bob", id: tenant.Identity{Provider: "google", Subject: "g-bob", Email: "bob@example.com", Name: "Bob"},
			wantEmail: "bob@example.com", wantName: "Bob"},
		{name: "bob made admin", id: tenant.Identity{Provider: "google", Subject: "g-bob", Email: "bob@example.com"}, makeAdmin: true,
			sameAs: "bob", wantEmail: "bob@example.com", wantName: "Bob", wantAdmin: true},
		{name: "bob again without makeAdmin stays admin", id: tenant.Identity{Provider: "google", Subject: "g-bob", Email: "bob@example.com"},
			sameAs: "bob", wantEmail: "bob@example.com", wantName: "Bob", wantAdmin: true},
	}
	users := map[string]tenant.User{}
	seen := map[string]bool{}
	for _, s := range steps {
		clk.Advance(time.Minute)
		u, err := st.SignIn(ctx, s.id, s.makeAdmin)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		users[s.name] = u
		if s.sameAs != "" {
			if want := users[s.sameAs].ID; u.ID != want {
				t.Errorf("%s: signed in as %s, want the user of %q (%s)", s.name, u.ID, s.sameAs, want)
			}
			if !u.CreatedAt.Equal(users[s.sameAs].CreatedAt) {
				t.Errorf("%s: created at %v, want it kept at %v", s.name, u.CreatedAt, users[s.sameAs].CreatedAt)
			}
		} else if seen[u.ID] {
			t.Errorf("%s: signed in as existing user %s, want a new one", s.name, u.ID)
		}
		seen[u.ID] = true
		if u.Email != s.wantEmail || u.Name != s.wantName || u.IsAdmin != s.wantAdmin {
			t.Errorf("%s: got email %q name %q admin %v, want %q %q %v", s.name, u.Email, u.Name, u.IsAdmin, s.wantEmail, s.wantName, s.wantAdmin)
		}
		if !u.LastLoginAt.Equal(clk.Now()) {
			t.Errorf("%s: last login %v, want %v", s.name, u.LastLoginAt, clk.Now())
		}
		if !strings.HasPrefix(u.ID, "u") || u.TenantID != "" {
			t.Errorf("%s: id %q tenant %q", s.name, u.ID, u.TenantID)
		}
		stored, err := st.UserByID(ctx, u.ID)
		if err != nil || stored != u {
			t.Errorf("%s: UserByID = %+v, %v; want %+v", s.name, stored, err, u)
		}
	}
	if len(seen) != 3 {
		t.Errorf("%d users, want 3 (ann, eve, bob)", len(seen))
	}
}

func TestSignInRefusesAnIncompleteIdentity(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	cases := map[string]tenant.Identity{
		"no email":    {Provider: "google", Subject: "s1"},
		"blank email": {Provider: "google", Subject: "s1", Email: "   "},
		"no subject":  {Provider: "google", Email: "x@example.com"},
		"no provider": {Subject: "s1", Email: "x@example.com"},
	}
	for name, id := range cases {
		t.Run(name, func(t *testing.T) {
			u, err := st.SignIn(ctx, id, true)
			wantCode(t, err, tenant.CodeForbidden)
			if u != (tenant.User{}) {
				t.Errorf("got user %+v with the error", u)
			}
		})
	}
	if ok, err := st.AdminExists(ctx); err != nil || ok {
		t.Errorf("AdminExists = %v, %v after refused sign-ins; want false", ok, err)
	}
	_, err := st.UserByEmail(ctx, "x@example.com")
	wantNotFound(t, err)
}

func TestEnsureUserNormalisesAndValidatesEmail(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	cases := []struct {
		in, want string // want "" means refused as invalid
	}{
		{"carol@example.com", "carol@example.com"},
		{"  Carol@Example.COM\t", "carol@example.com"},
		{"d@e", "d@e"},
		{"", ""},
		{"   ", ""},
		{"carol", ""},
		{"@example.com", ""},
		{"carol@", ""},
		{"car ol@example.com", ""},
		{"<carol@example.com>", ""},
		{"a@b.c,d@e.f", ""},
		{`"carol"@example.com`, ""},
		{strings.Repeat("a", 250) + "@b.cd", ""},
	}
	firstID := map[string]string{}
	for _, c := range cases {
		u, err := st.EnsureUser(ctx, c.in)
		if c.want == "" {
			wantCode(t, err, tenant.CodeInvalid)
			continue
		}
		if err != nil {
			t.Fatalf("EnsureUser(%q): %v", c.in, err)
		}
		if u.Email != c.want || u.IsAdmin || u.TenantID != "" || !u.LastLoginAt.IsZero() || !u.CreatedAt.Equal(t0) {
			t.Errorf("EnsureUser(%q) = %+v", c.in, u)
		}
		if id, ok := firstID[c.want]; ok && id != u.ID {
			t.Errorf("EnsureUser(%q) made a second user %s for %s (first %s)", c.in, u.ID, c.want, id)
		}
		firstID[c.want] = u.ID
		byEmail, err := st.UserByEmail(ctx, strings.ToUpper(c.in))
		if err != nil || byEmail.ID != u.ID {
			t.Errorf("UserByEmail(%q) = %+v, %v; want %s", strings.ToUpper(c.in), byEmail, err, u.ID)
		}
	}
}

func TestGrantAdminAndAdminExists(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	adminExists := func() bool {
		t.Helper()
		ok, err := st.AdminExists(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if adminExists() {
		t.Fatal("an empty database has an admin")
	}
	plain, err := st.EnsureUser(ctx, "plain@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if adminExists() {
		t.Fatal("EnsureUser made an admin")
	}

	granted, err := st.GrantAdmin(ctx, " PLAIN@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if granted.ID != plain.ID || !granted.IsAdmin {
		t.Errorf("GrantAdmin of an existing user = %+v, want %s as admin", granted, plain.ID)
	}
	if u, err := st.UserByID(ctx, plain.ID); err != nil || !u.IsAdmin {
		t.Errorf("stored user %+v, %v; want admin", u, err)
	}
	if !adminExists() {
		t.Error("AdminExists is false after GrantAdmin")
	}

	fresh, err := st.GrantAdmin(ctx, "new-admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := st.UserByEmail(ctx, "new-admin@example.com"); err != nil || u.ID != fresh.ID || !u.IsAdmin {
		t.Errorf("GrantAdmin of a new email stored %+v, %v", u, err)
	}
	if _, err := st.GrantAdmin(ctx, "not an email"); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Errorf("GrantAdmin of an invalid email: %v, want invalid", err)
	}
}

func TestUserLookupsReportNotFound(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	if _, err := st.EnsureUser(ctx, "someone@example.com"); err != nil {
		t.Fatal(err)
	}
	for name, lookup := range map[string]func() (tenant.User, error){
		"UserByID":    func() (tenant.User, error) { return st.UserByID(ctx, "unobody") },
		"UserByEmail": func() (tenant.User, error) { return st.UserByEmail(ctx, "nobody@example.com") },
	} {
		u, err := lookup()
		if u != (tenant.User{}) {
			t.Errorf("%s returned %+v with its error", name, u)
		}
		wantNotFound(t, err)
	}
}

func TestLoginLinkSignsInOnceWithinItsLifetime(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		after   time.Duration // between creating and using the link
		admin   bool
		wantErr bool
	}{
		{name: "at once", after: 0},
		{name: "an admin link", after: time.Minute, admin: true},
		{name: "just before expiry", after: tenant.LoginLinkTTL - time.Millisecond},
		{name: "at expiry", after: tenant.LoginLinkTTL, wantErr: true},
		{name: "long after", after: 24 * time.Hour, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, clk := openStore(t)
			token, err := st.CreateLoginLink(ctx, " Dan@Example.com ", c.admin)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(c.after)
			u, err := st.ConsumeLoginLink(ctx, token)
			if c.wantErr {
				wantCode(t, err, tenant.CodeForbidden)
				if _, err := st.UserByEmail(ctx, "dan@example.com"); err == nil {
					t.Error("an expired link created its user")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != "dan@example.com" || u.IsAdmin != c.admin || !u.LastLoginAt.Equal(clk.Now()) {
				t.Errorf("signed in as %+v", u)
			}
			_, err = st.ConsumeLoginLink(ctx, token)
			wantCode(t, err, tenant.CodeForbidden)
		})
	}
}

func TestLoginLinkRefusals(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	if _, err := st.CreateLoginLink(ctx, "not-an-email", false); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Errorf("CreateLoginLink of an invalid email: %v, want invalid", err)
	}
	token, err := st.CreateLoginLink(ctx, "erin@example.com", false)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"empty":           "",
		"unknown":         "AAAAAAAAAAAAAAAAAAAAAAAAAA",
		"case changed":    strings.ToLower(token),
		"with a space":    token + " ",
		"the stored hash": hashOf(t, st, "erin@example.com"),
	} {
		if tok == token {
			t.Fatalf("%s token is the real one", name)
		}
		if _, err := st.ConsumeLoginLink(ctx, tok); tenant.ErrorCode(err) != tenant.CodeForbidden {
			t.Errorf("%s token: %v, want forbidden", name, err)
		}
	}
	if _, err := st.ConsumeLoginLink(ctx, token); err != nil {
		t.Errorf("the real token after refusals: %v", err)
	}
}

// hashOf returns what the login_links table holds for email's link.
func hashOf(t *testing.T, st *tenant.Store, email string) string {
	t.Helper()
	var h string
	if err := tenanttest.Raw(t, st.Path()).QueryRow(`SELECT token_hash FROM login_links WHERE email = ?`, email).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLoginLinkTokenIsNotStoredInClear(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	tokens := map[string]bool{}
	for range 3 {
		token, err := st.CreateLoginLink(ctx, "fay@example.com", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(token) < 26 || tokens[token] {
			t.Fatalf("token %q is short or repeated", token)
		}
		tokens[token] = true
	}
	rows, err := tenanttest.Raw(t, st.Path()).Query(`SELECT token_hash, email, admin, created_at, expires_at, used_at FROM login_links`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var hash, email string
		var admin bool
		var created, expires int64
		var used sql.NullInt64
		if err := rows.Scan(&hash, &email, &admin, &created, &expires, &used); err != nil {
			t.Fatal(err)
		}
		n++
		for token := range tokens {
			if strings.Contains(strings.ToLower(hash), strings.ToLower(token)) {
				t.Errorf("login_links holds token %q in clear", token)
			}
		}
		if email != "fay@example.com" || !admin || used.Valid || time.Duration(expires-created)*time.Millisecond != tenant.LoginLinkTTL {
			t.Errorf("row %q %v %d..%d %v", email, admin, created, expires, used)
		}
	}
	if err := rows.Err(); err != nil || n != 3 {
		t.Fatalf("%d rows, %v; want 3", n, err)
	}
	// Each of the links works on its own.
	for token := range tokens {
		if _, err := st.ConsumeLoginLink(ctx, token); err != nil {
			t.Errorf("ConsumeLoginLink: %v", err)
		}
	}
}

// A login link joins the user who already has its email, by any provider.
func TestLoginLinkJoinsTheUserWithItsEmail(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	g, err := st.SignIn(ctx, tenant.Identity{Provider: "google", Subject: "g1", Email: "gus@example.com", Name: "Gus"}, false)
	if err != nil {
		t.Fatal(err)
	}
	token, err := st.CreateLoginLink(ctx, "GUS@example.com", false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.ConsumeLoginLink(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != g.ID || u.Name != "Gus" {
		t.Errorf("link signed in as %+v, want %+v", u, g)
	}
}

func TestAuditLogNewestFirst(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	admin, err := st.GrantAdmin(ctx, "root@example.com")
	if err != nil {
		t.Fatal(err)
	}
	entries := []struct{ action, tenantID, detail string }{
		{"approve", "taaaaaaaaaaaaaaaa", ""},
		{"grant-admin", "", "someone@example.com"},
		{"suspend", "tbbbbbbbbbbbbbbbb", "spam"},
	}
	for _, e := range entries {
		clk.Advance(time.Second)
		if err := st.Audit(ctx, admin, e.action, e.tenantID, e.detail); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.AuditLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("AuditLog(2) returned %d entries", len(got))
	}
	for i, g := range got {
		want := entries[len(entries)-1-i]
		at := t0.Add(time.Duration(len(entries)-i) * time.Second)
		if g.Action != want.action || g.TenantID != want.tenantID || g.Detail != want.detail ||
			g.ActorID != admin.ID || g.ActorEmail != admin.Email || !g.At.Equal(at) {
			t.Errorf("entry %d = %+v, want %+v at %v", i, g, want, at)
		}
	}
	if got[0].ID <= got[1].ID {
		t.Errorf("ids %d, %d not newest first", got[0].ID, got[1].ID)
	}
}
