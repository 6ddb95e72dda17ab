package portal

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"wabot/views"
)

// openAPIDoc is the contract of /api/v1. A test keeps it and the routes
// in step and checks real answers against its schemas; whoever adds a
// route adds its path here.
//
//go:embed openapi.json
var openAPIDoc []byte

func (p *Portal) openAPIShow(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}

// The parts of the document the reference page shows.
type oaDoc struct {
	Info struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"info"`
	Tags  []struct{ Name, Description string } `json:"tags"`
	Paths map[string]map[string]oaOperation    `json:"paths"`
}

type oaOperation struct {
	Summary     string                `json:"summary"`
	Description string                `json:"description"`
	Tags        []string              `json:"tags"`
	Security    []map[string][]string `json:"security"`
	Parameters  []struct {
		Name        string `json:"name"`
		In          string `json:"in"`
		Description string `json:"description"`
		Required    bool   `json:"required"`
		Schema      struct {
			Type any      `json:"type"`
			Enum []string `json:"enum"`
		} `json:"schema"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]oaMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Ref     string             `json:"$ref"`
		Content map[string]oaMedia `json:"content"`
	} `json:"responses"`
}

type oaMedia struct {
	Example json.RawMessage `json:"example"`
}

// apiDocs is the reference page's model, built once from the document.
var apiDocs = func() views.APIDocsView {
	var d oaDoc
	if err := json.Unmarshal(openAPIDoc, &d); err != nil {
		panic("portal/openapi.json: " + err.Error()) // a broken build, caught by every test
	}
	v := views.APIDocsView{Title: d.Info.Title, Intro: d.Info.Description}
	methods := []string{"get", "post", "put", "patch", "delete"}
	for _, tag := range d.Tags {
		sec := views.APISection{Name: tag.Name, Description: tag.Description}
		paths := make([]string, 0, len(d.Paths))
		for path := range d.Paths {
			paths = append(paths, path)
		}
		slices.Sort(paths)
		for _, path := range paths {
			for _, m := range methods {
				op, ok := d.Paths[path][m]
				if !ok || !slices.Contains(op.Tags, tag.Name) {
					continue
				}
				sec.Operations = append(sec.Operations, docOperation(strings.ToUpper(m), path, op))
			}
		}
		v.Sections = append(v.Sections, sec)
	}
	return v
}()

func docOperation(method, path string, op oaOperation) views.APIOperation {
	o := views.APIOperation{Method: method, Path: "/api/v1" + path, Summary: op.Summary, Description: op.Description,
		ID: strings.ToLower(method) + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(path)}
	if op.Security != nil && len(op.Security) == 0 {
		o.Scopes = "none: public"
	}
	for _, req := range op.Security {
		for _, scopes := range req {
			o.Scopes = strings.Join(scopes, ", ")
		}
	}
	for _, prm := range op.Parameters {
		typ, _ := prm.Schema.Type.(string)
		if len(prm.Schema.Enum) > 0 {
			typ = strings.Join(prm.Schema.Enum, " | ")
		}
		o.Params = append(o.Params, views.APIParam{Name: prm.Name, In: prm.In, Type: typ, Required: prm.Required, Description: prm.Description})
	}
	if op.RequestBody != nil {
		o.Request = prettyJSON(op.RequestBody.Content["application/json"].Example)
	}
	codes := make([]string, 0, len(op.Responses))
	for code := range op.Responses {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		r := op.Responses[code]
		if strings.HasPrefix(code, "2") && o.Response == "" {
			o.Status, o.Response = code, prettyJSON(r.Content["application/json"].Example)
			continue
		}
		if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
			o.Errors = append(o.Errors, code+" "+name)
		}
	}
	return o
}

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return string(out)
}

// apiDocsShow is the API reference, rendered from the document on the
// server: public like the document, no script and nothing from elsewhere.
func (p *Portal) apiDocsShow(c echo.Context) error {
	v := apiDocs
	v.Chrome = p.chrome(c, loc(c).T("APIReference"), "docs")
	return Render(c, http.StatusOK, views.APIDocsPage(v))
}
