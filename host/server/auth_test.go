package server

import (
	"context"
	"fmt"
	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/store"
)

// tenantTokens are the plain tokens the test tenants file stores hashes of.
var tenantTokens = map[string]string{
	"acme-viewer":   "tok-acme-viewer",
	"acme-operator": "tok-acme-operator",
	"acme-admin":    "tok-acme-admin",
	"globex-admin":  "tok-globex-admin",
}

// newTenantEnv starts a server with two tenants, acme and globex, each with
// its own folder holding the chain workflow (acme also has acme_only).
func newTenantEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for _, tenant := range []string{"acme", "globex"} {
		fmt.Fprintf(&b, "[[tenant]]\nname = %q\nworkflows = %q\nmax_concurrent_runs = 2\n", tenant, tenant+"/workflows")
		for key, tok := range tenantTokens {
			name, role, _ := strings.Cut(key, "-")
			if name != tenant {
				continue
			}
			fmt.Fprintf(&b, "[[tenant.token]]\nname = %q\nrole = %q\nsha256 = %q\n", key, role, HashToken(tok))
		}
		os.MkdirAll(filepath.Join(dir, tenant, "workflows"), 0o755)
		os.WriteFile(filepath.Join(dir, tenant, "workflows", "chain.lua"), []byte(chainWorkflow), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "acme", "workflows", "acme_only.lua"), []byte(chainWorkflow), 0o644)
	file := filepath.Join(dir, "tenants.toml")
	os.WriteFile(file, []byte(b.String()), 0o600)
	tenants, err := LoadTenants(file)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Tenants = tenants })
	e.dir = dir
	return e
}

// route is one API route, with a concrete path for tests.
type route struct {
	method, pattern, path string
	min                   Role // 0 = public
}

// apiRoutes lists every route the server registers (TestOpenAPIDocumentsEveryRoute
// checks this list against openapi.json).
func apiRoutes(runID string) []route {
	return []route{
		{"GET", "/api/v1/workflows", "/api/v1/workflows", RoleViewer},
		{"GET", "/api/v1/workflows/{name}", "/api/v1/workflows/chain", RoleViewer},
		{"PUT", "/api/v1/workflows/{name}", "/api/v1/workflows/chain", RoleAdmin},
		{"DELETE", "/api/v1/workflows/{name}", "/api/v1/workflows/acme_only", RoleAdmin},
		{"GET", "/api/v1/workflows/{name}/graph", "/api/v1/workflows/chain/graph", RoleViewer},
		{"GET", "/api/v1/workflows/{name}/versions", "/api/v1/workflows/chain/versions", RoleViewer},
		{"GET", "/api/v1/workflows/{name}/versions/{version}", "/api/v1/workflows/chain/versions/1", RoleViewer},
		{"POST", "/api/v1/workflows/{name}/runs", "/api/v1/workflows/chain/runs", RoleOperator},
		{"GET", "/api/v1/workflows/{name}/webhook", "/api/v1/workflows/chain/webhook", RoleAdmin},
		{"PUT", "/api/v1/workflows/{name}/webhook", "/api/v1/workflows/chain/webhook", RoleAdmin},
		{"DELETE", "/api/v1/workflows/{name}/webhook", "/api/v1/workflows/chain/webhook", RoleAdmin},
		{"POST", "/api/v1/hooks/{id}", "/api/v1/hooks/NOPE", 0},
		{"GET", "/api/v1/runs", "/api/v1/runs", RoleViewer},
		{"GET", "/api/v1/runs/{id}", "/api/v1/runs/" + runID, RoleViewer},
		{"GET", "/api/v1/runs/{id}/events", "/api/v1/runs/" + runID + "/events", RoleViewer},
		{"GET", "/api/v1/runs/{id}/logs", "/api/v1/runs/" + runID + "/logs", RoleViewer},
		{"POST", "/api/v1/runs/{id}/cancel", "/api/v1/runs/" + runID + "/cancel", RoleOperator},
		{"POST", "/api/v1/runs/{id}/retry", "/api/v1/runs/" + runID + "/retry", RoleOperator},
		{"POST", "/api/v1/validate", "/api/v1/validate", RoleOperator},
		{"GET", "/api/v1/audit", "/api/v1/audit", RoleAdmin},
		{"GET", "/api/v1/me", "/api/v1/me", RoleViewer},
		{"GET", "/api/v1/openapi.json", "/api/v1/openapi.json", 0},
		{"GET", "/api/workflows", "/api/workflows", RoleViewer},
		{"POST", "/api/workflows/{name}/run", "/api/workflows/chain/run", RoleOperator},
		{"GET", "/healthz", "/healthz", 0},
		{"GET", "/metrics", "/metrics", RoleViewer},
	}
}

func TestAuthOnEveryRoute(t *testing.T) {
	e := newTenantEnv(t)
	runID := e.startRun("chain", tenantTokens["acme-operator"])
	e.waitRun(runID, tenantTokens["acme-viewer"])
	roles := map[Role]string{RoleViewer: "acme-viewer", RoleOperator: "acme-operator", RoleAdmin: "acme-admin"}
	for _, r := range apiRoutes(runID) {
		t.Run(r.method+" "+r.pattern, func(t *testing.T) {
			// No token, and an unknown one.
			for _, tok := range []string{"", "not-a-token"} {
				resp, data := e.do(r.method, r.path, tok, "")
				if r.min == 0 {
					if resp.StatusCode == 401 && r.pattern != "/api/v1/hooks/{id}" {
						t.Fatalf("public route answered 401")
					}
					continue
				}
				if resp.StatusCode != 401 || !strings.Contains(string(data), `"unauthorized"`) {
					t.Fatalf("token %q: %d %s", tok, resp.StatusCode, data)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			}
			if r.min == 0 {
				return
			}
			// Every role below the minimum is refused with 403.
			for role := RoleViewer; role < r.min; role++ {
				resp, data := e.do(r.method, r.path, tenantTokens[roles[role]], "")
				if resp.StatusCode != 403 || !strings.Contains(string(data), `"forbidden"`) {
					t.Fatalf("role %s: %d %s", role, resp.StatusCode, data)
				}
			}
			// The minimum role gets past auth (any answer but 401/403).
			if r.path == "/api/v1/runs/"+runID+"/events" {
				return // a stream; covered by the SSE tests
			}
			resp, data := e.do(r.method, r.path, tenantTokens[roles[r.min]], "")
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				t.Fatalf("role %s refused: %d %s", r.min, resp.StatusCode, data)
			}
		})
	}
	audit := decode[struct {
		Entries []store.AuditEntry `json:"entries"`
	}](t, e.must("GET", "/api/v1/audit?outcome=denied&limit=1000", tenantTokens["acme-admin"], "", 200))
	var roleDenials int
	for _, a := range audit.Entries {
		if a.Tenant != "acme" {
			t.Fatalf("acme's audit log shows %+v", a)
		}
		if a.Action == "auth" && strings.Contains(a.Detail, "lacks") {
			roleDenials++
		}
	}
	if roleDenials == 0 {
		t.Fatal("role denials were not audited")
	}
}

func TestCrossTenantAccessDenied(t *testing.T) {
	e := newTenantEnv(t)
	acme, globex := tenantTokens["acme-admin"], tenantTokens["globex-admin"]
	open := e.exec.gate("b")
	defer open()
	acmeRun := e.startRun("chain", acme)
	e.waitStep(acmeRun, "b", "running", acme)

	// globex cannot see, stream, cancel or retry acme's run: 404, as if missing.
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/runs/" + acmeRun},
		{"GET", "/api/v1/runs/" + acmeRun + "/events"},
		{"GET", "/api/v1/runs/" + acmeRun + "/logs"},
		{"POST", "/api/v1/runs/" + acmeRun + "/cancel"},
		{"POST", "/api/v1/runs/" + acmeRun + "/retry"},
	} {
		resp, data := e.do(c.method, c.path, globex, "")
		if resp.StatusCode != 404 {
			t.Fatalf("globex %s %s: %d %s", c.method, c.path, resp.StatusCode, data)
		}
	}
	// It is still running: globex's cancel did nothing.
	if !e.srv.runs.isActive(acmeRun) {
		t.Fatal("globex cancelled acme's run")
	}
	// globex's list has neither acme's runs nor acme's workflows.
	runs := decode[struct {
		Runs  []runSummary `json:"runs"`
		Total int          `json:"total"`
	}](t, e.must("GET", "/api/v1/runs", globex, "", 200))
	if runs.Total != 0 {
		t.Fatalf("globex sees runs: %+v", runs)
	}
	wfs := decode[struct {
		Workflows []workflowSummary `json:"workflows"`
	}](t, e.must("GET", "/api/v1/workflows", globex, "", 200))
	if len(wfs.Workflows) != 1 || wfs.Workflows[0].Name != "chain" {
		t.Fatalf("globex workflows = %+v", wfs)
	}
	e.must("GET", "/api/v1/workflows/acme_only", globex, "", 404)
	e.must("POST", "/api/v1/workflows/acme_only/runs", globex, "", 404)
	// A PUT by globex lands in globex's folder, not acme's.
	e.must("PUT", "/api/v1/workflows/acme_only", globex, chainWorkflow, 201)
	if _, err := os.Stat(filepath.Join(e.dir, "globex", "workflows", "acme_only.lua")); err != nil {
		t.Fatal("globex's PUT did not go to its own folder")
	}
	// acme can cancel its own run.
	e.must("POST", "/api/v1/runs/"+acmeRun+"/cancel", acme, "", 202)
	e.waitRun(acmeRun, acme)

	// The denials are in acme's... no: in globex's audit log, as globex did them.
	audit := decode[struct {
		Entries []store.AuditEntry `json:"entries"`
	}](t, e.must("GET", "/api/v1/audit?outcome=denied", globex, "", 200))
	found := 0
	for _, a := range audit.Entries {
		if a.Target == acmeRun && strings.Contains(a.Detail, "another tenant") {
			found++
		}
	}
	if found < 5 {
		t.Fatalf("cross-tenant denials audited: %d; log %+v", found, audit.Entries)
	}
	// acme's admin does not see globex's audit entries.
	acmeAudit := decode[struct {
		Entries []store.AuditEntry `json:"entries"`
	}](t, e.must("GET", "/api/v1/audit", acme, "", 200))
	for _, a := range acmeAudit.Entries {
		if a.Tenant == "globex" {
			t.Fatalf("acme sees globex's audit entry %+v", a)
		}
	}
}

func TestPathTraversalRejected(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	// A workflow file outside the folder that traversal would reach, and a
	// symlink inside the folder pointing at it.
	outside := filepath.Join(filepath.Dir(e.dir), "secret.lua")
	os.WriteFile(outside, []byte(strings.Replace(chainWorkflow, "three steps in a row", "SECRET", 1)), 0o644)
	os.Symlink(outside, filepath.Join(e.dir, "link.lua"))

	names := []string{
		"..%2fsecret", "..%2F..%2Fsecret", "%2e%2e%2fsecret", "a%2fb", "..", "%2e%2e", ".hidden", "x%00y",
		"..%5csecret", "sub%2f..%2fchain", "%252e%252e%252fsecret",
	}
	for _, n := range names {
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/workflows/" + n},
			{"PUT", "/api/v1/workflows/" + n},
			{"DELETE", "/api/v1/workflows/" + n},
			{"GET", "/api/v1/workflows/" + n + "/graph"},
			{"GET", "/api/v1/workflows/" + n + "/versions"},
			{"POST", "/api/v1/workflows/" + n + "/runs"},
			{"PUT", "/api/v1/workflows/" + n + "/webhook"},
			{"POST", "/api/workflows/" + n + "/run"},
		} {
			resp, data := e.do(c.method, c.path, "", chainWorkflow)
			if resp.StatusCode < 300 || strings.Contains(string(data), "SECRET") {
				t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, data)
			}
		}
	}
	// Literal dot segments are cleaned by the router, never served.
	req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/workflows/../../secret", nil)
	req.URL.Opaque = "/api/v1/workflows/../../secret" // keep the dots on the wire
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("dot segments reached a handler")
	}
	// The symlink has a valid name but os.Root refuses to follow it outside.
	resp2, data := e.do("GET", "/api/v1/workflows/link", "", "")
	if resp2.StatusCode == 200 || strings.Contains(string(data), "SECRET") {
		t.Fatalf("symlink escaped: %d %s", resp2.StatusCode, data)
	}
	// Nothing was written outside the folder.
	if entries, _ := os.ReadDir(filepath.Dir(e.dir)); len(entries) != 3 { // workflows, data, secret.lua
		names := []string{}
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Fatalf("files next to the folder: %v", names)
	}
	// Traversal attempts are audited.
	audit := decode[struct {
		Entries []store.AuditEntry `json:"entries"`
	}](t, e.must("GET", "/api/v1/audit?outcome=denied&limit=1000", "", "", 200))
	paths := 0
	for _, a := range audit.Entries {
		if a.Action == "path" {
			paths++
		}
	}
	if paths < len(names) {
		t.Fatalf("only %d traversal attempts audited", paths)
	}
}

func TestLocalTenantToken(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = "s3cret" })
	e.writeWorkflow("chain", chainWorkflow)
	e.must("GET", "/api/v1/workflows", "", "", 401)
	e.must("GET", "/api/v1/workflows", "wrong", "", 401)
	me := decode[map[string]any](t, e.must("GET", "/api/v1/me", "s3cret", "", 200))
	if me["tenant"] != "local" || me["role"] != "admin" || me["auth"] != true {
		t.Fatalf("me = %v", me)
	}
	e.must("GET", "/api/workflows", "", "", 401)
	e.must("GET", "/api/workflows", "s3cret", "", 200)
}

func TestNoTokenOnLoopbackOnly(t *testing.T) {
	st, _ := store.Open("")
	defer st.Close()
	cfg := Config{Executor: newGateExecutor(), Store: st, WorkflowsDir: t.TempDir(), Addr: "0.0.0.0:0"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	err := Serve(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "HWE_TOKEN") {
		t.Fatalf("non-loopback without token: %v", err)
	}
	// With a token it starts.
	cfg.Token = "x"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan net.Addr, 1)
	go func() { done <- Serve(ctx, cfg, func(a net.Addr) { ready <- a }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("with a token: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("did not start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true,
		"0.0.0.0:8080": false, ":8080": false, "10.1.2.3:80": false, "example.com:80": false} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%q) = %v", addr, !want)
		}
	}
}

func TestTenantsFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "t.toml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	h := HashToken("x")
	for want, src := range map[string]string{
		"needs at least one": "[[tenant]]\nname='a'\nworkflows='w'\n",
		"unknown role":       fmt.Sprintf("[[tenant]]\nname='a'\nworkflows='w'\n[[tenant.token]]\nrole='root'\nsha256=%q\n", h),
		"64 hex digits":      "[[tenant]]\nname='a'\nworkflows='w'\n[[tenant.token]]\nrole='admin'\nsha256='abc'\n",
		"already used":       fmt.Sprintf("[[tenant]]\nname='a'\nworkflows='w'\n[[tenant.token]]\nrole='admin'\nsha256=%q\n[[tenant]]\nname='b'\nworkflows='v'\n[[tenant.token]]\nrole='admin'\nsha256=%q\n", h, h),
		"name must be":       fmt.Sprintf("[[tenant]]\nname='../a'\nworkflows='w'\n[[tenant.token]]\nrole='admin'\nsha256=%q\n", h),
		"workflows":          fmt.Sprintf("[[tenant]]\nname='a'\n[[tenant.token]]\nrole='admin'\nsha256=%q\n", h),
		"no [[tenant]]":      "",
		"nope":               "nope = 1\n",
		"allow.cpu":          fmt.Sprintf("[[tenant]]\nname='a'\nworkflows='w'\n[tenant.policy.allow]\ncpu='fast'\n[[tenant.token]]\nrole='admin'\nsha256=%q\n", h),
	} {
		if _, err := LoadTenants(write(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	ts, err := LoadTenants(write(fmt.Sprintf("[[tenant]]\nname='a'\nworkflows='w'\nrunners=['lua']\n[tenant.policy.allow]\nnet=['x:443']\nkv=true\ncpu='2s'\n[[tenant.token]]\nname='ci'\nrole='viewer'\nsha256=%q\n", h)))
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].WorkflowsDir != filepath.Join(dir, "w") || ts[0].Policy == nil || !ts[0].Policy.Ceiling.KV || ts[0].Policy.Ceiling.CPU != 2*time.Second || ts[0].Policy.Ceiling.Memory == 0 ||
		ts[0].Tokens[0].Role != RoleViewer || ts[0].Tokens[0].Name != "ci" {
		t.Fatalf("tenant = %+v %+v", ts[0], ts[0].Policy)
	}
}

func TestTenantRunnerAllowList(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "w"), 0o755)
	file := filepath.Join(dir, "t.toml")
	os.WriteFile(file, []byte(fmt.Sprintf("[[tenant]]\nname='a'\nworkflows='w'\nrunners=['python']\n[[tenant.token]]\nrole='admin'\nsha256=%q\n", HashToken("tok"))), 0o600)
	tenants, err := LoadTenants(file)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Tenants = tenants })
	resp, data := e.do("PUT", "/api/v1/workflows/chain", "tok", chainWorkflow)
	if resp.StatusCode != 422 || !strings.Contains(string(data), "runner lua is not allowed for tenant a") {
		t.Fatalf("PUT with a forbidden runner: %d %s", resp.StatusCode, data)
	}
}

// TestTenantPolicyBoundsGrants: a step gets what it asks for only as far as
// its tenant's policy allows; a tenant without a policy gets nothing.
func TestTenantPolicyBoundsGrants(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"open", "closed"} {
		os.MkdirAll(filepath.Join(dir, n), 0o755)
		os.WriteFile(filepath.Join(dir, n, "net.lua"), []byte(`workflow = { name = "net", steps = {
  fetch = { language = "lua", allow = { net = {"api.example.com:443", "evil.example.com:443"}, kv = true },
            code = [[ function run() return 1 end ]] } } }
`), 0o644)
	}
	file := filepath.Join(dir, "t.toml")
	os.WriteFile(file, []byte(fmt.Sprintf(`[[tenant]]
name = "open"
workflows = "open"
[tenant.policy.allow]
net = ["api.example.com:443"]
kv = true
[[tenant.token]]
role = "operator"
sha256 = %q
[[tenant]]
name = "closed"
workflows = "closed"
[[tenant.token]]
role = "operator"
sha256 = %q
`, HashToken("open-tok"), HashToken("closed-tok"))), 0o600)
	tenants, err := LoadTenants(file)
	if err != nil {
		t.Fatal(err)
	}
	var hostTenants []string
	var mu sync.Mutex
	e := newEnv(t, func(c *Config) {
		c.Tenants = tenants
		c.NewHost = func(tn *Tenant, req *api.StepRequest, emit engine.HostEvents) api.Host {
			mu.Lock()
			hostTenants = append(hostTenants, tn.Name+"/"+req.Tenant)
			mu.Unlock()
			return api.NopHost{}
		}
	})
	e.waitRun(e.startRun("net", "open-tok"), "open-tok")
	g, _ := e.exec.grant.Load("fetch")
	if got := g.(api.Grant); len(got.Net) != 1 || got.Net[0] != "api.example.com:443" || !got.KV || got.Memory == 0 {
		t.Fatalf("open tenant's grant = %+v", got)
	}
	e.waitRun(e.startRun("net", "closed-tok"), "closed-tok")
	g, _ = e.exec.grant.Load("fetch")
	if got := g.(api.Grant); len(got.Net) != 0 || got.KV || got.Memory == 0 {
		t.Fatalf("closed tenant's grant = %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hostTenants) != 2 || hostTenants[0] != "open/open" || hostTenants[1] != "closed/closed" {
		t.Fatalf("NewHost saw %v", hostTenants)
	}
}

// TestCrossSiteRequestsRefused: without tokens on loopback, a page of
// another site cannot start runs (CSRF) or reach the API through a
// rebinding host name.
func TestCrossSiteRequestsRefused(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	send := func(method, path, origin, host string) int {
		req, _ := http.NewRequest(method, e.ts.URL+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("POST", "/api/v1/workflows/chain/runs", "http://evil.example", ""); code != 403 {
		t.Fatalf("cross-origin POST: %d", code)
	}
	if code := send("POST", "/api/workflows/chain/run", "null", ""); code != 403 {
		t.Fatalf("opaque-origin POST: %d", code)
	}
	if code := send("GET", "/api/v1/workflows", "", "rebind.evil.example:80"); code != 403 {
		t.Fatalf("rebinding host: %d", code)
	}
	// The UI's own requests (same origin) work.
	if code := send("POST", "/api/v1/workflows/chain/runs", e.ts.URL, ""); code != 202 {
		t.Fatalf("same-origin POST: %d", code)
	}
	runs := decode[struct {
		Total int `json:"total"`
	}](t, e.must("GET", "/api/v1/runs", "", "", 200))
	if runs.Total != 1 {
		t.Fatalf("%d runs started", runs.Total)
	}
}
