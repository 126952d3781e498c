// Package web holds the dashboard's files: plain HTML, CSS and JavaScript,
// with uPlot (vendored from npm with its licence by `make web-vendor`)
// for charts. They are embedded, so building the query function needs no
// npm, and served by it under the Content-Security-Policy below: the page
// loads nothing from outside the deployment.
package web

import (
	"embed"
	"io/fs"
	"path"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy of every dashboard response: scripts,
// styles and data from the deployment itself, no inline script, no frames.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

// Asset returns a dashboard file by its name under /assets/ and its
// content type; ok is false for a name that is not one.
func Asset(name string) (body []byte, contentType string, ok bool) {
	if name == "" || name != path.Clean(name) || path.IsAbs(name) || name == "index.html" {
		return nil, "", false
	}
	ct, known := types[path.Ext(name)]
	if !known {
		if path.Base(name) != "uPlot.LICENSE" {
			return nil, "", false
		}
		ct = types[".txt"]
	}
	b, err := fs.ReadFile(files, "static/"+name)
	if err != nil {
		return nil, "", false
	}
	return b, ct, true
}

// Index is the dashboard's page.
func Index() []byte {
	b, err := fs.ReadFile(files, "static/index.html")
	if err != nil {
		panic("web: index.html is not embedded: " + err.Error())
	}
	return b
}
