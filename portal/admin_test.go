package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// seedTenants creates n tenants behind the portal's back, as if they had
// signed up over months: "Tenant 000"…, owned by owner000@example.com…,
// in creation order a minute apart; every fifth is CONNECTED with the number
// +1555010<i>, every seventh is waiting for approval.
func seedTenants(t *testing.T, e *env, n int) []tenant.Tenant {
	t.Helper()
	ctx := context.Background()
	st := e.app.Store()
	var out []tenant.Tenant
	for i := range n {
		u, err := st.EnsureUser(ctx, fmt.Sprintf("owner%03d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		tn, err := st.CreateTenant(ctx, u.ID, fmt.Sprintf("Tenant %03d", i), i%7 != 0)
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			if err := st.SaveLink(ctx, tenant.Link{TenantID: tn.ID, State: tenant.StateConnected, JID: fmt.Sprintf("1555010%04d:2@s.whatsapp.net", i)}); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, tn)
	}
	// Created in one millisecond, their order would be their random ids'.
	raw := tenanttest.Raw(t, st.Path())
	for i, tn := range out {
		if _, err := raw.Exec(`UPDATE tenants SET created_at = created_at + ? WHERE id = ?`, (i-n)*60000, tn.ID); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// adminPage is /admin as an admin sees it.
type adminPage struct {
	t   *testing.T
	r   resp
	doc *goquery.Document
}

func (b *browser) admin(path string) adminPage {
	b.t.Helper()
	r := b.get(path)
	if r.status != http.StatusOK {
		b.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if err != nil {
		b.t.Fatal(err)
	}
	return adminPage{t: b.t, r: r, doc: doc}
}

// tenants lists the ids of the tenant rows, in order.
func (p adminPage) tenants() []string {
	var ids []string
	p.doc.Find(`[data-testid="admin-tenant-row"]`).Each(func(_ int, s *goquery.Selection) {
		ids = append(ids, s.AttrOr("data-tenant", ""))
	})
	return ids
}

func (p adminPage) text(sel string) string {
	return strings.TrimSpace(p.doc.Find(sel).First().Text())
}

func (p adminPage) href(sel string) string {
	p.t.Helper()
	h, ok := p.doc.Find(sel).First().Attr("href")
	if !ok {
		p.t.Fatalf("no link %s on %s", sel, p.r.url)
	}
	return h
}

func idsOf(ts []tenant.Tenant) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func newAdmin(e *env) *browser {
	b := e.browser()
	b.loginLink("root@example.com", true)
	return b
}

func TestAdminSearchFindsEachField(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 120)
	admin := newAdmin(e)
	cases := []struct {
		field  string
		search string
		want   []string
	}{
		{"name, any case", "tENANT 042", idsOf(ts[42:43])},
		{"owner email", "OWNER077@example", idsOf(ts[77:78])},
		{"linked number, as people write it", "+1 555 010 0035", idsOf(ts[35:36])},
		{"tenant id", strings.ToUpper(ts[91].ID[2:14]), idsOf(ts[91:92])},
		{"LIKE wildcards are literal", "Tenant_0%", nil},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			p := admin.admin("/admin?q=" + url.QueryEscape(c.search))
			if got := p.tenants(); !slices.Equal(got, c.want) {
				t.Errorf("search %q shows %v, want %v", c.search, got, c.want)
			}
			if got := p.doc.Find(`#admin-q`).AttrOr("value", ""); got != c.search {
				t.Errorf("the search box shows %q, want %q", got, c.search)
			}
		})
	}
	// The search box's form keeps the filter it was used under.
	p := admin.admin("/admin?state=CONNECTED&q=tenant+04")
	if got, want := p.tenants(), idsOf([]tenant.Tenant{ts[40], ts[45]}); !slices.Equal(got, want) {
		t.Errorf("tenant 04x, connected: %v, want %v", got, want)
	}
	if v, ok := p.doc.Find(`[data-testid="admin-filter"] input[type="hidden"][name="state"]`).Attr("value"); !ok || v != "CONNECTED" {
		t.Errorf("the search form does not keep the state filter (%q)", v)
	}
}

func TestAdminPagesAndSortsTenants(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 120)
	admin := newAdmin(e)

	first := admin.admin("/admin")
	if got := first.tenants(); !slices.Equal(got, idsOf(ts[:50])) {
		t.Errorf("page 1 shows %d tenants, want the 50 oldest", len(got))
	}
	if s := first.text(`[data-testid="admin-showing"]`); s != "Showing 1–50 of 120" {
		t.Errorf("page 1 says %q", s)
	}
	// Next, as the pager links it.
	second := admin.admin(first.href(`[data-testid="admin-pager"] [data-testid="next"]`))
	if got := second.tenants(); !slices.Equal(got, idsOf(ts[50:100])) {
		t.Errorf("page 2 shows %v, want tenants 50 to 99", got)
	}
	if s := second.text(`[data-testid="admin-showing"]`); s != "Showing 51–100 of 120" {
		t.Errorf("page 2 says %q", s)
	}
	third := admin.admin(second.href(`[data-testid="admin-pager"] [data-testid="next"]`))
	if got := third.tenants(); !slices.Equal(got, idsOf(ts[100:])) || third.doc.Find(`[data-testid="admin-pager"] [data-testid="next"]`).Length() != 0 {
		t.Errorf("page 3 shows %d tenants (want the last 20) and a next link: %v", len(got), third.doc.Find(`[data-testid="next"]`).Length() != 0)
	}
	if back := admin.admin(third.href(`[data-testid="admin-pager"] [data-testid="prev"]`)); !slices.Equal(back.tenants(), idsOf(ts[50:100])) {
		t.Error("previous from page 3 is not page 2")
	}

	// Sorting by name from the column heading, then turning it around.
	byName := admin.admin(first.href(`th a[data-testid="sort"]`))
	if got := byName.tenants(); !slices.Equal(got, idsOf(ts[:50])) {
		t.Errorf("by name, A to Z: %v", got)
	}
	desc := admin.admin(byName.href(`th a[data-testid="sort"]`))
	want := idsOf(ts[70:])
	slices.Reverse(want)
	if got := desc.tenants(); !slices.Equal(got, want) {
		t.Errorf("by name, Z to A: %v\nwant %v", got, want)
	}
	page2 := admin.admin(desc.href(`[data-testid="admin-pager"] [data-testid="next"]`))
	want = idsOf(ts[20:70])
	slices.Reverse(want)
	if got := page2.tenants(); !slices.Equal(got, want) {
		t.Errorf("by name, Z to A, page 2: %v\nwant %v", got, want)
	}
	// By session state: the CONNECTED ones come after the not-linked ones.
	byState := admin.admin("/admin?sort=state&dir=desc")
	if got := byState.tenants(); !slices.Equal(got[:24], idsOf(everyFifth(ts))) {
		t.Errorf("by state, descending: first rows %v, want the connected ones", got[:24])
	}
}

func everyFifth(ts []tenant.Tenant) []tenant.Tenant {
	var out []tenant.Tenant
	for i := 0; i < len(ts); i += 5 {
		out = append(out, ts[i])
	}
	return out
}

func TestAdminStateCountsAreFilterLinks(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 120)
	admin := newAdmin(e)
	p := admin.admin("/admin")

	connected := p.doc.Find(`[data-testid="admin-states"] a[data-value="CONNECTED"]`)
	if got := strings.TrimSpace(connected.Text()); got != "Connected (24)" {
		t.Errorf("the connected count reads %q, want Connected (24)", got)
	}
	if got := strings.TrimSpace(p.doc.Find(`[data-testid="admin-states"] a[data-value="QR_PENDING"]`).Text()); got != "Not linked (96)" {
		t.Errorf("the not-linked count reads %q", got)
	}
	f := admin.admin(connected.AttrOr("href", ""))
	if got := f.tenants(); !slices.Equal(got, idsOf(everyFifth(ts))) {
		t.Errorf("the connected link shows %v", got)
	}
	if s := f.text(`[data-testid="admin-showing"]`); s != "Showing 1–24 of 24" {
		t.Errorf("filtered page says %q", s)
	}
	if f.doc.Find(`[data-testid="admin-states"] a[aria-current][data-value="CONNECTED"]`).Length() != 1 {
		t.Error("the connected link is not marked as the current filter")
	}

	// Status counts filter too, keeping the state filter: connected and
	// waiting for approval are i%35 == 0.
	pending := f.doc.Find(`[data-testid="admin-statuses"] a[data-value="PENDING"]`)
	if got := strings.TrimSpace(pending.Text()); got != "Waiting for approval (4)" {
		t.Errorf("the pending count under connected reads %q", got)
	}
	both := admin.admin(pending.AttrOr("href", ""))
	if got, want := both.tenants(), idsOf([]tenant.Tenant{ts[0], ts[35], ts[70], ts[105]}); !slices.Equal(got, want) {
		t.Errorf("connected and pending: %v, want %v", got, want)
	}
	// A search narrows the counts.
	s := admin.admin("/admin?q=tenant+01")
	if got := strings.TrimSpace(s.doc.Find(`[data-testid="admin-states"] a[data-value="CONNECTED"]`).Text()); got != "Connected (2)" {
		t.Errorf("connected among tenant 01x: %q", got)
	}
}

func TestAdminAuditPagesAndFilters(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 3)
	ctx := context.Background()
	st := e.app.Store()
	admin := newAdmin(e)
	root, _ := st.UserByEmail(ctx, "root@example.com")
	ops, err := st.GrantAdmin(ctx, "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// 70 entries: root on tenant 0, ops on tenants 1 and 2 in turn.
	for i := range 70 {
		actor, tn := root, ts[0]
		if i%2 == 1 {
			actor, tn = ops, ts[1+i%4/2]
		}
		if err := st.Audit(ctx, actor, "restart", tn.ID, fmt.Sprintf("entry %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	details := func(p adminPage) []string {
		var out []string
		p.doc.Find(`[data-testid="audit-row"] td:last-child`).Each(func(_ int, s *goquery.Selection) { out = append(out, s.Text()) })
		return out
	}
	p := admin.admin("/admin")
	if got := details(p); len(got) != 50 || got[0] != "entry 69" || got[49] != "entry 20" {
		t.Errorf("audit page 1: %d rows, %v", len(got), got)
	}
	if s := p.text(`[data-testid="audit-showing"]`); s != "Showing 1–50 of 70" {
		t.Errorf("audit page 1 says %q", s)
	}
	p2 := admin.admin(p.href(`[data-testid="audit-pager"] [data-testid="next"]`))
	if got := details(p2); len(got) != 20 || got[0] != "entry 19" || got[19] != "entry 00" {
		t.Errorf("audit page 2: %v", got)
	}
	if got := p2.tenants(); len(got) != 3 {
		t.Errorf("paging the audit log changed the tenant list: %v", got)
	}

	// The tenant cell filters by that tenant.
	byTenant := admin.admin(p.doc.Find(`[data-testid="audit-row"][data-tenant="`+ts[2].ID+`"] [data-testid="audit-tenant"]`).AttrOr("href", ""))
	rows := byTenant.doc.Find(`[data-testid="audit-row"]`)
	if rows.Length() != 17 {
		t.Errorf("filtered by %s: %d rows, want 17", ts[2].Name, rows.Length())
	}
	rows.Each(func(_ int, s *goquery.Selection) {
		if s.AttrOr("data-tenant", "") != ts[2].ID {
			t.Errorf("filtered by tenant, a row of %s", s.AttrOr("data-tenant", ""))
		}
	})
	if v := byTenant.doc.Find(`#audit-tenant`).AttrOr("value", ""); v != ts[2].ID {
		t.Errorf("the tenant filter box shows %q", v)
	}
	// By part of a tenant's name, typed.
	if got := admin.admin("/admin?audit_tenant=" + url.QueryEscape("tenant 001")).doc.Find(`[data-testid="audit-row"]`).Length(); got != 18 {
		t.Errorf("filtered by name: %d rows, want 18", got)
	}
	// The actor cell filters by that actor.
	byActor := admin.admin(p.doc.Find(`[data-testid="audit-row"] [data-testid="audit-actor"]:contains("ops@example.com")`).AttrOr("href", ""))
	if got := details(byActor); len(got) != 35 || got[0] != "entry 69" || got[34] != "entry 01" {
		t.Errorf("filtered by ops: %d rows %v", len(got), got)
	}
	byActor.doc.Find(`[data-testid="audit-actor"]`).Each(func(_ int, s *goquery.Selection) {
		if s.Text() != "ops@example.com" {
			t.Errorf("filtered by ops, a row by %s", s.Text())
		}
	})
	if got := admin.admin("/admin?audit_actor=ROOT&audit_tenant=" + ts[1].ID).doc.Find(`[data-testid="no-audit"]`).Length(); got != 1 {
		t.Error("root never acted on tenant 1, yet rows show")
	}
}

func TestAdminBadParamsFallBack(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 60)
	admin := newAdmin(e)
	for _, q := range []string{
		"state=BOGUS",
		"status=nope",
		"sort=name%3B+DROP+TABLE+tenants",
		"sort=name&dir=sideways",
		"page=abc",
		"page=-3",
		"page=0",
		"page=99999999999999999999999",
		"page=9223372036854775807",
		"audit_page=-1&audit_page=x",
		"q=%ff%fe",
		"q=" + strings.Repeat("x", 10000),
		"q=%25&audit_tenant=%5C&audit_actor=_",
		"q=%00",
		"state=CONNECTED&state=ERROR",
		"%zz=1",
	} {
		t.Run(q, func(t *testing.T) {
			r := admin.get("/admin?" + q)
			if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="admin-filter"`) {
				t.Fatalf("GET /admin?%.60s: %d", q, r.status)
			}
		})
	}
	// A page past the end shows the last page.
	if got := admin.admin("/admin?page=99999999999999").tenants(); !slices.Equal(got, idsOf(ts[50:])) {
		t.Errorf("a page past the end shows %v, want the last page", got)
	}
	// An unknown state shows every tenant, as no filter does.
	if got := admin.admin("/admin?state=BOGUS").tenants(); !slices.Equal(got, idsOf(ts[:50])) {
		t.Errorf("an unknown state shows %d tenants", len(got))
	}
}

func TestAdminAt500TenantsShowsOnePage(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 500)
	admin := newAdmin(e)
	p := admin.admin("/admin")
	if got := p.tenants(); !slices.Equal(got, idsOf(ts[:50])) {
		t.Errorf("the page shows %d tenants, want the first 50", len(got))
	}
	shown := 0
	for _, tn := range ts {
		if strings.Contains(p.r.body, tn.Name) {
			shown++
		}
	}
	if shown != 50 {
		t.Errorf("the page names %d of 500 tenants, want 50", shown)
	}
	if s := p.text(`[data-testid="admin-showing"]`); s != "Showing 1–50 of 500" {
		t.Errorf("the page says %q", s)
	}
	if got := strings.TrimSpace(p.doc.Find(`[data-testid="admin-states"] a[data-value=""]`).Text()); got != "All (500)" {
		t.Errorf("the all-states count reads %q", got)
	}
	last := admin.admin(p.doc.Find(`[data-testid="admin-pager"] .pages a`).Last().AttrOr("href", ""))
	if got := last.tenants(); !slices.Equal(got, idsOf(ts[450:])) {
		t.Errorf("the last page link shows %d tenants, not the last 50", len(got))
	}
}

func TestAdminActionReturnsToTheFilteredPage(t *testing.T) {
	e := newEnv(t, nil)
	ts := seedTenants(t, e, 120)
	admin := newAdmin(e)
	// Pending tenants (every seventh), sorted by name descending, page 2:
	// 17 pending, so page 2 does not exist at 50 a page; use a search
	// that leaves several and the name sort.
	from := "/admin?q=tenant+0&status=PENDING&sort=name&dir=desc"
	p := admin.admin(from)
	want := []string{ts[98].ID, ts[91].ID, ts[84].ID, ts[77].ID, ts[70].ID, ts[63].ID, ts[56].ID, ts[49].ID, ts[42].ID, ts[35].ID, ts[28].ID, ts[21].ID, ts[14].ID, ts[7].ID, ts[0].ID}
	if got := p.tenants(); !slices.Equal(got, want) {
		t.Fatalf("pending 0xx by name, descending: %v\nwant %v", got, want)
	}
	confirm := admin.admin(p.href(`tr[data-tenant="` + ts[49].ID + `"] [data-testid="action-approve"]`))
	action, ok := confirm.doc.Find(`[data-testid="confirm"] form`).Attr("action")
	if !ok {
		t.Fatal("no confirmation form")
	}
	cancel := confirm.href(`[data-testid="confirm"] a`)
	if u, _ := url.Parse(cancel); u.Path != "/admin" || u.Query().Get("status") != "PENDING" || u.Query().Get("q") != "tenant 0" {
		t.Errorf("cancel goes to %s", cancel)
	}
	r := admin.postForm(action, nil)
	u, _ := url.Parse(r.url)
	if r.status != http.StatusOK || u.Path != "/admin" || u.Query().Get("status") != "PENDING" || u.Query().Get("q") != "tenant 0" ||
		u.Query().Get("sort") != "name" || u.Query().Get("dir") != "desc" {
		t.Fatalf("after approving: %d at %s", r.status, r.url)
	}
	if !strings.Contains(r.body, "Tenant 049: approve done.") {
		t.Errorf("after approving, no confirmation: %s", r.body)
	}
	after, _ := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if got := (adminPage{t: t, r: r, doc: after}).tenants(); slices.Contains(got, ts[49].ID) || len(got) != 14 {
		t.Error("after approving, the pending list still shows the tenant")
	}
	// A back parameter that is not an /admin query cannot send the admin
	// elsewhere.
	r = admin.postForm("/admin/tenants/"+ts[56].ID+"/approve?back="+url.QueryEscape("//evil.example/x?state=BOGUS"), nil)
	if u, _ := url.Parse(r.url); r.status != http.StatusOK || u.Host != "wabot.test" || u.Path != "/admin" || u.RawQuery != "" {
		t.Errorf("a strange back parameter leads to %s (%d)", r.url, r.status)
	}
}
