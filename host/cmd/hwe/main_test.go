package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/cli"
	"github.com/hwe-run/hwe/host/plugin"
	"github.com/hwe-run/hwe/host/sandbox"
	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	sandbox.MaybeRunHelper()
	// The runner plugins re-execute this test binary as `hwe __runner NAME`.
	if plugin.ServeBuiltinIfRequested(os.Args, builtinRunner) {
		return
	}
	testscript.Main(m, map[string]func(){
		"hwe": func() { os.Exit(hweMain()) },
	})
}

// repoRoot is the repository root (tests run in host/cmd/hwe).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// runCLI runs hwe in-process in dir and returns stdout, stderr and the exit status.
func runCLI(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "HWE_SANDBOX" || strings.HasPrefix(k, "HWE_") {
			return ""
		}
		return os.Getenv(k)
	}, Dir: dir, Runners: runners, PluginInfos: pluginInfos}
	code := cli.Main(env, append([]string{"hwe"}, args...))
	return out.String(), errb.String(), code
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("NO_COLOR", "1")
			e.Setenv("HOME", e.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// exits N ARGS... runs hwe and checks its exact exit status.
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 1 {
					ts.Fatalf("usage: exits N hwe-args...")
				}
				want, _ := strconv.Atoi(args[0])
				err := ts.Exec("hwe", args[1:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("exec: %v", err)
				}
				if got != want {
					ts.Fatalf("exit status %d, want %d", got, want)
				}
			},
		},
	})
}

// TestGoldenBadWorkflows checks `hwe validate` on every bad workflow against
// the FILE:LINE: message lines in its .problems file.
func TestGoldenBadWorkflows(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "testdata/workflows/bad/*.lua"))
	if len(files) == 0 {
		t.Fatal("no bad workflows found")
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, _, code := runCLI(t, root, "validate", rel)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			golden := strings.TrimSuffix(f, ".lua") + ".problems"
			compareGolden(t, golden, stdout)
			// nothing runs: `hwe run` must fail the same way without starting a step
			runOut, _, code := runCLI(t, root, "run", "--json", rel)
			if code != 1 || !strings.Contains(runOut, `"steps":[]`) {
				t.Errorf("run of a bad workflow: exit %d, %s", code, runOut)
			}
		})
	}
}

// TestGoldenGoodWorkflows runs every good workflow and compares its --json
// result (durations zeroed) with the .golden.json beside it.
func TestGoldenGoodWorkflows(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "testdata/workflows/good/*.lua"))
	if len(files) == 0 {
		t.Fatal("no good workflows found")
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, stderr, code := runCLI(t, root, "run", "--json", rel)
			if code != 0 {
				t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			compareGolden(t, strings.TrimSuffix(f, ".lua")+".golden.json", normalizeRun(t, stdout))
		})
	}
}

// normalizeRun zeroes durations so results compare across runs.
func normalizeRun(t *testing.T, line string) string {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	v["duration_ms"] = 0
	for _, s := range v["steps"].([]any) {
		s.(map[string]any)["duration_ms"] = 0
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return buf.String()
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (run go test -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs\n--- want\n%s\n--- got\n%s", filepath.Base(path), want, got)
	}
}
