package tenant_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

// fleet is 120 tenants shaped so that every sort gives a different order:
// tenant i is created i minutes after t0, named "<word> <n>" with n a
// permutation of i, owned by owner-<i>@example.com; every fourth is
// CONNECTED with a number, the next ERROR, the rest not linked; two in
// three were seen (later for higher i), every tenth is suspended.
type fleet struct {
	st      *tenant.Store
	tenants []tenant.Tenant // in creation order
}

var fleetWords = []string{"Bakery", "Florist", "Garage"}

func newFleet(t *testing.T) fleet {
	t.Helper()
	ctx := context.Background()
	st, clk := openStore(t)
	f := fleet{st: st}
	for i := range 120 {
		_, tn := newTenant(t, st, fmt.Sprintf("owner-%03d@example.com", i), fmt.Sprintf("%s %03d", fleetWords[i%3], (i*37)%120))
		f.tenants = append(f.tenants, tn)
		switch i % 4 {
		case 0:
			if err := st.SaveLink(ctx, tenant.Link{TenantID: tn.ID, State: tenant.StateConnected, JID: fmt.Sprintf("3161234%04d:7@s.whatsapp.net", i)}); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := st.SaveLink(ctx, tenant.Link{TenantID: tn.ID, State: tenant.StateError, LastError: "broken"}); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 != 0 {
			if err := st.SaveWorker(ctx, tenant.Worker{TenantID: tn.ID, Status: tenant.WorkerRunning, LastSeenAt: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			if err := st.SetTenantStatus(ctx, tn.ID, tenant.StatusSuspended); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Minute)
	}
	return f
}

func (f fleet) page(t *testing.T, q tenant.TenantQuery) tenant.TenantPage {
	t.Helper()
	p, err := f.st.AdminTenants(context.Background(), q)
	if err != nil {
		t.Fatalf("AdminTenants(%+v): %v", q, err)
	}
	return p
}

// all walks every page of q and returns the names in order.
func (f fleet) all(t *testing.T, q tenant.TenantQuery) []string {
	t.Helper()
	var names []string
	for q.Page = 1; ; q.Page++ {
		p := f.page(t, q)
		for _, o := range p.Overviews {
			names = append(names, o.Tenant.Name)
		}
		if p.Page == p.Pages {
			return names
		}
	}
}

func names(os []tenant.Overview) []string {
	var out []string
	for _, o := range os {
		out = append(out, o.Tenant.Name)
	}
	return out
}

func TestAdminTenantsPages(t *testing.T) {
	f := newFleet(t)
	created := make([]string, len(f.tenants))
	for i, tn := range f.tenants {
		created[i] = tn.Name
	}
	cases := []struct {
		name      string
		page      int
		wantPage  int
		wantNames []string
	}{
		{"first page", 1, 1, created[:50]},
		{"second page", 2, 2, created[50:100]},
		{"last page is short", 3, 3, created[100:]},
		{"page zero is the first", 0, 1, created[:50]},
		{"a negative page is the first", -4, 1, created[:50]},
		{"past the end is the last", 99, 3, created[100:]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.page(t, tenant.TenantQuery{Page: c.page})
			if p.Total != 120 || p.Pages != 3 || p.Page != c.wantPage || p.PerPage != tenant.DefaultPerPage {
				t.Errorf("total %d, page %d of %d (%d per page); want 120, %d of 3 (50)", p.Total, p.Page, p.Pages, p.PerPage, c.wantPage)
			}
			if got := names(p.Overviews); !slices.Equal(got, c.wantNames) {
				t.Errorf("names %v\nwant %v", got, c.wantNames)
			}
		})
	}
	// The rows carry what the console shows.
	p := f.page(t, tenant.TenantQuery{Search: "owner-004@"})
	if len(p.Overviews) != 1 {
		t.Fatalf("owner-004: %d rows", len(p.Overviews))
	}
	o := p.Overviews[0]
	if o.Owner != "owner-004@example.com" || o.Link.State != tenant.StateConnected || tenant.PhoneOf(o.Link.JID) != "+31612340004" ||
		!o.Worker.LastSeenAt.Equal(t0.Add(4*time.Hour)) || o.Tenant.ID != f.tenants[4].ID {
		t.Errorf("row %+v", o)
	}
}

func TestAdminTenantsSorts(t *testing.T) {
	f := newFleet(t)
	byName := make([]string, len(f.tenants))
	for i, tn := range f.tenants {
		byName[i] = tn.Name
	}
	slices.SortFunc(byName, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })

	if got := f.all(t, tenant.TenantQuery{Sort: tenant.SortName}); !slices.Equal(got, byName) {
		t.Errorf("by name\n got %v\nwant %v", got, byName)
	}
	desc := slices.Clone(byName)
	slices.Reverse(desc)
	if got := f.all(t, tenant.TenantQuery{Sort: tenant.SortName, Desc: true}); !slices.Equal(got, desc) {
		t.Errorf("by name, descending\n got %v\nwant %v", got, desc)
	}

	// States in reading order, oldest first within one.
	p := f.page(t, tenant.TenantQuery{Sort: tenant.SortState, PerPage: 120})
	var states []tenant.LinkState
	for _, o := range p.Overviews {
		if len(states) == 0 || states[len(states)-1] != o.Link.State {
			states = append(states, o.Link.State)
		}
	}
	if want := []tenant.LinkState{tenant.StateQRPending, tenant.StateConnected, tenant.StateError}; !slices.Equal(states, want) {
		t.Errorf("by state: runs %v, want %v", states, want)
	}
	if p.Overviews[0].Tenant.ID != f.tenants[2].ID {
		t.Errorf("by state: first %s, want the oldest not linked", p.Overviews[0].Tenant.Name)
	}
	p = f.page(t, tenant.TenantQuery{Sort: tenant.SortState, Desc: true, PerPage: 1})
	if p.Overviews[0].Link.State != tenant.StateError {
		t.Errorf("by state, descending: first is %s", p.Overviews[0].Link.State)
	}

	// Last seen: the most recent first, never seen last.
	p = f.page(t, tenant.TenantQuery{Sort: tenant.SortLastSeen, Desc: true, PerPage: 120})
	if first, last := p.Overviews[0], p.Overviews[119]; first.Tenant.ID != f.tenants[119].ID || !last.Worker.LastSeenAt.IsZero() {
		t.Errorf("by last seen: first %s (%v), last seen %v", first.Tenant.Name, first.Worker.LastSeenAt, last.Worker.LastSeenAt)
	}
	for i := 1; i < 120; i++ {
		if a, b := p.Overviews[i-1].Worker.LastSeenAt, p.Overviews[i].Worker.LastSeenAt; !b.IsZero() && a.Before(b) {
			t.Fatalf("by last seen: row %d seen %v before row %d seen %v", i-1, a, i, b)
		}
	}
	p = f.page(t, tenant.TenantQuery{Sort: tenant.SortLastSeen, PerPage: 1})
	if !p.Overviews[0].Worker.LastSeenAt.IsZero() {
		t.Errorf("by last seen, ascending: first was seen %v, want never", p.Overviews[0].Worker.LastSeenAt)
	}

	if _, err := f.st.AdminTenants(context.Background(), tenant.TenantQuery{Sort: "name; DROP TABLE tenants"}); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Errorf("unknown sort: %v, want invalid", err)
	}
}

func TestAdminTenantsSearch(t *testing.T) {
	f := newFleet(t)
	// Names with LIKE's wildcards, which a search takes literally.
	_, pct := newTenant(t, f.st, "percent@example.com", "100% Real_Deal")
	_, plain := newTenant(t, f.st, "plain@example.com", "100 RealXDeal")

	cases := []struct {
		name   string
		search string
		want   []string // tenant ids, in creation order
	}{
		{"name, any case", "gARAGE 07", nil}, // filled in below
		{"owner email, any case", "OWNER-042@Example", tenantIDs(f.tenants[42])},
		{"tenant id", f.tenants[17].ID[3:12], tenantIDs(f.tenants[17])},
		{"number as typed", "+31 612 340 008", tenantIDs(f.tenants[8])},
		{"part of a number", "1234011", tenantIDs(f.tenants[112], f.tenants[116])},
		{"a percent sign is literal", "0%", tenantIDs(pct)},
		{"an underscore is literal", "l_d", tenantIDs(pct)},
		{"a backslash is literal", `\`, nil},
		{"spaces around are ignored", "  plain@example.com ", tenantIDs(plain)},
		{"nothing matches", "no~such", nil}, // "~" is in no id, name or email; a random id can hold any letter
	}
	// Names come from (i*37)%120: which are "Garage 07x" is counted, not guessed.
	var garage []string
	for _, tn := range f.tenants {
		if strings.HasPrefix(tn.Name, "Garage 07") {
			garage = append(garage, tn.ID)
		}
	}
	cases[0].want = garage
	if len(garage) == 0 {
		t.Fatal("the fleet has no Garage 07x")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.page(t, tenant.TenantQuery{Search: c.search})
			var got []string
			for _, o := range p.Overviews {
				got = append(got, o.Tenant.ID)
			}
			if !slices.Equal(got, c.want) || p.Total != len(c.want) {
				t.Errorf("search %q: %v (total %d), want %v", c.search, got, p.Total, c.want)
			}
		})
	}
	// A word that is not a number does not match every linked JID's server.
	if p := f.page(t, tenant.TenantQuery{Search: "whatsapp"}); p.Total != 0 {
		t.Errorf(`search "whatsapp" matched %d tenants`, p.Total)
	}
}

func tenantIDs(ts ...tenant.Tenant) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestAdminTenantsCounts(t *testing.T) {
	f := newFleet(t)
	p := f.page(t, tenant.TenantQuery{})
	wantStates := map[tenant.LinkState]int{tenant.StateQRPending: 60, tenant.StateConnected: 30, tenant.StateError: 30,
		tenant.StateQRReady: 0, tenant.StateQRExpired: 0, tenant.StateDisconnected: 0, tenant.StateLoggedOut: 0}
	if fmt.Sprint(p.States) != fmt.Sprint(wantStates) {
		t.Errorf("states %v, want %v", p.States, wantStates)
	}
	wantStatuses := map[tenant.Status]int{tenant.StatusActive: 108, tenant.StatusSuspended: 12, tenant.StatusPending: 0, tenant.StatusError: 0}
	if fmt.Sprint(p.Statuses) != fmt.Sprint(wantStatuses) {
		t.Errorf("statuses %v, want %v", p.Statuses, wantStatuses)
	}

	// Filtered to CONNECTED: the rows and total follow, the state counts
	// stay those of every state (each is what its link shows), the status
	// counts are those of connected tenants (every 20th is suspended too).
	p = f.page(t, tenant.TenantQuery{State: tenant.StateConnected})
	if p.Total != 30 || len(p.Overviews) != 30 || p.States[tenant.StateQRPending] != 60 {
		t.Errorf("connected: total %d, %d rows, %d not linked", p.Total, len(p.Overviews), p.States[tenant.StateQRPending])
	}
	for _, o := range p.Overviews {
		if o.Link.State != tenant.StateConnected {
			t.Fatalf("connected filter shows %s", o.Link.State)
		}
	}
	if p.Statuses[tenant.StatusSuspended] != 6 || p.Statuses[tenant.StatusActive] != 24 {
		t.Errorf("connected: statuses %v, want 6 suspended, 24 active", p.Statuses)
	}

	// Both filters and a search: counts follow the search.
	p = f.page(t, tenant.TenantQuery{State: tenant.StateConnected, Status: tenant.StatusSuspended, Search: "bakery"})
	for _, o := range p.Overviews {
		if o.Link.State != tenant.StateConnected || o.Tenant.Status != tenant.StatusSuspended || !strings.HasPrefix(o.Tenant.Name, "Bakery") {
			t.Fatalf("filtered row %+v", o)
		}
	}
	// Bakeries are i%3==0; connected i%4==0; suspended i%10==0: i%60==0.
	if p.Total != 2 || p.States[tenant.StateConnected] != 2 || p.States[tenant.StateError]+p.States[tenant.StateQRPending] != 2 {
		t.Errorf("bakery, connected, suspended: total %d, states %v", p.Total, p.States)
	}

	for _, q := range []tenant.TenantQuery{{State: "BOGUS"}, {Status: "BOGUS"}} {
		if _, err := f.st.AdminTenants(context.Background(), q); tenant.ErrorCode(err) != tenant.CodeInvalid {
			t.Errorf("%+v: %v, want invalid", q, err)
		}
	}
}

func TestAuditEntriesPagesAndFilters(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	root, err := st.GrantAdmin(ctx, "root@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := st.GrantAdmin(ctx, "Ops@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, bakery := newTenant(t, st, "b@example.com", "Corner Bakery")
	_, garage := newTenant(t, st, "g@example.com", "Garage")
	// 120 entries: even ones by root, odd ones by ops; every third on the
	// bakery, the others on the garage.
	for i := range 120 {
		actor, tn := root, garage
		if i%2 == 1 {
			actor = ops
		}
		if i%3 == 0 {
			tn = bakery
		}
		if err := st.Audit(ctx, actor, "restart", tn.ID, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	details := func(p tenant.AuditPage) []string {
		var out []string
		for _, l := range p.Lines {
			out = append(out, l.Detail)
		}
		return out
	}
	seq := func(from, to, step int) []string { // from down to to, newest first
		var out []string
		for i := from; i >= to; i -= step {
			out = append(out, fmt.Sprint(i))
		}
		return out
	}
	cases := []struct {
		name      string
		q         tenant.AuditQuery
		wantTotal int
		wantPage  int
		want      []string
	}{
		{"newest first", tenant.AuditQuery{}, 120, 1, seq(119, 70, 1)},
		{"second page", tenant.AuditQuery{Page: 2}, 120, 2, seq(69, 20, 1)},
		{"past the end", tenant.AuditQuery{Page: 1000}, 120, 3, seq(19, 0, 1)},
		{"by tenant id", tenant.AuditQuery{Tenant: bakery.ID}, 40, 1, seq(117, 0, 3)},
		{"by part of a tenant name", tenant.AuditQuery{Tenant: "bAKERY"}, 40, 1, seq(117, 0, 3)},
		{"by actor, any case", tenant.AuditQuery{Actor: "ops@example"}, 60, 1, seq(119, 21, 2)},
		{"by both", tenant.AuditQuery{Tenant: bakery.ID, Actor: "ROOT"}, 20, 1, seq(114, 0, 6)},
		{"a wildcard is literal", tenant.AuditQuery{Actor: "%"}, 0, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := st.AuditEntries(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := details(p); p.Total != c.wantTotal || p.Page != c.wantPage || !slices.Equal(got, c.want) {
				t.Errorf("total %d, page %d: %v\nwant total %d, page %d: %v", p.Total, p.Page, got, c.wantTotal, c.wantPage, c.want)
			}
		})
	}
	p, err := st.AuditEntries(ctx, tenant.AuditQuery{PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	if l := p.Lines[0]; l.TenantName != "Garage" || l.TenantID != garage.ID || l.ActorEmail != "ops@example.com" || l.Action != "restart" {
		t.Errorf("newest line %+v", l)
	}
}
