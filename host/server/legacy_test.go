package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestLegacyRoutesKeepReferenceShapes(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	e.writeWorkflow("zeta", strings.Replace(chainWorkflow, `name = "chain",`, `name = "alpha_display",`, 1))
	e.writeWorkflow("nodesc", "workflow = { name = 'nodesc', steps = { a = { language = 'lua', code = [[ function run() return 1 end ]] } } }\n")

	// GET /api/workflows: a bare array of WorkflowInfo sorted by display_name.
	var list []map[string]any
	if err := json.Unmarshal(e.must("GET", "/api/workflows", "", "", 200), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("list = %v", list)
	}
	for _, item := range list {
		keys := []string{}
		for k := range item {
			keys = append(keys, k)
		}
		if len(keys) != 4 || item["name"] == nil || item["display_name"] == nil || item["path"] == nil {
			t.Fatalf("WorkflowInfo keys = %v", item)
		}
		if _, ok := item["description"]; !ok {
			t.Fatalf("description missing: %v", item)
		}
	}
	if list[0]["display_name"] != "alpha_display" || list[0]["name"] != "zeta" || list[1]["name"] != "chain" {
		t.Fatalf("order = %v", list)
	}
	if list[2]["description"] != nil {
		t.Fatalf("no description must be null: %v", list[2])
	}
	if p := list[1]["path"].(string); !strings.HasSuffix(p, "workflows/chain.lua") {
		t.Fatalf("path = %s", p)
	}

	// POST /api/workflows/{name}/run: 200 WorkflowExecution, fields in the reference's order.
	data := e.must("POST", "/api/workflows/chain/run", "", "", 200)
	if !strings.HasPrefix(string(data), `{"workflow_name":"chain","status":"completed","steps":[{"step_number":1,"name":"a","language":"lua","output":"{\"n\":1}","status":"success","duration_ms":`) {
		t.Fatalf("execution = %s", data)
	}
	var ex legacyExecution
	json.Unmarshal(data, &ex)
	if len(ex.Steps) != 3 || ex.Steps[2].Output != `{"n":3}` || ex.Error != nil {
		t.Fatalf("execution = %+v", ex)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(data, &raw)
	if string(raw["error"]) != "null" {
		t.Fatalf("error must be null: %s", raw["error"])
	}
	keys := reflect.ValueOf(raw).MapKeys()
	if len(keys) != 5 {
		t.Fatalf("execution keys = %v", keys)
	}
	// The run is in the history too.
	runs := decode[struct {
		Runs []runSummary `json:"runs"`
	}](t, e.must("GET", "/api/v1/runs", "", "", 200))
	if len(runs.Runs) != 1 || runs.Runs[0].Trigger != "legacy" {
		t.Fatalf("history = %+v", runs)
	}

	// A failed run is still 200, status failed, with an error message.
	e.exec.fail.Store("b", "nope")
	data = e.must("POST", "/api/workflows/chain/run", "", "", 200)
	json.Unmarshal(data, &ex)
	if ex.Status != "failed" || ex.Error == nil || !strings.Contains(*ex.Error, "nope") || len(ex.Steps) != 2 || ex.Steps[1].Status != "failed" {
		t.Fatalf("failed execution = %s", data)
	}
	// Missing workflow: 404 with an empty body, like the reference; traversal too.
	for _, p := range []string{"/api/workflows/missing/run", "/api/workflows/..%2f..%2fetc%2fx/run"} {
		resp, body := e.do("POST", p, "", "")
		if resp.StatusCode != 404 || len(body) != 0 {
			t.Fatalf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	// Other methods get 405.
	resp, _ := e.do("GET", "/api/workflows/chain/run", "", "")
	if resp.StatusCode != 405 {
		t.Fatalf("GET run: %d", resp.StatusCode)
	}
}

// Outputs come back exactly as the step produced them, "<" included.
func TestOutputsAreNotHTMLEscaped(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("xss", xssWorkflow)
	id := e.startRun("xss", "")
	e.waitRun(id, "")
	data := e.must("GET", "/api/v1/runs/"+id, "", "", 200)
	if !strings.Contains(string(data), `"output":{"html":"<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>"}`) {
		t.Fatalf("run JSON = %s", data)
	}
	resp, _ := e.do("GET", "/api/v1/runs/"+id, "", "")
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers = %v", resp.Header)
	}
}
