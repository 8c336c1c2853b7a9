package python

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

var (
	sharedOnce   sync.Once
	sharedRunner *Runner
)

// runner returns one Runner shared by the tests (workers stay warm between
// tests, as they would between steps). It fails the test when python3 is
// missing.
func runner(t testing.TB) *Runner {
	t.Helper()
	sharedOnce.Do(func() { sharedRunner = New(Options{}) })
	if _, err := sharedRunner.Interpreter(); err != nil {
		t.Fatalf("these tests need python3: install it (Debian: apt-get install python3): %v", err)
	}
	return sharedRunner
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRunner != nil {
		_ = sharedRunner.Close()
	}
	os.Exit(code)
}

func step(name, code string, inputs map[string]string) *api.StepRequest {
	return steptest.Step(api.LangPython, name, code, inputs)
}

func run(t *testing.T, r *Runner, req *api.StepRequest) (string, error) {
	t.Helper()
	out, err := r.Run(context.Background(), req, steptest.NewHost())
	return string(out), err
}

func mustRun(t *testing.T, r *Runner, req *api.StepRequest) string {
	t.Helper()
	out, err := run(t, r, req)
	if err != nil {
		t.Fatalf("step %s: %v", req.Step, err)
	}
	return out
}

func TestRootStepCallsRunWithoutArguments(t *testing.T) {
	r := runner(t)
	got := mustRun(t, r, step("root", "def run():\n    return {'b': 2, 'a': [1, 2.5, 1.0]}\n", nil))
	if want := `{"a":[1,2.5,1.0],"b":2}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestStepWithInputsGetsRunInputs(t *testing.T) {
	r := runner(t)
	req := step("double", "def run(inputs):\n    return {'doubled': [x * 2 for x in inputs['src']['numbers']]}\n",
		map[string]string{"src": `{"numbers":[1,2,3]}`})
	if got, want := mustRun(t, r, req), `{"doubled":[2,4,6]}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestArityFollowsTheReference(t *testing.T) {
	r := runner(t)
	_, err := run(t, r, step("root", "def run(inputs):\n    return 1\n", nil))
	if got := steptest.StepError(t, err).Message; got != "TypeError: run() missing 1 required positional argument: 'inputs'" {
		t.Fatalf("root step with run(inputs): %q", got)
	}
	_, err = run(t, r, step("child", "def run():\n    return 1\n", map[string]string{"a": "1"}))
	if got := steptest.StepError(t, err).Message; got != "TypeError: run() takes 0 positional arguments but 1 was given" {
		t.Fatalf("child step with run(): %q", got)
	}
	// parallel_demo's task_b: an optional argument works both ways.
	if got := mustRun(t, r, step("opt", "def run(inputs=None):\n    return 'result_b'\n", map[string]string{"init": `"initialized"`})); got != `"result_b"` {
		t.Fatalf("run(inputs=None): %s", got)
	}
}

func TestMissingOrNonCallableRun(t *testing.T) {
	r := runner(t)
	_, err := run(t, r, step("s1", "x = 1\n", nil))
	if got := steptest.StepError(t, err).Message; got != "No 'run' function found in step s1" {
		t.Fatalf("missing run: %q", got)
	}
	_, err = run(t, r, step("s2", "run = 5\n", nil))
	if got := steptest.StepError(t, err).Message; got != "'run' is not callable in step s2" {
		t.Fatalf("non-callable run: %q", got)
	}
}

func TestReturnValueConversion(t *testing.T) {
	r := runner(t)
	cases := []struct{ ret, want string }{
		{"None", `null`},
		{"'initialized'", `"initialized"`},
		{"5", `5`},
		{"1.0", `1.0`},
		{"(1, 2)", `[1,2]`},
		{"{1: 'a', 'b': True}", `{"1":"a","b":true}`},
		{"float('nan')", `"NaN"`},
		{"{'a': float('inf')}", `"{\"a\": Infinity}"`},
		{"'<a & b>'", `"<a & b>"`},
		{"'héllo ✓'", `"héllo ✓"`},
		{"{'z': 1, 'a': {'y': 2, 'b': 3}}", `{"a":{"b":3,"y":2},"z":1}`},
	}
	for _, c := range cases {
		got := mustRun(t, r, step("conv", "def run():\n    return "+c.ret+"\n", nil))
		if got != c.want {
			t.Errorf("return %s: got %s, want %s", c.ret, got, c.want)
		}
	}
	_, err := run(t, r, step("conv", "def run():\n    return {1, 2}\n", nil))
	if got := steptest.StepError(t, err).Message; got != "TypeError: Object of type set is not JSON serializable" {
		t.Fatalf("set: %q", got)
	}
}

func TestFunctionWithoutReturnGivesNull(t *testing.T) {
	r := runner(t)
	if got := mustRun(t, r, step("none", "def run():\n    pass\n", nil)); got != "null" {
		t.Fatalf("got %s", got)
	}
}

func TestInputsRoundTripExactly(t *testing.T) {
	r := runner(t)
	in := `{"big":12345678901234,"f":10.0,"nested":{"k":[null,true,"x"]},"s":"it's \"quoted\""}`
	got := mustRun(t, r, step("echo", "def run(inputs):\n    return inputs['src']\n", map[string]string{"src": in}))
	if got != in {
		t.Fatalf("got %s, want %s", got, in)
	}
}

func TestExceptionMessageAndWorkflowLine(t *testing.T) {
	r := runner(t)
	req := step("boom", "def helper(x):\n    return x / 0\n\ndef run():\n    return helper(1)\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/pipeline.lua", 20
	_, err := run(t, r, req)
	se := steptest.StepError(t, err)
	if se.Message != "ZeroDivisionError: division by zero" {
		t.Fatalf("message %q", se.Message)
	}
	// Code line 2 (inside helper) is file line 21.
	if se.File != "/wf/pipeline.lua" || se.Line != 21 {
		t.Fatalf("at %s:%d, want /wf/pipeline.lua:21", se.File, se.Line)
	}
	if !strings.Contains(se.Trace, "ZeroDivisionError") || !strings.Contains(se.Trace, `line 21, in helper`) {
		t.Fatalf("trace does not show the step frames:\n%s", se.Trace)
	}
	if strings.Contains(se.Trace, "worker") {
		t.Fatalf("trace shows the worker's own frames:\n%s", se.Trace)
	}
	if got := err.Error(); got != "/wf/pipeline.lua:21: ZeroDivisionError: division by zero" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestSyntaxErrorReportsFileLine(t *testing.T) {
	r := runner(t)
	req := step("bad", "def run():\n    return {'a': 1\n\nx = 2\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/pipeline.lua", 7
	_, err := run(t, r, req)
	se := steptest.StepError(t, err)
	if !strings.HasPrefix(se.Message, "SyntaxError: ") || se.Line < 8 || se.Line > 10 {
		t.Fatalf("got %q at line %d", se.Message, se.Line)
	}
	if problems := r.CheckStep(context.Background(), req); len(problems) != 1 || !strings.Contains(problems[0], "/wf/pipeline.lua:") {
		t.Fatalf("CheckStep: %q", problems)
	}
	good := step("good", "def run():\n    return 1\n", nil)
	if problems := r.CheckStep(context.Background(), good); len(problems) != 0 {
		t.Fatalf("CheckStep on valid code: %q", problems)
	}
}

func TestArityErrorPointsAtDef(t *testing.T) {
	r := runner(t)
	req := step("root", "import json\n\ndef run(inputs):\n    return 1\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/x.lua", 10
	_, err := run(t, r, req)
	if se := steptest.StepError(t, err); se.Line != 12 {
		t.Fatalf("line %d, want 12 (the def)", se.Line)
	}
}

// The reference hides top-level imports and helpers from run(); hwe does not.
func TestTopLevelImportsAndHelpersVisibleInRun(t *testing.T) {
	r := runner(t)
	code := "import json\nfrom math import sqrt\nFACTOR = 3\n\ndef helper(x):\n    return x * FACTOR\n\ndef run():\n    return json.loads(json.dumps({'v': helper(2), 'r': sqrt(16)}))\n"
	if got := mustRun(t, r, step("helpers", code, nil)); got != `{"r":4.0,"v":6}` {
		t.Fatalf("got %s", got)
	}
}

func TestTopLevelSeesInputsAndMainName(t *testing.T) {
	r := runner(t)
	code := "SEEN = sorted(inputs)\nNAME = __name__\ndef run(inputs):\n    return {'seen': SEEN, 'name': NAME}\n"
	got := mustRun(t, r, step("top", code, map[string]string{"a": "1", "b": "2"}))
	if got != `{"name":"__main__","seen":["a","b"]}` {
		t.Fatalf("got %s", got)
	}
}

func TestEachStepHasFreshGlobals(t *testing.T) {
	r := New(Options{
		WorkerOptions: proc.WorkerOptions{
			PoolSize: 1,
			Spares:   -1,
		},
	})
	defer r.Close()
	mustRun(t, r, step("a", "LEFTOVER = 1\nimport sys\ndef run():\n    return 1\n", nil))
	got := mustRun(t, r, step("b", "def run():\n    return 'LEFTOVER' in globals()\n", nil))
	if got != "false" {
		t.Fatalf("a global from the previous step is visible: %s", got)
	}
}

func TestPrintsGoToTheStepLog(t *testing.T) {
	r := runner(t)
	h := steptest.NewHost()
	code := "import sys, subprocess\nprint('hello')\ndef run():\n    print('from run', 42)\n    print('oops', file=sys.stderr)\n    subprocess.run(['echo', 'child'])\n    sys.stdout.write('no newline')\n    return {'ok': True}\n"
	out, err := r.Run(context.Background(), step("printer", code, nil), h)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"ok":true}` {
		t.Fatalf("output %s", out)
	}
	want := []string{"stdout: hello", "stdout: from run 42", "stderr: oops", "stdout: child", "stdout: no newline"}
	got := h.Lines()
	for _, w := range want {
		found := false
		for _, g := range got {
			if g == w {
				found = true
			}
		}
		if !found {
			t.Errorf("log is missing %q; got %q", w, got)
		}
	}
	// The next step's log starts clean.
	h2 := steptest.NewHost()
	if _, err := r.Run(context.Background(), step("quiet", "def run():\n    return 1\n", nil), h2); err != nil {
		t.Fatal(err)
	}
	if l := h2.Lines(); len(l) != 0 {
		t.Fatalf("quiet step logged %q", l)
	}
}

func TestStepCannotBreakItsWorkerStreams(t *testing.T) {
	r := runner(t)
	code := "import sys, io\ndef run():\n    sys.stdout = io.StringIO()\n    print('swallowed')\n    return 1\n"
	mustRun(t, r, step("swap", code, nil))
	h := steptest.NewHost()
	if _, err := r.Run(context.Background(), step("after", "def run():\n    print('visible')\n    return 1\n", nil), h); err != nil {
		t.Fatal(err)
	}
	if l := h.Lines(); len(l) != 1 || l[0] != "stdout: visible" {
		t.Fatalf("log after a step replaced sys.stdout: %q", l)
	}
}

func TestSystemExitFailsOnlyTheStep(t *testing.T) {
	r := runner(t)
	_, err := run(t, r, step("exit", "import sys\ndef run():\n    sys.exit(3)\n", nil))
	if got := steptest.StepError(t, err).Message; got != "SystemExit: 3" {
		t.Fatalf("got %q", got)
	}
	mustRun(t, r, step("next", "def run():\n    return 1\n", nil))
}

func TestHostEnvironmentDoesNotReachSteps(t *testing.T) {
	t.Setenv("HWE_TEST_HOST_SECRET", "leaked")
	r := New(Options{}) // workers started after the variable was set
	defer r.Close()
	dir := t.TempDir()
	req := step("env", "import os\ndef run():\n    return {'env': dict(os.environ), 'cwd': os.getcwd()}\n", nil)
	req.Env = map[string]string{"GRANTED": "yes"}
	req.TempDir = dir
	var got struct {
		Env map[string]string `json:"env"`
		Cwd string            `json:"cwd"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, r, req)), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Env["HWE_TEST_HOST_SECRET"]; ok {
		t.Fatalf("host variable reached the step: %v", got.Env)
	}
	want := map[string]string{"GRANTED": "yes", "HOME": dir, "LANG": "C.UTF-8", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Env[k], v)
		}
	}
	if len(got.Env) != len(want) {
		t.Errorf("step environment has extra variables: %v", got.Env)
	}
	if got.Cwd != dir {
		t.Errorf("cwd %s, want %s", got.Cwd, dir)
	}
	// The next step on the same worker does not see the previous one's env.
	req2 := step("env2", "import os\ndef run():\n    return os.environ.get('GRANTED')\n", nil)
	if out := mustRun(t, r, req2); out != "null" {
		t.Fatalf("previous step's env leaked: %s", out)
	}
}

func TestPrivateFolderWhenNoTempDir(t *testing.T) {
	r := New(Options{
		WorkerOptions: proc.WorkerOptions{
			ScratchDir: t.TempDir(),
		},
	})
	code := "import os\ndef run():\n    before = os.listdir('.')\n    open('f.txt', 'w').write('x')\n    return {'cwd': os.getcwd(), 'home': os.environ['HOME'], 'before': before}\n"
	var first, second struct {
		Cwd, Home string
		Before    []string
	}
	_ = json.Unmarshal([]byte(mustRun(t, r, step("a", code, nil))), &first)
	_ = json.Unmarshal([]byte(mustRun(t, r, step("b", code, nil))), &second)
	if first.Cwd != first.Home || !strings.HasPrefix(filepath.Base(filepath.Dir(first.Cwd)), "hwe-steps-") {
		t.Fatalf("step ran in %s with HOME %s", first.Cwd, first.Home)
	}
	if st, err := os.Stat(first.Cwd); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("step folder %s: %v %v", first.Cwd, st, err)
	}
	if len(first.Before) != 0 || len(second.Before) != 0 {
		t.Fatalf("a step found files it did not make: %v then %v", first.Before, second.Before)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(first.Cwd)); !os.IsNotExist(err) {
		t.Fatalf("scratch folder %s left behind after Close", filepath.Dir(first.Cwd))
	}
}

func TestKilledWorkerFailsOnlyItsStep(t *testing.T) {
	r := runner(t)
	h := steptest.NewHost()
	errc := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), step("victim", "import os, time\ndef run():\n    print('pid', os.getpid())\n    time.sleep(60)\n", nil), h)
		errc <- err
	}()
	pid := h.WaitPID(t, "pid")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("step did not fail after its worker was killed")
	}
	var exited *api.RunnerExitedError
	if !errors.As(err, &exited) || err.Error() != "runner python exited: signal: killed" {
		t.Fatalf("got %T %v", err, err)
	}
	// A fresh worker takes the next step.
	out := mustRun(t, r, step("after", "import os\ndef run():\n    return os.getpid()\n", nil))
	if out == strconv.Itoa(pid) {
		t.Fatal("the killed worker ran the next step")
	}
}

func TestContextTimeoutKillsProcessGroup(t *testing.T) {
	r := runner(t)
	h := steptest.NewHost()
	code := "import subprocess, time\ndef run():\n    p = subprocess.Popen(['sleep', '300'])\n    print('child', p.pid, flush=True)\n    time.sleep(300)\n"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, step("slow", code, nil), h)
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if elapsed > 8*time.Second {
		t.Fatalf("Run returned %v after the deadline", elapsed)
	}
	child := h.WaitPID(t, "child")
	steptest.WaitGone(t, child)
}

func TestIsolationProcessUsesFreshWorker(t *testing.T) {
	r := New(Options{})
	defer r.Close()
	mark := "import sys\ndef run():\n    seen = getattr(sys, 'hwe_mark', False)\n    sys.hwe_mark = True\n    import os\n    return [seen, os.getpid()]\n"
	var pids []string
	for i := 0; i < 3; i++ {
		req := step("iso", mark, nil)
		req.Isolation = "process"
		out := mustRun(t, r, req)
		if !strings.HasPrefix(out, "[false,") {
			t.Fatalf("isolated step %d ran on a used worker: %s", i, out)
		}
		pids = append(pids, out)
	}
	if pids[0] == pids[1] || pids[1] == pids[2] {
		t.Fatalf("isolated steps shared a worker: %v", pids)
	}
	// Warm steps, by contrast, reuse a worker.
	first := mustRun(t, r, step("warm", mark, nil))
	second := mustRun(t, r, step("warm", mark, nil))
	if !strings.HasPrefix(first, "[false,") || !strings.HasPrefix(second, "[true,") {
		t.Fatalf("warm steps did not share a worker: %s then %s", first, second)
	}
}

func TestTenantsNeverShareWorkers(t *testing.T) {
	r := New(Options{
		WorkerOptions: proc.WorkerOptions{
			PoolSize: 1,
			Spares:   -1,
		},
	})
	defer r.Close()
	code := "import sys, os\ndef run():\n    seen = getattr(sys, 'hwe_tenant', None)\n    sys.hwe_tenant = %q\n    return [seen, os.getpid()]\n"
	a := step("s", fmt.Sprintf(code, "a"), nil)
	a.Tenant = "a"
	b := step("s", fmt.Sprintf(code, "b"), nil)
	b.Tenant = "b"
	outA := mustRun(t, r, a)
	outB := mustRun(t, r, b)
	outA2 := mustRun(t, r, a)
	if !strings.HasPrefix(outB, "[null,") {
		t.Fatalf("tenant b saw tenant a's worker: %s", outB)
	}
	if !strings.HasPrefix(outA2, `["a",`) {
		t.Fatalf("tenant a's worker was not reused: %s then %s", outA, outA2)
	}
}

func TestConcurrentSteps(t *testing.T) {
	r := runner(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := steptest.NewHost()
			req := step(fmt.Sprintf("c%d", i), fmt.Sprintf("def run():\n    print('step %d')\n    return %d\n", i, i), nil)
			out, err := r.Run(context.Background(), req, h)
			if err != nil {
				errs <- err
				return
			}
			if string(out) != strconv.Itoa(i) {
				errs <- fmt.Errorf("step %d returned %s", i, out)
			}
			if l := h.Lines(); len(l) != 1 || l[0] != fmt.Sprintf("stdout: step %d", i) {
				errs <- fmt.Errorf("step %d logged %q", i, l)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestInterpreterShimIsResolvedToTheRealBinary(t *testing.T) {
	shim, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("needs python3 on PATH: %v", err)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "python3")
	// A slow shim, like pyenv's: it must run once, not per step.
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\necho x >> "+filepath.Join(dir, "calls")+"\nexec "+shim+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := New(Options{Interpreter: wrapper})
	defer r.Close()
	for i := 0; i < 3; i++ {
		req := step("s", "def run():\n    return 1\n", nil)
		req.Isolation = "process"
		mustRun(t, r, req)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if n := strings.Count(string(calls), "x"); n != 1 {
		t.Fatalf("the shim ran %d times, want once", n)
	}
	real, _ := r.Interpreter()
	if real == wrapper {
		t.Fatalf("interpreter not resolved: %s", real)
	}
}

func TestInfo(t *testing.T) {
	info := runner(t).Info()
	if info.Name != "python" || len(info.Languages) != 1 || info.Languages[0] != api.LangPython || !strings.Contains(info.Version, "Python 3.") {
		t.Fatalf("%+v", info)
	}
}

// The sandbox hooks: every worker starts through Spawn (told its tenant,
// grant and private folder) and is released after it ends; WorkerKey keeps
// steps with different keys on different workers; Inside maps folders.
func TestSpawnHooks(t *testing.T) {
	var mu sync.Mutex
	var started []proc.SpawnInfo
	released := 0
	mapped := t.TempDir()
	r := New(Options{
		WorkerOptions: proc.WorkerOptions{
			Spares: -1,
			Spawn: func(cmd *exec.Cmd, info proc.SpawnInfo) (func(), error) {
				mu.Lock()
				started = append(started, info)
				mu.Unlock()
				if cmd.Dir != info.Workdir || cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setpgid {
					return nil, fmt.Errorf("command not prepared: dir %q, attrs %+v", cmd.Dir, cmd.SysProcAttr)
				}
				return func() {
					mu.Lock()
					released++
					mu.Unlock()
				}, cmd.Start()
			},
			WorkerKey: func(req *api.StepRequest) string { return req.TempDir },
			Inside: func(info proc.SpawnInfo, host string) string {
				if host == info.TempDir {
					return mapped
				}
				return host
			},
		},
	})
	code := "import os\ndef run():\n    return [os.getcwd(), os.environ['HOME'], os.getpid()]\n"
	runIn := func(tenant, dir string) []any {
		req := step("s", code, nil)
		req.Tenant, req.TempDir = tenant, dir
		req.Grant = api.Grant{Memory: 1 << 30}
		var out []any
		_ = json.Unmarshal([]byte(mustRun(t, r, req)), &out)
		return out
	}
	runA, runB := t.TempDir(), t.TempDir()
	a1, a2, b1 := runIn("t1", runA), runIn("t1", runA), runIn("t1", runB)
	if a1[0] != mapped || a1[1] != mapped {
		t.Fatalf("Inside was not applied: %v", a1)
	}
	if a1[2] != a2[2] || a1[2] == b1[2] {
		t.Fatalf("workers by key: %v %v %v", a1, a2, b1)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(started) != 2 || released != 2 {
		t.Fatalf("started %d workers, released %d; want 2 and 2", len(started), released)
	}
	for _, info := range started {
		if info.Runner != "python" || info.Tenant != "t1" || info.Purpose != proc.PurposeWorker || info.Grant.Memory != 1<<30 || info.Workdir == "" {
			t.Fatalf("spawn info %+v", info)
		}
	}
	if started[0].TempDir != runA || started[1].TempDir != runB {
		t.Fatalf("TempDirs %s, %s", started[0].TempDir, started[1].TempDir)
	}
}
