package portal_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"wabot/portal"
	"wabot/tenant/tenanttest"
)

// The OpenAPI document, parsed once for the tests: its paths as patterns
// and a JSON Schema compiler that reads schemas straight out of it.
var openAPI = sync.OnceValues(func() (*openAPIDoc, error) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var d openAPIDoc
	if err := json.Unmarshal(raw, &d.doc); err != nil {
		return nil, err
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	d.compiler = jsonschema.NewCompiler()
	d.compiler.DefaultDraft(jsonschema.Draft2020)
	d.compiler.AssertFormat()
	if err := d.compiler.AddResource(openAPIURL, parsed); err != nil {
		return nil, err
	}
	d.schemas = map[string]*jsonschema.Schema{}
	return &d, nil
})

const openAPIURL = "https://wabot.invalid/openapi.json"

type openAPIDoc struct {
	doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	d, err := openAPI()
	if err != nil {
		t.Fatalf("portal/openapi.json: %v", err)
	}
	return d
}

// docPath finds the document's path template for a request path under
// /api/v1 ("/admin/tenants/t.../approve" → "/admin/tenants/{id}/approve").
func (d *openAPIDoc) docPath(path string) (string, bool) {
	path, _, _ = strings.Cut(strings.TrimPrefix(path, "/api/v1"), "?")
	got := strings.Split(path, "/")
	for tmpl := range d.doc.Paths {
		want := strings.Split(tmpl, "/")
		if len(want) != len(got) {
			continue
		}
		match := true
		for i := range want {
			if want[i] != got[i] && !(strings.HasPrefix(want[i], "{") && got[i] != "") {
				match = false
				break
			}
		}
		if match {
			return tmpl, true
		}
	}
	return "", false
}

func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// checkResponse fails the test when an answer of /api/v1 is not what the
// document promises: an undocumented path, method or status, or a body
// its schema refuses.
func checkResponse(t *testing.T, method, path string, status int, body string) {
	t.Helper()
	d := loadOpenAPI(t)
	tmpl, ok := d.docPath(path)
	if !ok {
		if status == http.StatusNotFound || status == http.StatusUnauthorized || status == http.StatusMethodNotAllowed {
			return // no route: nothing to document
		}
		t.Errorf("%s %s answered %d but the document has no such path", method, path, status)
		return
	}
	var op struct {
		Responses map[string]struct {
			Ref string `json:"$ref"`
		} `json:"responses"`
	}
	rawOp, ok := d.doc.Paths[tmpl][strings.ToLower(method)]
	if !ok {
		if status == http.StatusMethodNotAllowed || status == http.StatusUnauthorized {
			return
		}
		t.Errorf("%s %s answered %d but the document has no %s on %s", method, path, status, method, tmpl)
		return
	}
	if err := json.Unmarshal(rawOp, &op); err != nil {
		t.Fatal(err)
	}
	r, ok := op.Responses[itoa(status)]
	if !ok {
		t.Errorf("%s %s answered %d, which the document does not list for %s %s: %s", method, path, status, method, tmpl, body)
		return
	}
	ptr := "#/paths/" + pointerEscape(tmpl) + "/" + strings.ToLower(method) + "/responses/" + itoa(status)
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		ptr = "#/components/responses/" + pointerEscape(name)
	}
	ptr += "/content/application~1json/schema"
	sch := d.schema(t, ptr)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		t.Errorf("%s %s answered %d with a body that is not JSON: %q", method, path, status, body)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s answered %d with a body the document's schema refuses:\n%s\n%v", method, path, status, body, err)
	}
}

func (d *openAPIDoc) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s
	}
	s, err := d.compiler.Compile(openAPIURL + ptr)
	if err != nil {
		t.Fatalf("compiling %s: %v", ptr, err)
	}
	d.schemas[ptr] = s
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestOpenAPICoversEveryRoute: every route under /api/v1 is in the
// document and every path and method of the document is a route.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	d := loadOpenAPI(t)
	e := echo.New()
	p := portal.New(portal.Config{BaseURL: &url.URL{Scheme: "http", Host: "wabot.test"}}, slog.New(slog.DiscardHandler), tenanttest.Open(t), nil, nil)
	t.Cleanup(p.Close)
	p.Routes(e)

	var routes, documented []string
	param := regexp.MustCompile(`:([^/]+)`)
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == echo.RouteNotFound {
			continue
		}
		routes = append(routes, r.Method+" "+param.ReplaceAllString(strings.TrimPrefix(r.Path, "/api/v1"), "{$1}"))
	}
	for path, ops := range d.doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is missing from portal/openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(routes, r) {
			t.Errorf("portal/openapi.json documents %s, which is no route", r)
		}
	}
	if len(routes) < 10 {
		t.Fatalf("found only %d routes under /api/v1: %v", len(routes), routes)
	}
}
