package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/workflow"
	"github.com/hwe-run/hwe/plugins/lua"
	"github.com/hwe-run/hwe/plugins/node"
	"github.com/hwe-run/hwe/plugins/python"
	"github.com/hwe-run/hwe/plugins/shell"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// executor runs each step on the runner of its language.
type executor map[string]api.Runner

func (e executor) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	return e[req.Language].Run(ctx, req, host)
}

var runners = executor{
	api.LangPython:     python.New(python.Options{}),
	api.LangJavaScript: node.New(node.Options{}),
	api.LangShell:      shell.New(shell.Options{}),
	api.LangLua:        lua.New(lua.Options{}),
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, r := range runners {
		if c, ok := r.(api.Closer); ok {
			_ = c.Close()
		}
	}
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func runFile(t *testing.T, path string) (*engine.RunResult, map[string][]string) {
	t.Helper()
	wf, err := workflow.LoadFile(path, workflow.LoadOptions{})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	logs := map[string][]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := engine.Run(ctx, wf, engine.Options{
		Executor:  runners,
		KeepGoing: true,
		OnEvent: func(e engine.Event) {
			if e.Type == engine.EventStepLog {
				logs[e.Step] = append(logs[e.Step], e.Stream+": "+e.Line)
			}
		},
	})
	return res, logs
}

// outputs returns the run's step outputs, by step name, as indented JSON.
func outputs(t *testing.T, res *engine.RunResult) string {
	t.Helper()
	byName := map[string]json.RawMessage{}
	for _, s := range res.Steps {
		if s.Status != engine.StatusSucceeded {
			t.Errorf("step %s %s: %s", s.Name, s.Status, s.Error)
		}
		byName[s.Name] = s.Output
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(byName); err != nil {
		t.Fatal(err)
	}
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
		t.Fatalf("missing golden file (go test ./plugins/internal/e2e -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs\n--- want\n%s\n--- got\n%s", filepath.Base(path), want, got)
	}
}

// The example workflows run and produce the outputs in their golden files
// (testdata/runners/<name>.golden.json).
func TestExampleWorkflows(t *testing.T) {
	root := repoRoot(t)
	for _, name := range []string{"python_pipeline", "javascript_pipeline", "shell_pipeline"} {
		t.Run(name, func(t *testing.T) {
			res, logs := runFile(t, filepath.Join(root, "workflows", name+".lua"))
			if res.Status != engine.StatusSucceeded {
				t.Fatalf("run %s: %s", res.Status, res.Error)
			}
			compareGolden(t, filepath.Join(root, "testdata", "runners", name+".golden.json"), outputs(t, res))
			if len(logs) == 0 {
				t.Error("no step logged anything")
			}
		})
	}
}

func TestReferenceQuirks(t *testing.T) {
	root := repoRoot(t)
	res, logs := runFile(t, filepath.Join(root, "testdata", "runners", "reference_quirks.lua"))
	compareGolden(t, filepath.Join(root, "testdata", "runners", "reference_quirks.golden.json"), outputs(t, res))
	if got := strings.Join(logs["seed"], "|"); got != "stdout: seeding" {
		t.Errorf("seed's log: %q", got)
	}
}

// Each failure names the workflow file and the line in it.
func TestErrorsNameTheWorkflowLine(t *testing.T) {
	root := repoRoot(t)
	path := filepath.Join(root, "testdata", "runners", "step_errors.lua")
	res, _ := runFile(t, path)
	src, _ := os.ReadFile(path)
	lines := strings.Split(string(src), "\n")
	want := map[string]struct {
		line    string // the text of the line the error must name
		message string
	}{
		"py_fails": {"    return a / b", "ZeroDivisionError: division by zero"},
		"js_fails": {"  return data.field;", "Error in JavaScript step js_fails: Cannot read properties of null (reading 'field')"},
		"sh_fails": {"    grep -q needle /dev/null", "Shell script failed in step 'sh_fails': exit status 1"},
	}
	lineRE := regexp.MustCompile(`^(.*):(\d+): (.*)$`)
	for _, s := range res.Steps {
		w := want[s.Name]
		m := lineRE.FindStringSubmatch(s.Error)
		if s.Status != engine.StatusFailed || m == nil {
			t.Errorf("%s: %s %q", s.Name, s.Status, s.Error)
			continue
		}
		n := 0
		for _, c := range m[2] {
			n = n*10 + int(c-'0')
		}
		if m[1] != path || n < 1 || n > len(lines) || lines[n-1] != w.line || m[3] != w.message {
			t.Errorf("%s: %q; want %s at %q", s.Name, s.Error, w.message, w.line)
		}
	}
}
