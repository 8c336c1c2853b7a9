package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServesEmbeddedPages loads every embedded file and the app's paths the
// way a browser would.
func TestServesEmbeddedPages(t *testing.T) {
	ts := httptest.NewServer(Handler())
	defer ts.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{"/", "/index.html", "/workflows/etl", "/workflows/etl/edit", "/workflows/new", "/runs", "/runs/01ABC", "/login"} {
		resp, body := get(p)
		if resp.StatusCode != 200 || !strings.Contains(body, `<main id="app"`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}
	// Unknown paths get the page (which draws the 404) with status 404.
	for _, p := range []string{"/nope", "/workflowsx", "/a/b/c"} {
		resp, body := get(p)
		if resp.StatusCode != 404 || !strings.Contains(body, `<main id="app"`) {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	// Every embedded file is served with a sensible type.
	n := 0
	fs.WalkDir(Static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		resp, body := get("/" + path)
		want := map[string]string{".js": "text/javascript", ".css": "text/css", ".html": "text/html"}[filepath.Ext(path)]
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Errorf("/%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return nil
	})
	if n < 10 {
		t.Fatalf("only %d embedded files", n)
	}
	resp, _ := get("/../../etc/passwd")
	if resp.StatusCode == 200 {
		t.Fatal("a path outside the embedded files was served")
	}
	req, _ := http.NewRequest("POST", ts.URL+"/", nil)
	if r, _ := http.DefaultClient.Do(req); r.StatusCode != 405 {
		t.Fatalf("POST /: %d", r.StatusCode)
	}
}

// TestNoHTMLSinks keeps data out of HTML parsing: the UI must build the DOM
// from text only, and load nothing from other origins.
func TestNoHTMLSinks(t *testing.T) {
	fs.WalkDir(Static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(Static, path)
		// The SVG namespace is a name, not a request.
		src := strings.ReplaceAll(string(b), `"http://www.w3.org/2000/svg"`, "")
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", path, bad)
			}
		}
		return nil
	})
}

// nodeBinary finds node, failing (not skipping) when it is missing.
func nodeBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/node", "node"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("node is required to check the web UI's JavaScript: install Node.js 18 or later (apt-get install nodejs)")
	return ""
}

// TestJavaScript checks every module's syntax and runs the unit tests of
// the pure modules (tokenizer, graph layout, SSE parsing) under node.
func TestJavaScript(t *testing.T) {
	node := nodeBinary(t)
	dir := t.TempDir()
	if err := os.CopyFS(dir, Static); err != nil {
		t.Fatal(err)
	}
	// node only treats .js files as ES modules inside a "type": "module" package.
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"type": "module"}`), 0o644)
	fs.WalkDir(Static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".js" {
			return err
		}
		if out, err := exec.Command(node, "--check", filepath.Join(dir, path)).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", path, err, out)
		}
		return nil
	})
	test, _ := os.ReadFile("testdata/logic_test.mjs")
	os.WriteFile(filepath.Join(dir, "logic_test.mjs"), test, 0o644)
	out, err := exec.Command(node, filepath.Join(dir, "logic_test.mjs")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("UI unit tests: %v\n%s", err, out)
	}
}
