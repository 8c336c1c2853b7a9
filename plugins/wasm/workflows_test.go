package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/workflow"
)

// The example workflows load, and every wasm step in them passes this
// runner's checks (module found beside the workflow, function callable).
// The workflows themselves are run end to end by the CLI's tests; here the
// wasm steps are run with the inputs their Python steps produce.
func TestExampleWorkflowsValidate(t *testing.T) {
	r := goGuestRunner(t)
	for _, name := range []string{"wasm_pipeline.lua", "wasm_native_pipeline.lua"} {
		path := filepath.Join(repoRoot(t), "workflows", name)
		wasmSteps := 0
		_, err := workflow.LoadFile(path, workflow.LoadOptions{
			CheckStep: func(s *workflow.Step, w *workflow.Workflow) []string {
				if s.Language != api.LangWasm {
					return nil
				}
				wasmSteps++
				return r.CheckStep(context.Background(), wasmRequest(w, s, nil))
			},
		})
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if wasmSteps == 0 {
			t.Errorf("%s: no wasm steps checked", name)
		}
	}
}

// wasmRequest builds the request the engine would for a wasm step.
func wasmRequest(w *workflow.Workflow, s *workflow.Step, in map[string]json.RawMessage) *api.StepRequest {
	req := &api.StepRequest{
		RunID: "run", Workflow: w.Name, Step: s.Name, Attempt: 1,
		Language: s.Language, LanguageAsWritten: s.LanguageAsWritten,
		Module: s.Module, Function: s.Function, Inputs: in,
		WorkflowFile: w.File, WorkflowDir: w.Dir, Timeout: s.Timeout, Env: s.Env,
	}
	if s.Allow != nil {
		req.Grant = *s.Allow
	}
	return req
}

// The reference-convention chain of wasm_pipeline.lua: each step's output
// is the next one's input, and all three checks succeed.
func TestWasmPipelineSteps(t *testing.T) {
	r := newTestRunner(t, Options{})
	w, err := workflow.LoadFile(filepath.Join(repoRoot(t), "workflows", "wasm_pipeline.lua"), workflow.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prev := map[string]json.RawMessage{"generate_input": json.RawMessage(
		`{"computation_params":{"base_value":1,"iterations":100},"fibonacci_input":10,"numbers":[1,2,3,4,5,6,7,8,9,10],"timestamp":"2024-10-26T12:00:00Z"}`)}
	wantSummary := `{"generate_input":"object[4]"}`
	for _, name := range []string{"wasm_basic_computation", "wasm_process_data", "wasm_complex_computation"} {
		s := w.Step(name)
		out := mustRun(t, r, wasmRequest(w, s, prev), &testHost{})
		got := decode(t, out)
		exec := got["wasm_execution"].(map[string]any)
		if exec["return_code"] != float64(0) || exec["status"] != "success" || exec["module"] != "example_wasm_module.wasm" {
			t.Errorf("%s: %s", name, out)
		}
		if !strings.Contains(string(out), `"input_summary":`+wantSummary) {
			t.Errorf("%s: %s, want input_summary %s", name, out, wantSummary)
		}
		prev = map[string]json.RawMessage{name: out}
		wantSummary = fmt.Sprintf(`{"%s":"object[3]"}`, name)
	}
}

// The wasm steps of wasm_native_pipeline.lua compute from what its Python
// step generates (reproduced here).
func TestWasmNativePipelineSteps(t *testing.T) {
	r := goGuestRunner(t)
	w, err := workflow.LoadFile(filepath.Join(repoRoot(t), "workflows", "wasm_native_pipeline.lua"), workflow.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	numbers, x := []int{}, 7
	for range 24 {
		x = (x*37 + 11) % 101
		numbers = append(numbers, x)
	}
	text := "WebAssembly runs the same module everywhere. The module cannot " +
		"touch files or the network unless the step is allowed to. " +
		"The host decides what the module may do!"
	gen, _ := json.Marshal(map[string]any{"numbers": numbers, "text": text})
	in := map[string]json.RawMessage{"generate": gen}

	var stats struct {
		Count  int
		Sum    float64
		Primes []int
		Sorted []float64
		Source string
	}
	must(t, json.Unmarshal(mustRun(t, r, wasmRequest(w, w.Step("stats"), in), &testHost{}), &stats))
	sum := 0
	for _, n := range numbers {
		sum += n
	}
	if stats.Count != 24 || stats.Sum != float64(sum) || stats.Source != "generate" || len(stats.Sorted) != 24 {
		t.Errorf("stats: %+v (sum %d)", stats, sum)
	}

	var words struct {
		Words, Sentences int
		TopWords         []struct {
			Word  string
			Count int
		} `json:"top_words"`
	}
	must(t, json.Unmarshal(mustRun(t, r, wasmRequest(w, w.Step("text_stats"), in), &testHost{}), &words))
	if words.Words != len(strings.Fields(text)) || words.Sentences != 3 || words.TopWords[0].Word != "the" {
		t.Errorf("text_stats: %+v", words)
	}
}
