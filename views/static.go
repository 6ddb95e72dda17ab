// Package views holds wabot's templ components and its static assets. It is
// pure: components take typed view models and import no HTTP, SQL or
// WhatsApp code.
package views

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"strconv"
)

//go:embed static
var staticFiles embed.FS

// Static is the folder of CSS, JavaScript and icons the portal serves under
// /static/.
var Static, _ = fs.Sub(staticFiles, "static")

// staticVersion changes whenever an asset changes, so assets can be cached
// for a year.
var staticVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(Static, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(Static, p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:10]
}()

// StaticPath is the versioned URL of an asset.
func StaticPath(name string) string { return "/static/" + name + "?v=" + staticVersion }

func itoa(n int) string { return strconv.Itoa(n) }
