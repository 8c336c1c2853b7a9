// Package webui is hwe's web interface: plain HTML, CSS and JavaScript (no
// framework, no build step, no network), committed in static/ and embedded
// in the binary, so `go build` alone produces a working UI.
//
// It is a single page application: every UI path serves index.html and the
// script draws the page for the path. Paths it does not know get the same
// page with status 404, which shows the 404 page.
package webui

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var files embed.FS

// Static is the embedded files (index.html, app.css, js/*.js).
var Static, _ = fs.Sub(files, "static")

var builtAt = time.Now()

// appRoutes are the path prefixes the single page application draws.
var appRoutes = []string{"/workflows/", "/runs/", "/login"}

// Handler serves the UI: static files by name, index.html for the
// application's own paths, and index.html with 404 for anything else.
func Handler() http.Handler {
	index, err := fs.ReadFile(Static, "index.html")
	if err != nil {
		panic("webui: index.html missing from the embedded files")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		setSecurityHeaders(w.Header())
		p := path.Clean("/" + r.URL.Path)
		if p != "/" && p != "/index.html" {
			name := strings.TrimPrefix(p, "/")
			if f, err := fs.Stat(Static, name); err == nil && !f.IsDir() {
				w.Header().Set("Cache-Control", "no-cache")
				http.ServeFileFS(w, r, Static, name)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		if p == "/" || p == "/index.html" || p == "/runs" || p == "/workflows" || isAppRoute(p) {
			http.ServeContent(w, r, "index.html", builtAt, bytes.NewReader(index))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write(index)
	})
}

func isAppRoute(p string) bool {
	for _, prefix := range appRoutes {
		if strings.HasPrefix(p, prefix) || p == strings.TrimSuffix(prefix, "/") {
			return true
		}
	}
	return false
}

// setSecurityHeaders forbids inline scripts, other origins and framing: the
// page only ever loads its own files and talks to its own API.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}
