package portal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestAPIV1AdminLinksAWorkspace: an instance key creates a workspace,
// starts its link and gets the QR code as text and as a PNG data URI, as
// a workspace's key does on /session/link; the customer's phone scans it
// and the workspace is connected. The link is audited with the key as
// actor; an unknown or suspended workspace is refused, and a workspace's
// own key cannot link another.
func TestAPIV1AdminLinksAWorkspace(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	inst := e.api(newAdmin(e).createKey("/admin/keys", "Reseller"))
	r := inst.call(http.MethodPost, "/api/v1/admin/tenants", map[string]string{"name": "Linked Bakery", "owner_email": "owner@linked.example"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)

	r = inst.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/link", nil)
	if st := r.json(t)["state"]; r.status != http.StatusOK || (st != "QR_READY" && st != "QR_PENDING") {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	qr := waitAPI(t, inst, "/api/v1/admin/tenants/"+id+"/session", func(m map[string]any) bool { return m["state"] == "QR_READY" })
	png, _ := qr["qr_png"].(string)
	code, _ := qr["qr_code"].(string)
	if !strings.HasPrefix(png, "data:image/png;base64,") || code == "" {
		t.Fatalf("no QR code to show: %v", qr)
	}
	phone := e.wa.NewPhone("")
	if _, err := phone.Scan(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	linked := waitAPI(t, inst, "/api/v1/admin/tenants/"+id+"/session", func(m map[string]any) bool { return m["state"] == "CONNECTED" })
	if linked["number"] != "+"+phone.Number() || linked["qr_code"] != nil {
		t.Fatalf("linked: %v", linked)
	}
	if list := inst.call(http.MethodGet, "/api/v1/admin/tenants", nil); !strings.Contains(list.body, `"state":"CONNECTED"`) {
		t.Fatalf("the list does not show it connected: %s", list.body)
	}

	log, err := e.app.Store().AuditLog(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var linkAudits int
	for _, l := range log {
		if l.TenantID == id && l.Action == "link" {
			linkAudits++
			if !strings.Contains(l.ActorEmail, "Reseller") {
				t.Errorf("audit actor %q", l.ActorEmail)
			}
		}
	}
	if linkAudits != 1 {
		t.Fatalf("%d link audits, want 1: %+v", linkAudits, log)
	}

	wantErr(t, "unknown workspace", inst.call(http.MethodPost, "/api/v1/admin/tenants/tzzzzzzzzzzzzzzzz/link", nil), http.StatusNotFound, "not_found")
	wantErr(t, "unknown workspace's session", inst.call(http.MethodGet, "/api/v1/admin/tenants/tzzzzzzzzzzzzzzzz/session", nil), http.StatusNotFound, "not_found")
	if r := inst.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/suspend", nil); r.status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	wantErr(t, "suspended workspace", inst.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/link", nil), http.StatusConflict, "conflict")

	other, _ := e.tenantUser("other-owner@example.com", "Other")
	own := e.api(other.createKey("/app/settings/keys", "all", "session:manage", "bot:manage"))
	wantErr(t, "workspace key links another", own.call(http.MethodPost, "/api/v1/admin/tenants/"+id+"/link", nil), http.StatusForbidden, "forbidden")
	wantErr(t, "workspace key reads another", own.call(http.MethodGet, "/api/v1/admin/tenants/"+id+"/session", nil), http.StatusForbidden, "forbidden")
}
