package tenant

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// The admin console's lists: tenants searched, filtered, sorted and paged
// in SQL, with counts per state, and the audit log paged and filtered, so
// the page stays one page long at hundreds of tenants.

// TenantSort names what the admin console sorts tenants by. Request input
// only ever picks one of these; the ORDER BY text is ours.
type TenantSort string

const (
	SortCreated  TenantSort = "created"
	SortName     TenantSort = "name"
	SortState    TenantSort = "state"
	SortLastSeen TenantSort = "seen"
)

// TenantSorts lists every sort the console offers.
var TenantSorts = []TenantSort{SortCreated, SortName, SortState, SortLastSeen}

// tenantOrder is each sort's ORDER BY expression. Link states sort in the
// order people read them, not alphabetically; a supervisor never seen
// counts as the oldest.
var tenantOrder = map[TenantSort]string{
	SortCreated:  `t.created_at`,
	SortName:     `LOWER(t.name)`,
	SortState:    `CASE s.state WHEN 'QR_PENDING' THEN 0 WHEN 'QR_READY' THEN 1 WHEN 'QR_EXPIRED' THEN 2 WHEN 'CONNECTED' THEN 3 WHEN 'DISCONNECTED' THEN 4 WHEN 'ERROR' THEN 5 ELSE 6 END`,
	SortLastSeen: `COALESCE(w.last_seen_at, 0)`,
}

// TenantQuery asks for one page of tenants. Zero values mean: no search,
// every state and status, oldest first, page 1 of DefaultPerPage.
type TenantQuery struct {
	// Search is a case-insensitive substring of the tenant's name, id or a
	// member's email; when it reads as a phone number (digits, spaces,
	// + - . ( )) it also matches the linked number.
	Search  string
	State   LinkState
	Status  Status
	Sort    TenantSort
	Desc    bool
	Page    int // from 1; past the last page means the last page
	PerPage int
}

// DefaultPerPage is the page size of the admin console's lists.
const DefaultPerPage = 50

// maxPerPage bounds what one request may ask for.
const maxPerPage = 500

// TenantPage is one page of tenants with the counts the console shows.
type TenantPage struct {
	Overviews []Overview
	Total     int // tenants matching every filter
	Page      int // the page returned, from 1
	Pages     int // at least 1
	PerPage   int
	// States counts the tenants matching the search and status filter by
	// link state, and Statuses those matching the search and state filter
	// by tenant status: each count is what its link would show. Every
	// known state is present.
	States   map[LinkState]int
	Statuses map[Status]int
}

// Offset is how many matching tenants come before this page.
func (p TenantPage) Offset() int { return (p.Page - 1) * p.PerPage }

const selectOverview = `SELECT t.id, t.name, t.status, t.created_at, t.updated_at,
	s.state, COALESCE(s.jid, ''), COALESCE(s.push_name, ''), s.connected_at, COALESCE(s.error_code, ''), COALESCE(s.last_error, ''), s.reconnect_attempts, s.reconnects,
	w.status, w.last_seen_at, w.restarts,
	COALESCE((SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = t.id AND m.role = 'owner' ORDER BY m.created_at, u.created_at LIMIT 1), '')`

const fromOverview = ` FROM tenants t JOIN wa_sessions s ON s.tenant_id = t.id JOIN workers w ON w.tenant_id = t.id`

// The search, in three parts so a phone-like search adds the number.
const (
	searchTenant = `(LOWER(t.name) LIKE LOWER(?) ESCAPE '\' OR LOWER(t.id) LIKE LOWER(?) ESCAPE '\'
	OR EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = t.id AND LOWER(u.email) LIKE LOWER(?) ESCAPE '\')`
	searchNumber = ` OR s.jid LIKE ?`
	searchEnd    = `)`
)

// AdminTenants returns one page of tenants for the admin console.
func (s *Store) AdminTenants(ctx context.Context, q TenantQuery) (TenantPage, error) {
	if q.State != "" && !slices.Contains(LinkStates, q.State) {
		return TenantPage{}, Errorf(CodeInvalid, "unknown session state %q", q.State)
	}
	if q.Status != "" && !slices.Contains(Statuses, q.Status) {
		return TenantPage{}, Errorf(CodeInvalid, "unknown tenant status %q", q.Status)
	}
	if q.Sort == "" {
		q.Sort = SortCreated
	}
	order, ok := tenantOrder[q.Sort]
	if !ok {
		return TenantPage{}, Errorf(CodeInvalid, "unknown sort %q", q.Sort)
	}
	p := TenantPage{States: map[LinkState]int{}, Statuses: map[Status]int{}}
	for _, st := range LinkStates {
		p.States[st] = 0
	}
	for _, st := range Statuses {
		p.Statuses[st] = 0
	}
	where, args := q.where("state")
	if err := countMatching(ctx, s, `SELECT s.state, COUNT(*)`+fromOverview+where+` GROUP BY s.state`, p.States, args...); err != nil {
		return p, err
	}
	where, args = q.where("status")
	if err := countMatching(ctx, s, `SELECT t.status, COUNT(*)`+fromOverview+where+` GROUP BY t.status`, p.Statuses, args...); err != nil {
		return p, err
	}
	if q.State != "" {
		p.Total = p.States[q.State]
	} else {
		for _, n := range p.States {
			p.Total += n
		}
	}
	p.Page, p.Pages, p.PerPage = paging(p.Total, q.Page, q.PerPage)

	dir := ` ASC`
	if q.Desc {
		dir = ` DESC`
	}
	where, args = q.where("")
	// created_at and id break ties, so pages never overlap or skip rows.
	sqlq := selectOverview + fromOverview + where + ` ORDER BY ` + order + dir + `, t.created_at, t.id LIMIT ? OFFSET ?`
	rows, err := s.db.read.QueryContext(ctx, sqlq, append(args, p.PerPage, p.Offset())...)
	if err != nil {
		return p, fmt.Errorf("listing tenants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Overview
		var tc, tu int64
		var conn, seen sql.NullInt64
		if err := rows.Scan(&o.Tenant.ID, &o.Tenant.Name, &o.Tenant.Status, &tc, &tu,
			&o.Link.State, &o.Link.JID, &o.Link.PushName, &conn, &o.Link.ErrorCode, &o.Link.LastError, &o.Link.ReconnectAttempts, &o.Link.Reconnects,
			&o.Worker.Status, &seen, &o.Worker.Restarts, &o.Owner); err != nil {
			return p, err
		}
		o.Tenant.CreatedAt, o.Tenant.UpdatedAt = fromMS(tc), fromMS(tu)
		o.Link.TenantID, o.Worker.TenantID = o.Tenant.ID, o.Tenant.ID
		o.Link.ConnectedAt, o.Worker.LastSeenAt = fromNullMS(conn), fromNullMS(seen)
		p.Overviews = append(p.Overviews, o)
	}
	return p, rows.Err()
}

// where builds the WHERE clause of q, leaving out the filter named by
// except ("state" or "status") for that filter's counts. Only fixed text
// goes into the SQL; the search and filters are arguments.
func (q TenantQuery) where(except string) (string, []any) {
	var conds []string
	var args []any
	if search := strings.TrimSpace(q.Search); search != "" {
		like := containsPattern(search)
		cond := searchTenant
		args = append(args, like, like, like)
		if digits := phoneDigits(search); digits != "" {
			// Digits before the @ of the JID: the number, not the server.
			cond += searchNumber
			args = append(args, "%"+digits+"%@%")
		}
		conds = append(conds, cond+searchEnd)
	}
	if q.State != "" && except != "state" {
		conds = append(conds, `s.state = ?`)
		args = append(args, q.State)
	}
	if q.Status != "" && except != "status" {
		conds = append(conds, `t.status = ?`)
		args = append(args, q.Status)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// countMatching reads "key, count" rows of a query taking args into into.
func countMatching[K ~string](ctx context.Context, s *Store, q string, into map[K]int, args ...any) error {
	rows, err := s.db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("counting tenants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k K
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		into[k] = n
	}
	return rows.Err()
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// containsPattern is a LIKE pattern (with ESCAPE '\') matching s anywhere,
// its wildcards taken literally.
func containsPattern(s string) string { return "%" + likeEscaper.Replace(s) + "%" }

// phoneDigits returns the digits of s when s reads as (part of) a phone
// number, else "".
func phoneDigits(s string) string {
	var digits strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case strings.ContainsRune("+-.() ", r):
		default:
			return ""
		}
	}
	return digits.String()
}

// paging clamps a requested page to the ones that exist: page 1 when bad,
// the last page when past it.
func paging(total, page, perPage int) (int, int, int) {
	if perPage <= 0 {
		perPage = DefaultPerPage
	}
	perPage = min(perPage, maxPerPage)
	pages := max(1, (total+perPage-1)/perPage)
	return min(max(page, 1), pages), pages, perPage
}

// AuditQuery asks for one page of the audit log, newest first.
type AuditQuery struct {
	Tenant  string // a tenant's id, or part of its name (case-insensitive)
	Actor   string // part of the acting user's email (case-insensitive)
	Page    int    // from 1; past the last page means the last page
	PerPage int
}

// AuditLine is an audit entry with its tenant's name, when it still has one.
type AuditLine struct {
	AuditEntry
	TenantName string
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Lines   []AuditLine
	Total   int
	Page    int
	Pages   int
	PerPage int
}

// Offset is how many matching entries come before this page.
func (p AuditPage) Offset() int { return (p.Page - 1) * p.PerPage }

const fromAudit = ` FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id`

// AuditEntries returns one page of the audit log, newest first.
func (s *Store) AuditEntries(ctx context.Context, q AuditQuery) (AuditPage, error) {
	var conds []string
	var args []any
	if v := strings.TrimSpace(q.Tenant); v != "" {
		conds = append(conds, `(a.tenant_id = ? OR LOWER(t.name) LIKE LOWER(?) ESCAPE '\')`)
		args = append(args, v, containsPattern(v))
	}
	if v := strings.TrimSpace(q.Actor); v != "" {
		conds = append(conds, `LOWER(a.actor_email) LIKE LOWER(?) ESCAPE '\'`)
		args = append(args, containsPattern(v))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	var p AuditPage
	if err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*)`+fromAudit+where, args...).Scan(&p.Total); err != nil {
		return p, fmt.Errorf("counting audit log: %w", err)
	}
	p.Page, p.Pages, p.PerPage = paging(p.Total, q.Page, q.PerPage)
	rows, err := s.db.read.QueryContext(ctx, `SELECT a.id, a.at, a.actor_id, a.actor_email, a.action, COALESCE(a.tenant_id, ''), a.detail, COALESCE(t.name, '')`+
		fromAudit+where+` ORDER BY a.id DESC LIMIT ? OFFSET ?`, append(args, p.PerPage, p.Offset())...)
	if err != nil {
		return p, fmt.Errorf("reading audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l AuditLine
		var at int64
		if err := rows.Scan(&l.ID, &at, &l.ActorID, &l.ActorEmail, &l.Action, &l.TenantID, &l.Detail, &l.TenantName); err != nil {
			return p, err
		}
		l.At = fromMS(at)
		p.Lines = append(p.Lines, l)
	}
	return p, rows.Err()
}
