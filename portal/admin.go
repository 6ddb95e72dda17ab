package portal

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"wabot/tenant"
	"wabot/views"
)

// adminPerPage is how many tenants, and how many audit entries, one page
// of /admin shows.
const adminPerPage = tenant.DefaultPerPage

// maxAdminSearch bounds a search (in characters); the inputs say so too.
const maxAdminSearch = 100

// adminQuery is /admin's query string, read leniently: a value that does
// not parse falls back to its default, so a hand-edited or stale URL
// shows a page instead of an error.
type adminQuery struct {
	Search      string            // q
	State       tenant.LinkState  // state
	Status      tenant.Status     // status
	Sort        tenant.TenantSort // sort
	Desc        bool              // dir=desc, or the sort's default
	Page        int               // page
	AuditTenant string            // audit_tenant
	AuditActor  string            // audit_actor
	AuditPage   int               // audit_page
}

// defaultDesc is each sort's first direction: last seen shows the most
// recent first, the others go A to Z, oldest first.
func defaultDesc(s tenant.TenantSort) bool { return s == tenant.SortLastSeen }

func parseAdminQuery(v url.Values) adminQuery {
	q := adminQuery{
		Search:      searchParam(v.Get("q")),
		Sort:        tenant.SortCreated,
		Page:        pageParam(v.Get("page")),
		AuditTenant: searchParam(v.Get("audit_tenant")),
		AuditActor:  searchParam(v.Get("audit_actor")),
		AuditPage:   pageParam(v.Get("audit_page")),
	}
	if st := tenant.LinkState(v.Get("state")); slices.Contains(tenant.LinkStates, st) {
		q.State = st
	}
	if st := tenant.Status(v.Get("status")); slices.Contains(tenant.Statuses, st) {
		q.Status = st
	}
	if s := tenant.TenantSort(v.Get("sort")); slices.Contains(tenant.TenantSorts, s) {
		q.Sort = s
	}
	switch v.Get("dir") {
	case "asc":
		q.Desc = false
	case "desc":
		q.Desc = true
	default:
		q.Desc = defaultDesc(q.Sort)
	}
	return q
}

// searchParam trims a search and keeps at most maxAdminSearch characters
// of valid UTF-8.
func searchParam(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, ""))
	if r := []rune(s); len(r) > maxAdminSearch {
		s = strings.TrimSpace(string(r[:maxAdminSearch]))
	}
	return s
}

// pageParam reads a page number; anything but a positive number is 1.
// The store clamps pages past the end.
func pageParam(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// values is q as a query string, leaving out defaults so URLs stay short.
func (q adminQuery) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("q", q.Search)
	set("state", string(q.State))
	set("status", string(q.Status))
	if q.Sort != tenant.SortCreated {
		set("sort", string(q.Sort))
	}
	if q.Desc != defaultDesc(q.Sort) {
		set("dir", map[bool]string{false: "asc", true: "desc"}[q.Desc])
	}
	if q.Page > 1 {
		set("page", strconv.Itoa(q.Page))
	}
	set("audit_tenant", q.AuditTenant)
	set("audit_actor", q.AuditActor)
	if q.AuditPage > 1 {
		set("audit_page", strconv.Itoa(q.AuditPage))
	}
	return v
}

// url is /admin showing q; fragment (such as "#audit") is appended.
func (q adminQuery) url(fragment string) string {
	if enc := q.values().Encode(); enc != "" {
		return "/admin?" + enc + fragment
	}
	return "/admin" + fragment
}

// hidden lists q's fields as hidden inputs for a form that sets the
// others (named in skip) itself.
func (q adminQuery) hidden(skip ...string) []views.Param {
	var out []views.Param
	v := q.values()
	for _, k := range []string{"q", "state", "status", "sort", "dir", "page", "audit_tenant", "audit_actor", "audit_page"} {
		if val := v.Get(k); val != "" && !slices.Contains(skip, k) {
			out = append(out, views.Param{Name: k, Value: val})
		}
	}
	return out
}

// adminBack reads the "back" parameter of an action's URLs: the /admin
// query to return to, re-parsed so only a valid /admin URL comes out.
func adminBack(c echo.Context) adminQuery {
	v, err := url.ParseQuery(c.QueryParam("back"))
	if err != nil {
		v = url.Values{}
	}
	return parseAdminQuery(v)
}

// actionURL is the confirmation URL of action on tenantID, returning to
// q's page afterwards.
func (q adminQuery) actionURL(tenantID, action string) string {
	u := "/admin/tenants/" + tenantID + "/" + action
	if enc := q.values().Encode(); enc != "" {
		u += "?" + url.Values{"back": {enc}}.Encode()
	}
	return u
}

func (p *Portal) adminShow(c echo.Context) error {
	ctx := c.Request().Context()
	q := parseAdminQuery(c.QueryParams())
	list, err := p.store.AdminTenants(ctx, tenant.TenantQuery{
		Search: q.Search, State: q.State, Status: q.Status, Sort: q.Sort, Desc: q.Desc, Page: q.Page, PerPage: adminPerPage,
	})
	if err != nil {
		return err
	}
	q.Page = list.Page
	audit, err := p.store.AuditEntries(ctx, tenant.AuditQuery{Tenant: q.AuditTenant, Actor: q.AuditActor, Page: q.AuditPage, PerPage: adminPerPage})
	if err != nil {
		return err
	}
	q.AuditPage = audit.Page

	now := time.Now()
	v := views.AdminView{
		Chrome: p.chrome(c, loc(c).T("NavAdmin"), "admin"), Search: q.Search, AuditTenant: q.AuditTenant, AuditActor: q.AuditActor,
		Keep:      q.hidden("q", "page"),
		AuditKeep: q.hidden("audit_tenant", "audit_actor", "audit_page"),
		SortName:  sortLink(q, tenant.SortName, loc(c).T("Tenant")),
		SortState: sortLink(q, tenant.SortState, "WhatsApp"),
		SortSeen:  sortLink(q, tenant.SortLastSeen, loc(c).T("LastSeen")),
	}
	reset := q
	reset.Search, reset.State, reset.Status, reset.Sort, reset.Desc, reset.Page = "", "", "", tenant.SortCreated, false, 1
	if reset != q {
		v.Clear = reset.url("")
	}
	clearAudit := q
	clearAudit.AuditTenant, clearAudit.AuditActor, clearAudit.AuditPage = "", "", 1
	if clearAudit != q {
		v.AuditClear = clearAudit.url("#audit")
	}

	// Counts as links: each keeps the search, the other filter and the
	// sort, and starts again at page 1.
	facet := func(set func(*adminQuery)) string {
		f := q
		f.Page = 1
		set(&f)
		return f.url("")
	}
	allStates := 0
	for _, st := range tenant.LinkStates {
		allStates += list.States[st]
	}
	v.States = append(v.States, views.FilterLink{Label: loc(c).T("FilterAllStates"), Count: allStates, Active: q.State == "", URL: facet(func(f *adminQuery) { f.State = "" })})
	for _, st := range tenant.LinkStates {
		label, _ := stateWords(loc(c), st)
		v.States = append(v.States, views.FilterLink{Label: label, Value: string(st), Count: list.States[st], Active: q.State == st,
			URL: facet(func(f *adminQuery) { f.State = st })})
	}
	allStatuses := 0
	for _, st := range tenant.Statuses {
		allStatuses += list.Statuses[st]
	}
	v.Statuses = append(v.Statuses, views.FilterLink{Label: loc(c).T("FilterAllStates"), Count: allStatuses, Active: q.Status == "", URL: facet(func(f *adminQuery) { f.Status = "" })})
	for _, st := range tenant.Statuses {
		v.Statuses = append(v.Statuses, views.FilterLink{Label: tenantView(loc(c), tenant.Tenant{Status: st}).StatusLabel, Value: string(st), Count: list.Statuses[st],
			Active: q.Status == st, URL: facet(func(f *adminQuery) { f.Status = st })})
	}

	usage, err := p.store.MediaUsageByTenant(ctx)
	if err != nil {
		return err
	}
	aiTokens, err := p.store.AITokensByTenant(ctx, now)
	if err != nil {
		return err
	}
	for _, o := range list.Overviews {
		label, _ := stateWords(loc(c), o.Link.State)
		row := views.AdminTenantRow{
			ID: o.Tenant.ID, Name: o.Tenant.Name, Owner: o.Owner, Status: string(o.Tenant.Status), StatusLabel: tenantView(loc(c), o.Tenant).StatusLabel,
			State: string(o.Link.State), StateLabel: label, Number: tenant.PhoneOf(o.Link.JID),
			LastSeen: loc(c).Ago(o.Worker.LastSeenAt, now), Restarts: o.Worker.Restarts, LastError: o.Link.LastError,
			WorkerStatus: string(o.Worker.Status),
			MediaBytes:   humanSize(loc(c), usage[o.Tenant.ID].Bytes), MediaFiles: usage[o.Tenant.ID].Files,
		}
		if n := aiTokens[o.Tenant.ID]; n > 0 {
			row.AITokens = loc(c).Int(int(n))
		}
		for _, a := range adminActions(o.Tenant.Status) {
			row.Actions = append(row.Actions, views.AdminAction{Name: a, Label: actionLabel(loc(c), a), URL: q.actionURL(o.Tenant.ID, a)})
		}
		v.Tenants = append(v.Tenants, row)
	}
	v.Pager = pager(loc(c), list.Page, list.Pages, list.Total, list.Offset(), len(list.Overviews), func(n int) string {
		at := q
		at.Page = n
		return at.url("")
	})

	for _, l := range audit.Lines {
		byActor, byTenant := q, q
		byActor.AuditActor, byActor.AuditPage = l.ActorEmail, 1
		row := views.AuditRow{At: loc(c).DateTimeSeconds(l.At), Actor: l.ActorEmail, ActorURL: byActor.url("#audit"),
			Action: actionLabel(loc(c), l.Action), TenantID: l.TenantID, Tenant: l.TenantName, Detail: l.Detail}
		if l.TenantID != "" {
			byTenant.AuditTenant, byTenant.AuditPage = l.TenantID, 1
			row.TenantURL = byTenant.url("#audit")
			if row.Tenant == "" {
				row.Tenant = l.TenantID
			}
		}
		v.Audit = append(v.Audit, row)
	}
	v.AuditPager = pager(loc(c), audit.Page, audit.Pages, audit.Total, audit.Offset(), len(audit.Lines), func(n int) string {
		at := q
		at.AuditPage = n
		return at.url("#audit")
	})
	return Render(c, http.StatusOK, views.AdminPage(v))
}

// sortLink is a column heading: on the column sorted by, it turns the
// direction around; on another, it sorts by that column in its default
// direction. Either way from page 1.
func sortLink(q adminQuery, by tenant.TenantSort, label string) views.SortLink {
	l := views.SortLink{Label: label, Active: q.Sort == by, Desc: q.Desc}
	next := q
	next.Page = 1
	if q.Sort == by {
		next.Desc = !q.Desc
	} else {
		next.Sort, next.Desc = by, defaultDesc(by)
	}
	l.URL = next.url("")
	return l
}

// pager links the pages of a list: the first and last, and two either
// side of the current one, with gaps between.
func pager(l *views.Locale, page, pages, total, offset, shown int, at func(int) string) views.Pager {
	var pg views.Pager
	if total > 0 {
		pg.Showing = l.T("Showing", "From", l.Int(offset+1), "To", l.Int(offset+shown), "Total", l.Int(total))
	}
	if pages <= 1 {
		return pg
	}
	if page > 1 {
		pg.Prev = at(page - 1)
	}
	if page < pages {
		pg.Next = at(page + 1)
	}
	last := 0
	for n := 1; n <= pages; n++ {
		if n != 1 && n != pages && (n < page-2 || n > page+2) {
			continue
		}
		if last != 0 && n > last+1 {
			pg.Pages = append(pg.Pages, views.PageLink{Label: "…"})
		}
		pg.Pages = append(pg.Pages, views.PageLink{Label: strconv.Itoa(n), URL: at(n), Current: n == page})
		last = n
	}
	return pg
}

// adminActions are the actions that make sense for a tenant's status,
// as the admin page's buttons name them.
func adminActions(status tenant.Status) []string {
	var names []string
	for _, a := range tenant.ActionsFor(status) {
		names = append(names, string(a))
	}
	return names
}

func adminActionText(l *views.Locale, a tenant.Action) (text struct{ title, message string }) {
	switch a {
	case tenant.ActionApprove:
		text.title, text.message = l.T("ApproveTitle"), l.T("ApproveMessage")
	case tenant.ActionSuspend:
		text.title, text.message = l.T("SuspendTitle"), l.T("SuspendMessage")
	case tenant.ActionResume:
		text.title, text.message = l.T("ResumeTitle"), l.T("ResumeMessage")
	case tenant.ActionRestart:
		text.title, text.message = l.T("RestartTitle"), l.T("RestartMessage")
	case tenant.ActionReset:
		text.title, text.message = l.T("ResetTitle"), l.T("ResetMessage")
	}
	return text
}

// actionLabel is an admin action ("approve") in words; other audit
// entries show as written.
func actionLabel(l *views.Locale, a string) string {
	switch tenant.Action(a) {
	case tenant.ActionApprove:
		return l.T("ActionApprove")
	case tenant.ActionSuspend:
		return l.T("ActionSuspend")
	case tenant.ActionResume:
		return l.T("ActionResume")
	case tenant.ActionRestart:
		return l.T("ActionRestart")
	case tenant.ActionReset:
		return l.T("ActionReset")
	}
	return a
}

// tenantFromPath loads the tenant named in the path, after checking the id
// has wabot's shape.
func (p *Portal) tenantFromPath(c echo.Context) (tenant.Tenant, error) {
	id := c.Param("id")
	if !tenant.ValidTenantID(id) {
		return tenant.Tenant{}, echo.NewHTTPError(http.StatusNotFound)
	}
	t, err := p.store.TenantByID(c.Request().Context(), id)
	if errors.Is(err, tenant.ErrNotFound) {
		return t, echo.NewHTTPError(http.StatusNotFound)
	}
	return t, err
}

// adminActionConfirm asks before an admin action on a tenant;
// adminActionApply carries it out.
func (p *Portal) adminActionConfirm(c echo.Context) error {
	action, err := tenant.ParseAction(c.Param("action"))
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	text := adminActionText(loc(c), action)
	t, err := p.tenantFromPath(c)
	if err != nil {
		return err
	}
	back := adminBack(c)
	return Render(c, http.StatusOK, views.ConfirmPage(views.ConfirmView{
		Chrome: p.chrome(c, text.title, "admin"), Title: text.title, Message: t.Name + ": " + text.message,
		Action: back.actionURL(t.ID, string(action)), Button: actionLabel(loc(c), string(action)), Cancel: back.url(""),
		Danger: action != tenant.ActionApprove && action != tenant.ActionResume,
	}))
}

func (p *Portal) adminActionApply(c echo.Context) error {
	action, err := tenant.ParseAction(c.Param("action"))
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	t, err := p.tenantFromPath(c)
	if err != nil {
		return err
	}
	admin, _ := currentUser(c)
	if err := p.sessions.Apply(c.Request().Context(), admin, t, action); err != nil {
		if tenant.ErrorCode(err) == "" {
			return err
		}
		p.flash(c, "error", err.Error())
		return c.Redirect(http.StatusSeeOther, adminBack(c).url(""))
	}
	p.log.Info("admin action", "admin", admin.ID, "action", action, "tenant", t.ID)
	p.flash(c, "ok", loc(c).T("FlashActionDone", "Name", t.Name, "Action", actionLabel(loc(c), string(action))))
	// Back to the page the admin acted from, filters and all.
	return c.Redirect(http.StatusSeeOther, adminBack(c).url(""))
}
