package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/store"
)

func TestRunLifecycleThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)

	list := decode[struct {
		Workflows []workflowSummary `json:"workflows"`
	}](t, e.must("GET", "/api/v1/workflows", "", "", 200))
	if len(list.Workflows) != 1 || list.Workflows[0].Name != "chain" || !list.Workflows[0].Valid ||
		list.Workflows[0].Steps != 3 || list.Workflows[0].Description != "three steps in a row" {
		t.Fatalf("list = %+v", list)
	}

	id := e.startRun("chain", "")
	run := e.waitRun(id, "")
	if run.ID != id || run.Status != "succeeded" || run.Workflow != "chain" || run.WorkflowID != "chain" ||
		!strings.HasSuffix(run.File, "chain.lua") || run.Trigger != "api" || run.Tenant != "local" {
		t.Fatalf("run = %+v", run)
	}
	for i, s := range run.Steps {
		if s.Name != []string{"a", "b", "c"}[i] || s.Status != "succeeded" || s.Language != "lua" || s.Attempts != 1 {
			t.Fatalf("step %d = %+v", i, s)
		}
	}
	if got := string(stepsByName(run)["c"].Output); got != `{"n":3}` {
		t.Fatalf("c output = %s", got)
	}

	// The run JSON is `hwe run --json` plus id: check the exact key set.
	raw := decode[map[string]json.RawMessage](t, e.must("GET", "/api/v1/runs/"+id, "", "", 200))
	for _, k := range []string{"id", "workflow", "file", "status", "duration_ms", "steps"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("run JSON lacks %q", k)
		}
	}
	var steps []map[string]json.RawMessage
	json.Unmarshal(raw["steps"], &steps)
	for _, k := range []string{"name", "language", "status", "output", "attempts", "duration_ms"} {
		if _, ok := steps[0][k]; !ok {
			t.Errorf("step JSON lacks %q", k)
		}
	}

	// Logs of the run, per step.
	logs := decode[struct {
		Logs []store.Event `json:"logs"`
	}](t, e.must("GET", "/api/v1/runs/"+id+"/logs?step=a", "", "", 200))
	if len(logs.Logs) != 1 || logs.Logs[0].Line != "a says hi" {
		t.Fatalf("logs = %+v", logs)
	}

	// History: filters and paging.
	id2 := e.startRun("chain", "")
	e.waitRun(id2, "")
	page := decode[struct {
		Runs  []runSummary `json:"runs"`
		Total int          `json:"total"`
	}](t, e.must("GET", "/api/v1/runs?workflow=chain&status=succeeded&limit=1", "", "", 200))
	if page.Total != 2 || len(page.Runs) != 1 || page.Runs[0].ID != id2 {
		t.Fatalf("page = %+v", page)
	}
	page2 := decode[struct {
		Runs []runSummary `json:"runs"`
	}](t, e.must("GET", "/api/v1/runs?limit=1&offset=1", "", "", 200))
	if len(page2.Runs) != 1 || page2.Runs[0].ID != id {
		t.Fatalf("second page = %+v", page2)
	}
	none := decode[struct {
		Total int `json:"total"`
	}](t, e.must("GET", "/api/v1/runs?status=failed", "", "", 200))
	if none.Total != 0 {
		t.Fatalf("failed filter total = %d", none.Total)
	}
	e.must("GET", "/api/v1/runs?limit=0", "", "", 400)
	e.must("GET", "/api/v1/runs/NOPE", "", "", 404)
	e.must("GET", "/api/v1/runs/bad$id", "", "", 400)
	e.must("POST", "/api/v1/workflows/missing/runs", "", "", 404)
}

func TestRunStartReturnsAtOnceAndCancel(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	open := e.exec.gate("b")
	defer open()
	start := time.Now()
	id := e.startRun("chain", "")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("POST runs blocked for %s", d)
	}
	e.waitStep(id, "b", "running", "")
	run := decode[store.Run](t, e.must("GET", "/api/v1/runs/"+id, "", "", 200))
	if run.Status != "running" || stepsByName(run)["a"].Status != "succeeded" || stepsByName(run)["c"].Status != "pending" {
		t.Fatalf("mid-run = %+v", run)
	}
	// A running run cannot be retried.
	e.must("POST", "/api/v1/runs/"+id+"/retry", "", "", 409)
	e.must("POST", "/api/v1/runs/"+id+"/cancel", "", "", 202)
	run = e.waitRun(id, "")
	if run.Status != "cancelled" || stepsByName(run)["b"].Status != "cancelled" || stepsByName(run)["c"].Status != "cancelled" {
		t.Fatalf("cancelled run = %+v", run)
	}
	// A finished run cannot be cancelled.
	e.must("POST", "/api/v1/runs/"+id+"/cancel", "", "", 409)
}

func TestRetryReusesStoredOutputs(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	e.exec.fail.Store("b", "b is broken today")
	id := e.startRun("chain", "")
	run := e.waitRun(id, "")
	if run.Status != "failed" || !strings.Contains(run.Error, "b is broken today") {
		t.Fatalf("first attempt = %+v", run)
	}
	s := stepsByName(run)
	if s["a"].Status != "succeeded" || s["b"].Status != "failed" || s["c"].Status != "skipped" {
		t.Fatalf("steps = %+v", run.Steps)
	}

	e.exec.fail.Delete("b")
	data := e.must("POST", "/api/v1/runs/"+id+"/retry", "", "", 202)
	if decode[map[string]string](t, data)["id"] != id {
		t.Fatalf("retry answered %s", data)
	}
	run = e.waitRun(id, "")
	if run.Status != "succeeded" || run.Attempt != 2 || run.Error != "" {
		t.Fatalf("retried run = %+v", run)
	}
	if e.exec.callCount("a") != 1 || e.exec.callCount("b") != 2 || e.exec.callCount("c") != 1 {
		t.Fatalf("calls: a=%d b=%d c=%d; a must not run again", e.exec.callCount("a"), e.exec.callCount("b"), e.exec.callCount("c"))
	}
	if got := string(stepsByName(run)["c"].Output); got != `{"n":3}` {
		t.Fatalf("c output after retry = %s", got)
	}
	// A succeeded run cannot be retried.
	e.must("POST", "/api/v1/runs/"+id+"/retry", "", "", 409)
}

func TestWorkflowCRUDAndVersions(t *testing.T) {
	e := newEnv(t)
	// Create.
	d := decode[workflowDetail](t, e.must("PUT", "/api/v1/workflows/chain", "", chainWorkflow, 201))
	if d.Name != "chain" || !d.Valid || d.Version != 1 || d.Graph == nil || len(d.Graph.Nodes) != 3 || len(d.Graph.Edges) != 2 {
		t.Fatalf("created = %+v", d)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "chain.lua")); err != nil {
		t.Fatal("PUT did not write the file")
	}
	// Read: source, graph, no problems.
	d = decode[workflowDetail](t, e.must("GET", "/api/v1/workflows/chain", "", "", 200))
	if d.Source != chainWorkflow || d.Graph.Nodes[2].Level != 2 {
		t.Fatalf("read = %+v", d)
	}
	// An invalid replacement is refused with its problems and lines, and nothing changes.
	bad := strings.Replace(chainWorkflow, `depends_on = {"b"}`, `depends_on = {"nope"}`, 1)
	resp, data := e.do("PUT", "/api/v1/workflows/chain", "", bad)
	if resp.StatusCode != 422 {
		t.Fatalf("invalid PUT: %d %s", resp.StatusCode, data)
	}
	er := decode[map[string]apiError](t, data)["error"]
	if er.Code != "invalid_workflow" || len(er.Problems) == 0 || er.Problems[0].Line == 0 || !strings.Contains(er.Problems[0].Message, "nope") {
		t.Fatalf("problems = %+v", er)
	}
	if src, _ := os.ReadFile(filepath.Join(e.dir, "chain.lua")); string(src) != chainWorkflow {
		t.Fatal("an invalid PUT changed the file")
	}
	// Replace (JSON body form), keeping the earlier version.
	v2 := strings.Replace(chainWorkflow, "three steps in a row", "version two", 1)
	body, _ := json.Marshal(map[string]string{"source": v2})
	req, _ := http.NewRequest("PUT", e.ts.URL+"/api/v1/workflows/chain", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	if err != nil || r2.StatusCode != 200 {
		t.Fatalf("replace: %v %v", r2.Status, err)
	}
	r2.Body.Close()
	vs := decode[struct {
		Versions []store.Version `json:"versions"`
	}](t, e.must("GET", "/api/v1/workflows/chain/versions", "", "", 200))
	if len(vs.Versions) != 2 || vs.Versions[0].Version != 2 || vs.Versions[1].Action != "put" {
		t.Fatalf("versions = %+v", vs)
	}
	old := decode[map[string]any](t, e.must("GET", "/api/v1/workflows/chain/versions/1", "", "", 200))
	if old["source"] != chainWorkflow {
		t.Fatalf("version 1 = %v", old)
	}
	e.must("GET", "/api/v1/workflows/chain/versions/9", "", "", 404)
	e.must("GET", "/api/v1/workflows/chain/versions/x", "", "", 400)
	// Graph in other formats.
	if dot := string(e.must("GET", "/api/v1/workflows/chain/graph?format=dot", "", "", 200)); !strings.Contains(dot, `"a" -> "b"`) {
		t.Fatalf("dot = %s", dot)
	}
	e.must("GET", "/api/v1/workflows/chain/graph?format=png", "", "", 400)
	// Delete keeps the content as a version.
	e.must("DELETE", "/api/v1/workflows/chain", "", "", 204)
	e.must("GET", "/api/v1/workflows/chain", "", "", 404)
	e.must("DELETE", "/api/v1/workflows/chain", "", "", 404)
	vs = decode[struct {
		Versions []store.Version `json:"versions"`
	}](t, e.must("GET", "/api/v1/workflows/chain/versions", "", "", 200))
	if vs.Versions[0].Action != "delete" {
		t.Fatalf("versions after delete = %+v", vs)
	}
}

func TestWatcherPicksUpDiskEdits(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	d := decode[workflowDetail](t, e.must("GET", "/api/v1/workflows/chain", "", "", 200))
	if d.Description != "three steps in a row" {
		t.Fatal(d.Description)
	}
	waitVersions := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			vs := decode[struct {
				Versions []store.Version `json:"versions"`
			}](t, e.must("GET", "/api/v1/workflows/chain/versions", "", "", 200))
			if len(vs.Versions) >= n && vs.Versions[0].Action == "disk" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("disk edits were not versioned: %+v", vs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitVersions(1)                   // the poller records files it finds as versions
	time.Sleep(20 * time.Millisecond) // a different modification time
	e.writeWorkflow("chain", strings.Replace(chainWorkflow, "three steps in a row", "edited on disk", 1))
	d = decode[workflowDetail](t, e.must("GET", "/api/v1/workflows/chain", "", "", 200))
	if d.Description != "edited on disk" {
		t.Fatalf("edit not picked up: %q", d.Description)
	}
	// A file that appears is listed; one that breaks shows its problems.
	e.writeWorkflow("broken", "workflow = { name = 'x', steps = { a = { language = 'cobol', code = 'x' } } }")
	list := decode[struct {
		Workflows []workflowSummary `json:"workflows"`
	}](t, e.must("GET", "/api/v1/workflows", "", "", 200))
	if len(list.Workflows) != 2 || list.Workflows[0].Name != "broken" || list.Workflows[0].Valid || len(list.Workflows[0].Problems) == 0 {
		t.Fatalf("list = %+v", list.Workflows)
	}
	resp, data := e.do("POST", "/api/v1/workflows/broken/runs", "", "")
	if resp.StatusCode != 422 {
		t.Fatalf("running an invalid workflow: %d %s", resp.StatusCode, data)
	}
	waitVersions(2)
}

func TestValidate(t *testing.T) {
	e := newEnv(t)
	ok := decode[map[string]any](t, e.must("POST", "/api/v1/validate", "", chainWorkflow, 200))
	if ok["valid"] != true {
		t.Fatalf("valid source: %v", ok)
	}
	bad := "workflow = {\n  name = 'x',\n  steps = {\n    a = { language = 'lua', code = 'x', bogus = 1 },\n  },\n}\n"
	res := decode[struct {
		Valid    bool          `json:"valid"`
		Problems []problemJSON `json:"problems"`
	}](t, e.must("POST", "/api/v1/validate?name=mine", "", bad, 200))
	if res.Valid || len(res.Problems) != 1 || res.Problems[0].Line != 4 || !strings.Contains(res.Problems[0].Message, "bogus") ||
		!strings.HasSuffix(res.Problems[0].File, "mine.lua") {
		t.Fatalf("problems = %+v", res)
	}
	syntax := decode[struct {
		Valid    bool          `json:"valid"`
		Problems []problemJSON `json:"problems"`
	}](t, e.must("POST", "/api/v1/validate", "", "workflow = {\n  name = ,\n}", 200))
	if syntax.Valid || syntax.Problems[0].Line != 2 {
		t.Fatalf("syntax problems = %+v", syntax)
	}
	e.must("POST", "/api/v1/validate?name=../x", "", chainWorkflow, 400)
	e.must("POST", "/api/v1/validate", "", strings.Repeat("x", maxSourceSize+1), 413)
}

func TestScheduleValidationAndRuns(t *testing.T) {
	e := newEnv(t)
	bad := strings.Replace(chainWorkflow, `name = "chain",`, `name = "chain",
  schedule = "99 * * * *",`, 1)
	resp, data := e.do("PUT", "/api/v1/workflows/chain", "", bad)
	if resp.StatusCode != 422 || !strings.Contains(string(data), "schedule") || !strings.Contains(string(data), `"line":3`) {
		t.Fatalf("bad schedule: %d %s", resp.StatusCode, data)
	}
	every := strings.Replace(chainWorkflow, `name = "chain",`, `name = "chain",
  schedule = "@every 1s",`, 1)
	d := decode[workflowDetail](t, e.must("PUT", "/api/v1/workflows/chain", "", every, 201))
	if d.Schedule != "@every 1s" || d.NextRun == "" {
		t.Fatalf("scheduled workflow = %+v", d.workflowSummary)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs := decode[struct {
			Runs []runSummary `json:"runs"`
		}](t, e.must("GET", "/api/v1/runs?workflow=chain", "", "", 200))
		if len(runs.Runs) > 0 {
			if runs.Runs[0].Trigger != "schedule" {
				t.Fatalf("trigger = %q", runs.Runs[0].Trigger)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedule never started a run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Removing the schedule stops it.
	e.must("PUT", "/api/v1/workflows/chain", "", chainWorkflow, 200)
	if next := e.srv.sched.next(e.srv.order[0], "chain"); next != "" {
		t.Fatalf("still scheduled: %s", next)
	}
}

func TestWebhookStartsRunWithInput(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	hook := decode[map[string]string](t, e.must("PUT", "/api/v1/workflows/chain/webhook", "", "", 201))
	if hook["token"] == "" || !strings.HasPrefix(hook["url"], "/api/v1/hooks/") {
		t.Fatalf("hook = %v", hook)
	}
	info := decode[map[string]any](t, e.must("GET", "/api/v1/workflows/chain/webhook", "", "", 200))
	if _, leaked := info["token"]; leaked {
		t.Fatal("GET webhook shows the token")
	}
	// Wrong or missing token: refused and audited.
	e.must("POST", hook["url"], "wrong", `{"x":1}`, 401)
	e.must("POST", hook["url"], "", `{"x":1}`, 401)
	e.must("POST", "/api/v1/hooks/NOPE", hook["token"], `{}`, 401)
	data := e.must("POST", hook["url"], hook["token"], `{"order": 42}`, 202)
	id := decode[map[string]string](t, data)["id"]
	run := e.waitRun(id, "")
	if run.Trigger != "webhook" || string(run.Input) != `{"order":42}` || run.Status != "succeeded" {
		t.Fatalf("webhook run = %+v", run)
	}
	e.must("DELETE", "/api/v1/workflows/chain/webhook", "", "", 204)
	e.must("POST", hook["url"], hook["token"], `{}`, 401)
	audit := decode[struct {
		Entries []store.AuditEntry `json:"entries"`
	}](t, e.must("GET", "/api/v1/audit?outcome=denied", "", "", 200))
	if len(audit.Entries) < 3 {
		t.Fatalf("webhook denials not audited: %+v", audit.Entries)
	}
}

func TestInputReachesSteps(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	data := e.must("POST", "/api/v1/workflows/chain/runs", "", `{"input": {"k": "v"}}`, 202)
	id := decode[map[string]string](t, data)["id"]
	run := e.waitRun(id, "")
	if string(run.Input) != `{"k":"v"}` {
		t.Fatalf("input = %s", run.Input)
	}
	e.must("POST", "/api/v1/workflows/chain/runs", "", `not json`, 400)
}

func TestErrorsAreJSON(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		code         int
		errCode      string
	}{
		{"GET", "/api/v1/nothing-here", 404, "not_found"},
		{"PATCH", "/api/v1/workflows", 405, "method_not_allowed"},
		{"DELETE", "/api/v1/runs", 405, "method_not_allowed"},
		{"GET", "/api/v1/workflows/nope", 404, "not_found"},
	} {
		resp, data := e.do(c.method, c.path, "", "")
		if resp.StatusCode != c.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if got := decode[map[string]apiError](t, data)["error"]; got.Code != c.errCode || got.Message == "" {
			t.Errorf("%s %s: error %+v", c.method, c.path, got)
		}
	}
}

func TestHealthMetricsOpenAPI(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	e.waitRun(e.startRun("chain", ""), "")
	h := decode[map[string]any](t, e.must("GET", "/healthz", "", "", 200))
	if h["status"] != "ok" {
		t.Fatalf("healthz = %v", h)
	}
	m := string(e.must("GET", "/metrics", "", "", 200))
	for _, want := range []string{
		`hwe_runs_started_total{trigger="api"} 1`,
		`hwe_runs_finished_total{status="succeeded"} 1`,
		`hwe_steps_total{runner="lua",status="succeeded"} 3`,
		`hwe_step_duration_seconds_count{runner="lua"} 3`,
		`hwe_run_duration_seconds_count 1`,
		"hwe_runs_queued 0",
		"hwe_runs_active 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(e.must("GET", "/api/v1/openapi.json", "", "", 200), &doc); err != nil {
		t.Fatal(err)
	}
}
