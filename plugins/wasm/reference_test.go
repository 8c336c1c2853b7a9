package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

var chronoStamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?\+00:00$`)

// The example module of the reference's wasm workflow, rebuilt from WAT,
// gives the reference's result object for each of its functions.
func TestReferenceExampleModule(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := filepath.Join(repoRoot(t), "workflows", "example_wasm_module.wasm")
	for _, fn := range []string{"run", "process_data", "complex_computation"} {
		t.Run(fn, func(t *testing.T) {
			req := step(module, fn)
			req.Module = "workflows/example_wasm_module.wasm" // as the reference's workflow writes it
			req.WorkflowDir = filepath.Join(repoRoot(t), "workflows")
			req.Inputs = inputs("generate_input", `{"a":1,"b":[1,2],"c":"x","d":null}`)
			host := &testHost{}
			r.opts.WorkDir = repoRoot(t)
			out := mustRun(t, r, req, host)

			got := decode(t, out)
			stamp, _ := got["processed_data"].(map[string]any)["timestamp"].(string)
			if !chronoStamp.MatchString(stamp) {
				t.Errorf("timestamp %q is not chrono's RFC 3339", stamp)
			}
			want := `{"input_summary":{"generate_input":"object[4]"},` +
				`"processed_data":{"message":"WASM processing completed successfully","success":true,"timestamp":"` + stamp + `"},` +
				`"wasm_execution":{"function":"` + fn + `","input_count":1,"module":"workflows/example_wasm_module.wasm","return_code":0,"status":"success"}}`
			if string(out) != want {
				t.Errorf("output\n got %s\nwant %s", out, want)
			}
			wantLogs := []string{
				"stdout: Executing WASM function '" + fn + "' from module 'workflows/example_wasm_module.wasm'",
				"stdout: Input data available: 1 items",
				"stdout: WASM function completed with return code: 0",
			}
			if logs := host.logLines(); strings.Join(logs, "\n") != strings.Join(wantLogs, "\n") {
				t.Errorf("logs\n got %q\nwant %q", logs, wantLogs)
			}
		})
	}
}

// A root step has no input_summary; every kind of input is summarised the
// reference's way.
func TestReferenceInputSummary(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(fixture(t, "reference.wasm"), "rc0")
	out := mustRun(t, r, req, &testHost{})
	if got := decode(t, out); got["input_summary"] != nil {
		t.Errorf("root step has input_summary: %s", out)
	}
	req.Inputs = inputs("o", `{"k":1}`, "a", `[1,2,3]`, "s", `"héllo"`, "n", `2.50`, "i", `-7`, "b", `true`, "z", `null`)
	out = mustRun(t, r, req, &testHost{})
	want := `{"a":"array[3]","b":"bool[true]","i":"number[-7]","n":"number[2.50]","o":"object[1]","s":"string[6]","z":"null"}`
	if got := string(out); !strings.Contains(got, `"input_summary":`+want) {
		t.Errorf("output %s\nwant input_summary %s", got, want)
	}
}

// Every return-code rule of the reference, and hwe's defined meaning for
// the signatures the reference called through undefined behaviour.
func TestReferenceReturnCodes(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "reference.wasm")
	cases := []struct {
		fn      string
		inputs  int
		rc      int
		status  string
		wantErr string
	}{
		{fn: "rc0", rc: 0, status: "success"},
		{fn: "rc1", rc: 1, status: "error"},
		{fn: "rc10", rc: 10, status: "error"},
		{fn: "rc11", wantErr: "WASM function 'rc11' failed with return code: 11"},
		{fn: "rc_neg1", wantErr: "WASM function 'rc_neg1' failed with return code: -1"},
		{fn: "void", rc: 0, status: "success"},
		{fn: "echo_arg", inputs: 0, rc: 0, status: "success"},
		{fn: "echo_arg", inputs: 3, rc: 3, status: "error"},
		{fn: "echo_arg", inputs: 11, wantErr: "failed with return code: 11"},
		{fn: "trap", wantErr: "WASM function 'trap' trapped: wasm error: unreachable"},
		{fn: "divide_by_zero", wantErr: "WASM function 'divide_by_zero' trapped: wasm error: integer divide by zero"},
		{fn: "add", wantErr: "Function 'add' in WASM module"},
		{fn: "missing", wantErr: `Function 'missing' not found in WASM module '` + module + `'. Available exports: ["memory", "rc0", "rc1"`},
	}
	for _, c := range cases {
		req := step(module, c.fn)
		var pairs []string
		for i := range c.inputs {
			pairs = append(pairs, "dep"+string(rune('a'+i)), "1")
		}
		req.Inputs = inputs(pairs...)
		out, err := r.Run(context.Background(), req, &testHost{})
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s(%d inputs): err = %v, want %q", c.fn, c.inputs, err, c.wantErr)
			}
			if err != nil && !api.IsStepError(err) {
				t.Errorf("%s: error %T is not a step error", c.fn, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s(%d inputs): %v", c.fn, c.inputs, err)
			continue
		}
		exec := decode(t, out)["wasm_execution"].(map[string]any)
		if exec["return_code"] != float64(c.rc) || exec["status"] != c.status {
			t.Errorf("%s(%d inputs): wasm_execution = %v, want return_code %d status %s", c.fn, c.inputs, exec, c.rc, c.status)
		}
		processed := decode(t, out)["processed_data"].(map[string]any)
		if c.rc == 0 && processed["success"] != true {
			t.Errorf("%s: processed_data = %v", c.fn, processed)
		}
		if c.rc > 0 {
			wantMsg := "WASM processing completed with warning code " + strconv.Itoa(c.rc)
			if processed["warning"] != true || processed["message"] != wantMsg || processed["success"] != nil {
				t.Errorf("%s: processed_data = %v, want warning %q", c.fn, processed, wantMsg)
			}
		}
	}
}

// A fresh instance per step: state in a module's globals never carries over.
func TestReferenceFreshInstancePerStep(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(fixture(t, "reference.wasm"), "count_calls")
	for i := range 3 {
		out := mustRun(t, r, req, &testHost{})
		if rc := decode(t, out)["wasm_execution"].(map[string]any)["return_code"]; rc != float64(0) {
			t.Fatalf("call %d: return_code %v, want 0 (state leaked from an earlier step)", i, rc)
		}
	}
}

// A relative module path resolves against the workflow's folder first, then
// the working directory; a missing module gets the reference's message.
func TestModuleResolution(t *testing.T) {
	wfDir, wd := t.TempDir(), t.TempDir()
	data, err := os.ReadFile(fixture(t, "reference.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(repoRoot(t), "workflows", "example_wasm_module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	// The same name in both places, different modules: the workflow's wins.
	must(t, os.MkdirAll(filepath.Join(wfDir, "mods"), 0o755))
	must(t, os.MkdirAll(filepath.Join(wd, "mods"), 0o755))
	must(t, os.WriteFile(filepath.Join(wfDir, "mods", "m.wasm"), data, 0o644))
	must(t, os.WriteFile(filepath.Join(wd, "mods", "m.wasm"), example, 0o644))
	must(t, os.WriteFile(filepath.Join(wd, "mods", "only_in_wd.wasm"), example, 0o644))

	r := newTestRunner(t, Options{WorkDir: wd})
	req := &api.StepRequest{Step: "s", Module: "mods/m.wasm", Function: "rc1", WorkflowDir: wfDir}
	mustRun(t, r, req, &testHost{}) // rc1 exists only in reference.wasm

	req = &api.StepRequest{Step: "s", Module: "mods/only_in_wd.wasm", Function: "complex_computation", WorkflowDir: wfDir}
	mustRun(t, r, req, &testHost{})

	req = &api.StepRequest{Step: "s", Module: "mods/nope.wasm", WorkflowDir: wfDir}
	err = mustFail(t, r, req, &testHost{}, "WASM module file not found: mods/nope.wasm. Please ensure the .wasm file exists.")
	if !api.IsStepError(err) {
		t.Errorf("missing module: %T is not a step error", err)
	}
	mustFail(t, r, &api.StepRequest{Step: "s"}, &testHost{}, "WASM step 's' missing 'module' field")
}

// A module rewritten in place is recompiled: the content hash, not the
// path, keys the cache.
func TestModuleRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.wasm")
	ref, _ := os.ReadFile(fixture(t, "reference.wasm"))
	example, _ := os.ReadFile(filepath.Join(repoRoot(t), "workflows", "example_wasm_module.wasm"))
	must(t, os.WriteFile(path, ref, 0o644))
	r := newTestRunner(t, Options{})
	mustRun(t, r, step(path, "rc0"), &testHost{})
	must(t, os.WriteFile(path, example, 0o644))
	future := time.Now().Add(time.Hour)
	must(t, os.Chtimes(path, future, future))
	mustFail(t, r, step(path, "rc0"), &testHost{}, "Function 'rc0' not found")
	mustRun(t, r, step(path, "complex_computation"), &testHost{})
}

func TestCheckStep(t *testing.T) {
	r := newTestRunner(t, Options{})
	cases := []struct {
		module, fn string
		want       string // "" = valid
	}{
		{fixture(t, "reference.wasm"), "rc0", ""},
		{fixture(t, "reference.wasm"), "echo_arg", ""},
		{fixture(t, "reference.wasm"), "void", ""},
		{fixture(t, "native.wasm"), "echo", ""},
		{fixture(t, "native.wasm"), "void_ok", ""},
		{fixture(t, "reference.wasm"), "add", "has signature (i32, i32) -> (i32), which hwe cannot call"},
		{fixture(t, "native.wasm"), "two_args", "has signature (i32, i32) -> (i32), which hwe cannot call"},
		{fixture(t, "reference.wasm"), "nope", "Function 'nope' not found in WASM module"},
		{fixture(t, "missing.wasm"), "run", "WASM module file not found"},
		{fixture(t, "not_wasm.wasm"), "run", "Failed to load WASM module"},
		{fixture(t, "imports_env.wasm"), "run", "imports env.mystery, which hwe does not provide"},
		{"", "run", "missing 'module' field"},
		{filepath.Join(repoRoot(t), "workflows", "example_wasm_module.wasm"), "small_memory",
			"starts with 1 MiB of memory, more than the step's memory limit of 512 KiB"},
	}
	for _, c := range cases {
		req := step(c.module, c.fn)
		if c.module == "" {
			req.Module = ""
		}
		if c.fn == "small_memory" {
			req.Function = "run"
			req.Grant.Memory = 512 << 10
		}
		problems := r.CheckStep(context.Background(), req)
		if c.want == "" {
			if len(problems) > 0 {
				t.Errorf("%s %s: unexpected problems %q", filepath.Base(c.module), c.fn, problems)
			}
			continue
		}
		if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s %s: problems %q, want one containing %q", filepath.Base(c.module), c.fn, problems, c.want)
		}
	}
}

// A module that passes the header checks but not the compiler's
// validation is reported as a load failure, by CheckStep and by Run.
func TestInvalidModuleBody(t *testing.T) {
	data, _ := os.ReadFile(fixture(t, "reference.wasm"))
	// Corrupt the last byte of the code section (an "end" opcode).
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 0xff
	path := filepath.Join(t.TempDir(), "bad.wasm")
	must(t, os.WriteFile(path, bad, 0o644))
	r := newTestRunner(t, Options{})
	problems := r.CheckStep(context.Background(), step(path, "rc0"))
	if len(problems) != 1 || !strings.Contains(problems[0], "Failed to load WASM module") {
		t.Errorf("problems = %q", problems)
	}
	err := mustFail(t, r, step(path, "rc0"), &testHost{}, "Failed to load WASM module")
	var se *api.StepError
	if !errors.As(err, &se) {
		t.Errorf("%T is not a step error", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
