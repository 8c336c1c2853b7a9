package shell

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

func runner(t testing.TB) *Runner {
	t.Helper()
	r := New(Options{})
	t.Cleanup(func() { _ = r.Close() })
	if err := r.resolve(); err != nil {
		t.Fatalf("these tests need bash: install it (Debian: apt-get install bash): %v", err)
	}
	return r
}

func step(name, code string, inputs map[string]string) *api.StepRequest {
	return steptest.Step(api.LangShell, name, code, inputs)
}

func run(t *testing.T, req *api.StepRequest) (string, *steptest.Host, error) {
	t.Helper()
	h := steptest.NewHost()
	out, err := runner(t).Run(context.Background(), req, h)
	return string(out), h, err
}

func mustRun(t *testing.T, req *api.StepRequest) string {
	t.Helper()
	out, _, err := run(t, req)
	if err != nil {
		t.Fatalf("step %s: %v", req.Step, err)
	}
	return out
}

func TestRunFunctionJSONOutput(t *testing.T) {
	got := mustRun(t, step("init", "run() {\n    echo '{\"numbers\": [1, 2, 3], \"status\": \"initialized\"}'\n}\n", nil))
	if got != `{"numbers":[1,2,3],"status":"initialized"}` {
		t.Fatalf("got %s", got)
	}
}

func TestTopLevelCodeWithoutRunGivesTheWrapper(t *testing.T) {
	got := mustRun(t, step("task_a", "echo \"Task A: starting\"\necho \"warning\" >&2\necho \"result_a\"\n", nil))
	if got != `{"exit_code":0,"stderr":"warning","stdout":"Task A: starting\nresult_a"}` {
		t.Fatalf("got %s", got)
	}
}

func TestOutputLineRules(t *testing.T) {
	cases := []struct{ name, code, want string }{
		{"first-object-wins", "echo '{\"a\":1}'\necho '{\"b\":2}'", `{"a":1}`},
		{"text-before-object", "echo 'Generating...'\necho '  {\"z\": 1, \"a\": 2}  '", `{"a":2,"z":1}`},
		{"array-is-not-output", "echo '[1,2]'", `{"exit_code":0,"stderr":"","stdout":"[1,2]"}`},
		{"scalar-is-not-output", "echo 5", `{"exit_code":0,"stderr":"","stdout":"5"}`},
		{"multi-line-json-is-not-output", "cat <<EOF\n{\n  \"report\": 1\n}\nEOF", `{"exit_code":0,"stderr":"","stdout":"{\n  \"report\": 1\n}"}`},
		{"braces-but-not-json", "echo '{not json}'", `{"exit_code":0,"stderr":"","stdout":"{not json}"}`},
		{"no-output", "true", `{"exit_code":0,"stderr":"","stdout":""}`},
		{"no-html-escape", "echo '{\"s\":\"<a & b>\"}'", `{"s":"<a & b>"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mustRun(t, step(c.name, c.code, nil)); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// The reference's examples grep "key":value out of INPUT_* and parse_input,
// which needs compact JSON.
func TestInputsAreCompactJSONVariables(t *testing.T) {
	code := `run() {
    local doubled=$(parse_input "process_with_python")
    local count=$(echo "$doubled" | grep -o '"count":[0-9]*' | cut -d':' -f2)
    echo "{\"count\": $count, \"raw\": $INPUT_PROCESS_WITH_PYTHON}"
}
`
	req := step("analyze", code, map[string]string{"process_with_python": `{"count": 5, "doubled": [2, 4]}`})
	if got := mustRun(t, req); got != `{"count":5,"raw":{"count":5,"doubled":[2,4]}}` {
		t.Fatalf("got %s", got)
	}
}

// In the reference a ' in the data broke the script (or injected into it),
// and a dependency named my-step failed the step.
func TestInputsCannotBreakOrInject(t *testing.T) {
	evil := `{"s":"it's'; echo INJECTED; '","t":"a  b *"}`
	code := `run() {
    printf '%s\n' "$INPUT_MY_STEP" > got.txt
    parse_input my-step >> got.txt
    python3 -c 'import json,sys; a,b=open("got.txt").read().splitlines(); print(json.dumps({"same": a == b, "v": json.loads(a)}))'
}
`
	req := step("consumer", code, map[string]string{"my-step": evil})
	req.TempDir = t.TempDir()
	out, h, err := run(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if out != `{"same":true,"v":{"s":"it's'; echo INJECTED; '","t":"a  b *"}}` {
		t.Fatalf("got %s", out)
	}
	if h.Has("stdout: INJECTED") {
		t.Fatal("input was executed as code")
	}
}

func TestSetEFailureMessageAndLine(t *testing.T) {
	req := step("failing", "echo start\nrun() {\n    echo 'about to fail' >&2\n    false\n    echo never\n}\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/sh.lua", 40
	_, h, err := run(t, req)
	se := steptest.StepError(t, err)
	if se.Message != "Shell script failed in step 'failing': about to fail" {
		t.Fatalf("message %q", se.Message)
	}
	if se.File != "/wf/sh.lua" || se.Line != 43 {
		t.Fatalf("at %s:%d, want /wf/sh.lua:43", se.File, se.Line)
	}
	if h.Has("stdout: never") {
		t.Fatal("set -e did not stop the step")
	}
}

func TestCommandNotFoundAndExitStatus(t *testing.T) {
	req := step("missing", "echo ok\nno_such_command_hwe\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/sh.lua", 10
	_, _, err := run(t, req)
	se := steptest.StepError(t, err)
	if se.Message != "Shell script failed in step 'missing': missing: line 2: no_such_command_hwe: command not found" || se.Line != 11 {
		t.Fatalf("got %q at line %d", se.Message, se.Line)
	}
	_, _, err = run(t, step("exit3", "run() {\n  exit 3\n}\n", nil))
	if got := steptest.StepError(t, err).Message; got != "Shell script failed in step 'exit3': exit status 3" {
		t.Fatalf("got %q", got)
	}
}

func TestSyntaxErrorLine(t *testing.T) {
	req := step("syntax", "echo a\nif true; then\n  echo b\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/sh.lua", 3
	problems := runner(t).CheckStep(context.Background(), req)
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "/wf/sh.lua:") || !strings.Contains(problems[0], "syntax error") {
		t.Fatalf("CheckStep: %q", problems)
	}
	if _, _, err := run(t, req); !api.IsStepError(err) {
		t.Fatalf("run: %v", err)
	}
	if problems := runner(t).CheckStep(context.Background(), step("ok", "run() { echo '{}'; }", nil)); len(problems) != 0 {
		t.Fatalf("CheckStep on valid code: %q", problems)
	}
}

func TestStdinIsEmpty(t *testing.T) {
	got := mustRun(t, step("stdin", "if read -r line; then echo \"read: $line\"; else echo '{\"stdin\":\"eof\"}'; fi", nil))
	if got != `{"stdin":"eof"}` {
		t.Fatalf("got %s", got)
	}
}

func TestOutputGoesToTheStepLog(t *testing.T) {
	_, h, err := run(t, step("logs", "echo one\necho two >&2\nprintf 'no newline'", nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stdout: one", "stderr: two", "stdout: no newline"} {
		if !h.Has(want) {
			t.Errorf("log is missing %q: %q", want, h.Lines())
		}
	}
}

func TestHostEnvironmentDoesNotReachSteps(t *testing.T) {
	t.Setenv("HWE_TEST_HOST_SECRET", "leaked")
	dir := t.TempDir()
	req := step("env", "python3 -c 'import json, os; print(json.dumps({\"env\": dict(os.environ), \"cwd\": os.getcwd()}))'", map[string]string{"dep": `{"x":1}`})
	req.Env = map[string]string{"GRANTED": "yes"}
	req.TempDir = dir
	var got struct {
		Env map[string]string `json:"env"`
		Cwd string            `json:"cwd"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, req)), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Env["HWE_TEST_HOST_SECRET"]; ok {
		t.Fatalf("host variable reached the step")
	}
	// PATH is the fixed one with the step's hwe-host folder in front.
	bin, rest, _ := strings.Cut(got.Env["PATH"], ":")
	if filepath.Base(bin) != helperBinDir || rest != proc.DefaultPATH {
		t.Errorf("PATH = %q, want the hwe-host folder then %q", got.Env["PATH"], proc.DefaultPATH)
	}
	want := map[string]string{"GRANTED": "yes", "HOME": dir, "LANG": "C.UTF-8", "PATH": got.Env["PATH"], "INPUT_DEP": `{"x":1}`}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Env[k], v)
		}
	}
	for k := range got.Env {
		if _, ok := want[k]; !ok && k != "BASH_FUNC_parse_input%%" && k != "PWD" && k != "SHLVL" && k != "_" {
			t.Errorf("unexpected variable %s=%q", k, got.Env[k])
		}
	}
	if got.Cwd != dir {
		t.Errorf("cwd %s, want %s", got.Cwd, dir)
	}
}

func TestContextTimeoutKillsProcessGroup(t *testing.T) {
	h := steptest.NewHost()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := runner(t).Run(ctx, step("slow", "sleep 300 &\necho child $!\nwait\n", nil), h)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 6*time.Second {
		t.Fatalf("Run returned %v after the deadline", elapsed)
	}
	steptest.WaitGone(t, h.WaitPID(t, "child"))
}

func TestBackgroundProcessesEndWithTheStep(t *testing.T) {
	h := steptest.NewHost()
	if _, err := runner(t).Run(context.Background(), step("bg", "sleep 300 >/dev/null 2>&1 &\necho child $!\n", nil), h); err != nil {
		t.Fatal(err)
	}
	steptest.WaitGone(t, h.WaitPID(t, "child"))
}

func TestKilledStepReportsRunnerExited(t *testing.T) {
	h := steptest.NewHost()
	errc := make(chan error, 1)
	go func() {
		_, err := runner(t).Run(context.Background(), step("victim", "echo pid $$\nsleep 300\n", nil), h)
		errc <- err
	}()
	pid := h.WaitPID(t, "pid")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		var exited *api.RunnerExitedError
		if !errors.As(err, &exited) || err.Error() != "runner shell exited: signal: killed" {
			t.Fatalf("got %T %v", err, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("step did not end after bash was killed")
	}
}

func TestInputVarNames(t *testing.T) {
	cases := map[string]string{"init_data": "INPUT_INIT_DATA", "my-step": "INPUT_MY_STEP", "a.b c": "INPUT_A_B_C", "x1": "INPUT_X1"}
	for name, want := range cases {
		if got := inputVar(name); got != want {
			t.Errorf("inputVar(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestInfo(t *testing.T) {
	info := runner(t).Info()
	if info.Name != "shell" || info.Languages[0] != api.LangShell || !strings.Contains(info.Version, "bash ") {
		t.Fatalf("%+v", info)
	}
}

func TestSpawnHookStartsAndReleasesEveryStep(t *testing.T) {
	var infos []proc.SpawnInfo
	released := 0
	r := New(Options{Spawn: func(cmd *exec.Cmd, info proc.SpawnInfo) (func(), error) {
		infos = append(infos, info)
		return func() { released++ }, cmd.Start()
	}})
	defer r.Close()
	req := step("hooked", "echo '{\"ok\":true}'", nil)
	req.Tenant = "t1"
	if out, err := r.Run(context.Background(), req, nil); err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("%s %v", out, err)
	}
	req.TempDir = t.TempDir()
	if _, err := r.Run(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || released != 2 {
		t.Fatalf("started %d, released %d", len(infos), released)
	}
	if infos[0].Purpose != proc.PurposeStep || infos[0].Tenant != "t1" || infos[0].Workdir == "" || infos[0].TempDir != "" {
		t.Fatalf("first step: %+v", infos[0])
	}
	// With a run TempDir the step runs there, and still has a private
	// folder of its own (hwe-host lives in it).
	if infos[1].Workdir == "" || infos[1].Workdir == infos[1].TempDir || infos[1].TempDir != req.TempDir {
		t.Fatalf("second step: %+v", infos[1])
	}
}
