package capability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// recorder is an Events sink that keeps what it got.
type recorder struct {
	mu       sync.Mutex
	lines    []string
	progress []float64
}

func (r *recorder) Log(stream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, stream+": "+line)
}

func (r *recorder) Progress(f float64, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, f)
}

// servers starts the HTTP servers the table uses, all on 127.0.0.1.
type servers struct {
	ok, forbidden, redirect, big *httptest.Server
}

func startServers(t *testing.T) servers {
	t.Helper()
	var s servers
	s.ok = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "yes")
		fmt.Fprintf(w, "hello %s", r.Method)
	}))
	s.forbidden = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "secret internal data")
	}))
	s.redirect = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get("to")
		http.Redirect(w, r, target, http.StatusFound)
	}))
	s.big = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	}))
	t.Cleanup(func() { s.ok.Close(); s.forbidden.Close(); s.redirect.Close(); s.big.Close() })
	return s
}

func hostPort(ts *httptest.Server) string { return strings.TrimPrefix(ts.URL, "http://") }

func port(ts *httptest.Server) string {
	_, p, _ := net.SplitHostPort(hostPort(ts))
	return p
}

func TestHostAPICases(t *testing.T) {
	s := startServers(t)
	kv := NewMemoryKV()
	secrets := MapSecrets{"TOKEN": "s3cret", "OTHER": "not yours"}

	type result struct {
		denied     string // capability expected in a DeniedError
		limit      string // limit expected in a LimitError
		errContain string // any other error
		body       string // expected HTTP body or secret/KV value
	}
	cases := []struct {
		name  string
		grant api.Grant
		call  func(ctx context.Context, h *Host) (string, error)
		want  result
	}{
		{
			name:  "http allowed by address",
			grant: api.Grant{Net: []string{hostPort(s.ok)}},
			call:  get(s.ok.URL + "/"),
			want:  result{body: "hello GET"},
		},
		{
			name:  "http denied without net grant",
			grant: api.Grant{},
			call:  get(s.ok.URL),
			want:  result{denied: "net"},
		},
		{
			name:  "http denied to a host not in the list",
			grant: api.Grant{Net: []string{"api.example.com:443"}},
			call:  get(s.ok.URL),
			want:  result{denied: "net"},
		},
		{
			name:  "http denied on another port of a granted address",
			grant: api.Grant{Net: []string{hostPort(s.ok)}},
			call:  get(s.forbidden.URL),
			want:  result{denied: "net"},
		},
		{
			name:  "loopback refused under a * grant",
			grant: api.Grant{Net: []string{"*"}},
			call:  get(s.ok.URL),
			want:  result{denied: "net"},
		},
		{
			name:  "0.0.0.0 (which reaches loopback) refused under a * grant",
			grant: api.Grant{Net: []string{"*"}},
			call:  get("http://0.0.0.0:" + port(s.ok) + "/"),
			want:  result{denied: "net"},
		},
		{
			name:  "IPv4-mapped IPv6 loopback refused under a * grant",
			grant: api.Grant{Net: []string{"*"}},
			call:  get("http://[::ffff:127.0.0.1]:" + port(s.ok) + "/"),
			want:  result{denied: "net"},
		},
		{
			name:  "name resolving to loopback refused at dial time",
			grant: api.Grant{Net: []string{"localhost:" + port(s.ok)}},
			call:  get("http://localhost:" + port(s.ok) + "/"),
			want:  result{denied: "net"},
		},
		{
			name:  "name resolving to loopback allowed when the address is granted too",
			grant: api.Grant{Net: []string{"localhost:" + port(s.ok), "127.0.0.1/8"}},
			call:  get("http://localhost:" + port(s.ok) + "/"),
			want:  result{body: "hello GET"},
		},
		{
			name:  "scheme-qualified rule refuses the other scheme",
			grant: api.Grant{Net: []string{"https://127.0.0.1:" + port(s.ok)}},
			call:  get(s.ok.URL),
			want:  result{denied: "net"},
		},
		{
			name:  "scheme-qualified rule allows its scheme",
			grant: api.Grant{Net: []string{"http://127.0.0.1:" + port(s.ok)}},
			call:  get(s.ok.URL),
			want:  result{body: "hello GET"},
		},
		{
			name:  "non-http scheme refused",
			grant: api.Grant{Net: []string{"*"}},
			call:  get("file:///etc/passwd"),
			want:  result{denied: "net"},
		},
		{
			name:  "redirect to a forbidden server refused",
			grant: api.Grant{Net: []string{hostPort(s.redirect)}},
			call:  get(s.redirect.URL + "/?to=" + s.forbidden.URL + "/"),
			want:  result{denied: "net"},
		},
		{
			name:  "redirect to localhost name refused",
			grant: api.Grant{Net: []string{hostPort(s.redirect), "localhost"}},
			call:  get(s.redirect.URL + "/?to=http://localhost:" + port(s.forbidden) + "/"),
			want:  result{denied: "net"},
		},
		{
			name:  "redirect to an allowed server followed",
			grant: api.Grant{Net: []string{hostPort(s.redirect), hostPort(s.ok)}},
			call:  get(s.redirect.URL + "/?to=" + s.ok.URL + "/"),
			want:  result{body: "hello GET"},
		},
		{
			name:  "response larger than the cap refused",
			grant: api.Grant{Net: []string{hostPort(s.big)}},
			call:  get(s.big.URL),
			want:  result{limit: "http_response"},
		},
		{
			name:  "secret granted",
			grant: api.Grant{Secrets: []string{"TOKEN"}},
			call:  secret("TOKEN"),
			want:  result{body: "s3cret"},
		},
		{
			name:  "secret not granted",
			grant: api.Grant{Secrets: []string{"TOKEN"}},
			call:  secret("OTHER"),
			want:  result{denied: "secrets"},
		},
		{
			name:  "secret with a path-like name refused",
			grant: api.Grant{Secrets: []string{"*"}},
			call:  secret("../etc/passwd"),
			want:  result{denied: "secrets"},
		},
		{
			name:  "secret granted but missing",
			grant: api.Grant{Secrets: []string{"MISSING"}},
			call:  secret("MISSING"),
			want:  result{errContain: "not set"},
		},
		{
			name:  "kv denied without grant",
			grant: api.Grant{},
			call:  kvRoundTrip("k", "v"),
			want:  result{denied: "kv"},
		},
		{
			name:  "kv round trip",
			grant: api.Grant{KV: true},
			call:  kvRoundTrip("k", "v"),
			want:  result{body: "v"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			var audited []Denial
			h := New(Config{
				Tenant: "t1", Workflow: "wf", Step: "s", Grant: tc.grant,
				Events: rec, KV: kv, Secrets: secrets,
				HTTP:     HTTPConfig{MaxResponseBytes: 32 << 10},
				OnDenied: func(d Denial) { audited = append(audited, d) },
			})
			got, err := tc.call(context.Background(), h)
			t.Logf("result %q, err %v", got, err)
			switch {
			case tc.want.denied != "":
				var de *api.DeniedError
				if !errors.As(err, &de) {
					t.Fatalf("want DeniedError(%s), got %v (body %q)", tc.want.denied, err, got)
				}
				if de.Capability != tc.want.denied {
					t.Fatalf("denied capability = %q, want %q (%v)", de.Capability, tc.want.denied, err)
				}
				if len(audited) != 1 || audited[0].Capability != tc.want.denied || audited[0].Step != "s" {
					t.Fatalf("denial not recorded: %+v", audited)
				}
				if len(rec.lines) == 0 || !strings.Contains(rec.lines[len(rec.lines)-1], "denied") {
					t.Fatalf("denial not logged: %v", rec.lines)
				}
			case tc.want.limit != "":
				var le *api.LimitError
				if !errors.As(err, &le) || le.Limit != tc.want.limit {
					t.Fatalf("want LimitError(%s), got %v", tc.want.limit, err)
				}
			case tc.want.errContain != "":
				if err == nil || !strings.Contains(err.Error(), tc.want.errContain) {
					t.Fatalf("want error containing %q, got %v", tc.want.errContain, err)
				}
			default:
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != tc.want.body {
					t.Fatalf("got %q, want %q", got, tc.want.body)
				}
			}
		})
	}
}

func get(url string) func(context.Context, *Host) (string, error) {
	return func(ctx context.Context, h *Host) (string, error) {
		resp, err := h.HTTPFetch(ctx, api.HTTPRequest{URL: url})
		if err != nil {
			return "", err
		}
		return string(resp.Body), nil
	}
}

func secret(name string) func(context.Context, *Host) (string, error) {
	return func(ctx context.Context, h *Host) (string, error) { return h.Secret(ctx, name) }
}

func kvRoundTrip(key, value string) func(context.Context, *Host) (string, error) {
	return func(ctx context.Context, h *Host) (string, error) {
		if err := h.KVPut(ctx, key, []byte(value)); err != nil {
			return "", err
		}
		v, ok, err := h.KVGet(ctx, key)
		if err != nil || !ok {
			return "", fmt.Errorf("get after put: found=%v err=%v", ok, err)
		}
		return string(v), nil
	}
}

func TestHTTPRequestDetails(t *testing.T) {
	var gotHost, gotBody, gotHeader string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		gotBody = string(b[:n])
		gotHeader = r.Header.Get("X-Api-Key")
		w.Header().Add("Set-Thing", "a")
		w.Header().Add("Set-Thing", "b")
		w.WriteHeader(201)
	}))
	defer ts.Close()
	h := New(Config{Grant: api.Grant{Net: []string{hostPort(ts)}}})
	resp, err := h.HTTPFetch(context.Background(), api.HTTPRequest{
		Method: "post", URL: ts.URL, Body: []byte("payload"),
		Headers: map[string]string{"X-Api-Key": "k", "Host": "evil.internal"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || gotBody != "payload" || gotHeader != "k" {
		t.Fatalf("status %d body %q header %q", resp.Status, gotBody, gotHeader)
	}
	if gotHost != hostPort(ts) {
		t.Fatalf("Host header override reached the server: %q", gotHost)
	}
	if resp.Headers["set-thing"] != "a, b" {
		t.Fatalf("headers: %v", resp.Headers)
	}
}

func TestKVScopedToTenantAndWorkflow(t *testing.T) {
	stores := map[string]KVStore{"memory": NewMemoryKV()}
	sq, err := OpenSQLiteKV(filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	stores["sqlite"] = sq
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mk := func(tenant, wf string) *Host {
				return New(Config{Tenant: tenant, Workflow: wf, Grant: api.Grant{KV: true}, KV: store})
			}
			a, b, c := mk("t1", "wf"), mk("t1", "other"), mk("t2", "wf")
			if err := a.KVPut(ctx, "k", []byte("from a")); err != nil {
				t.Fatal(err)
			}
			for _, h := range []*Host{b, c} {
				if _, found, err := h.KVGet(ctx, "k"); err != nil || found {
					t.Fatalf("key leaked across scopes: found=%v err=%v", found, err)
				}
			}
			if err := c.KVPut(ctx, "k", []byte("from c")); err != nil {
				t.Fatal(err)
			}
			v, found, err := mk("t1", "wf").KVGet(ctx, "k")
			if err != nil || !found || string(v) != "from a" {
				t.Fatalf("got %q %v %v", v, found, err)
			}
			if err := a.KVPut(ctx, "k", []byte("again")); err != nil {
				t.Fatal(err)
			}
			v, _, _ = a.KVGet(ctx, "k")
			if string(v) != "again" {
				t.Fatalf("overwrite: %q", v)
			}
			var le *api.LimitError
			if err := a.KVPut(ctx, "big", make([]byte, 2<<20)); !errors.As(err, &le) {
				t.Fatalf("want LimitError for a 2 MiB value, got %v", err)
			}
			if err := a.KVPut(ctx, "", []byte("x")); err == nil {
				t.Fatal("empty key accepted")
			}
		})
	}
}

func TestSecretStores(t *testing.T) {
	ctx := context.Background()
	env := EnvSecrets{Lookup: func(k string) (string, bool) {
		if k == "HWE_SECRET_TOKEN" {
			return "from-env", true
		}
		return "", false
	}}
	if v, ok, _ := env.Secret(ctx, "token"); !ok || v != "from-env" {
		t.Fatalf("env: %q %v", v, ok)
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "TOKEN"), "from-dir\n")
	writeFile(t, filepath.Join(t.TempDir(), "outside"), "outside")
	ds := DirSecrets{Dir: dir}
	if v, ok, err := ds.Secret(ctx, "TOKEN"); err != nil || !ok || v != "from-dir" {
		t.Fatalf("dir: %q %v %v", v, ok, err)
	}
	if _, ok, _ := ds.Secret(ctx, "../outside"); ok {
		t.Fatal("dir store followed a path out of its folder")
	}

	jsonFile := filepath.Join(t.TempDir(), "s.json")
	writeFile(t, jsonFile, `{"TOKEN":"from-json"}`)
	envFile := filepath.Join(t.TempDir(), "s.env")
	writeFile(t, envFile, "TOKEN=from-dotenv\n")
	for file, want := range map[string]string{jsonFile: "from-json", envFile: "from-dotenv", dir: "from-dir"} {
		st, err := LoadSecretsFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := st.Secret(ctx, "TOKEN"); !ok || v != want {
			t.Fatalf("%s: %q", file, v)
		}
	}
}

func TestLogCapAndProgressClamp(t *testing.T) {
	rec := &recorder{}
	h := New(Config{Events: rec, MaxLogBytes: 100})
	for i := 0; i < 50; i++ {
		h.Log("stdout", "0123456789")
	}
	if len(rec.lines) > 11 || !strings.Contains(rec.lines[len(rec.lines)-1], "log limit") {
		t.Fatalf("log not capped: %d lines, last %q", len(rec.lines), rec.lines[len(rec.lines)-1])
	}
	h.Progress(7, "")
	h.Progress(-1, "")
	if rec.progress[0] != 1 || rec.progress[1] != 0 {
		t.Fatalf("progress not clamped: %v", rec.progress)
	}
}

func TestNetRuleParsing(t *testing.T) {
	good := []string{"*", "api.example.com", "api.example.com:443", "*.example.com", "https://x.io", "http://x.io:8080/", "127.0.0.1", "[::1]:80", "::1", "10.0.0.0/8", "10.0.0.0/8:443"}
	for _, g := range good {
		if err := ParseNetRule(g); err != nil {
			t.Errorf("%q: %v", g, err)
		}
	}
	bad := []string{"", "ftp://x.io", "x.io:99999", "a*b.com", "https://x.io/path", "x..io"}
	for _, b := range bad {
		if err := ParseNetRule(b); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
	r, _ := parseNetRule("*.example.com")
	if !r.matchesURL("https", "a.b.example.com", 443) || r.matchesURL("https", "example.com", 443) || r.matchesURL("https", "badexample.com", 443) {
		t.Error("wildcard matching")
	}
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "fd00::1", "224.0.0.1"} {
		if !isSpecialAddress(netip.MustParseAddr(a)) {
			t.Errorf("%s should be special", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "2606:4700::1111"} {
		if isSpecialAddress(netip.MustParseAddr(a)) {
			t.Errorf("%s should be public", a)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNetRuleCovers(t *testing.T) {
	cases := []struct {
		ceiling, request string
		want             bool
	}{
		{"*", "api.example.com:443", true},
		{"*", "8.8.8.8", true},
		{"*", "127.0.0.1:8080", false},
		{"*", "10.0.0.0/8", false},
		{"127.0.0.0/8", "127.0.0.1:8080", true},
		{"127.0.0.0/8:80", "127.0.0.1:8080", false},
		{"10.0.0.0/8", "10.1.0.0/16", true},
		{"10.1.0.0/16", "10.0.0.0/8", false},
		{"*.example.com", "api.example.com:443", true},
		{"*.example.com", "*.api.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*.example.com:443", true},
		{"api.example.com", "api.example.com:443", true},
		{"api.example.com:443", "api.example.com", false},
		{"https://api.example.com", "api.example.com:443", false},
		{"https://api.example.com", "https://api.example.com", true},
		{"api.example.com:443", "https://api.example.com", true},
		{"api.example.com", "*", false},
	}
	for _, c := range cases {
		if got := NetRuleCovers(c.ceiling, c.request); got != c.want {
			t.Errorf("NetRuleCovers(%q, %q) = %v, want %v", c.ceiling, c.request, got, c.want)
		}
	}
}
