package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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

// runner returns one Runner shared by the tests; it fails the test when
// node is missing.
func runner(t testing.TB) *Runner {
	t.Helper()
	sharedOnce.Do(func() { sharedRunner = New(Options{}) })
	if _, err := sharedRunner.Interpreter(); err != nil {
		t.Fatalf("these tests need Node.js: install it (Debian: apt-get install nodejs): %v", err)
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
	return steptest.Step(api.LangJavaScript, name, code, inputs)
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

func TestRootAndDependentSteps(t *testing.T) {
	r := runner(t)
	got := mustRun(t, r, step("gen", "function run() {\n  return { message: 'hi', n: 42, args: arguments.length };\n}\n", nil))
	if got != `{"args":0,"message":"hi","n":42}` {
		t.Fatalf("root: %s", got)
	}
	req := step("sum", "function run(inputs) {\n  const v = inputs.data.values;\n  return { sum: v.reduce((a, b) => a + b, 0), count: v.length, args: arguments.length };\n}\n",
		map[string]string{"data": `{"values":[1,2,3,4,5]}`})
	if got := mustRun(t, r, req); got != `{"args":1,"count":5,"sum":15}` {
		t.Fatalf("dependent: %s", got)
	}
}

func TestResultWrappingAndOutputRules(t *testing.T) {
	r := runner(t)
	cases := []struct{ name, code, want string }{
		{"number", "function run() { return 5; }", `{"value":5}`},
		{"string", "function run() { return 'x'; }", `{"value":"x"}`},
		{"bool", "function run() { return false; }", `{"value":false}`},
		{"array", "function run() { return [1, 2]; }", `[1,2]`},
		{"nothing", "function run() {}", `{}`},
		{"null", "function run() { return null; }", `{}`},
		{"nothing-with-log", "function run() { console.log('hi'); }", `{"output":"hi\n{}","raw":true}`},
		{"empty-with-log", "function run() { console.log('hi'); return {}; }", `{"output":"hi\n{}","raw":true}`},
		{"log-then-object", "function run() { console.log('working...'); return {a: 1}; }", `{"a":1}`},
		{"outputResult-then-return", "function run() { outputResult({a: 1}); return {b: 2}; }", `{"b":2}`},
		{"outputResult-only", "function run() { outputResult({a: 1}); }", `{"output":"{\"a\":1}\n{}","raw":true}`},
		{"function-value", "function run() { return () => 1; }", `{}`},
		{"float", "function run() { return {f: 10.0, g: 2.5}; }", `{"f":10,"g":2.5}`},
		{"no-html-escape", "function run() { return {s: '<a & b>'}; }", `{"s":"<a & b>"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mustRun(t, r, step(c.name, c.code, nil)); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// The reference stringifies the pending Promise ({}); hwe awaits it.
func TestAsyncRunIsAwaited(t *testing.T) {
	r := runner(t)
	code := "async function run(inputs) {\n  await new Promise((resolve) => setTimeout(resolve, 20));\n  return { got: inputs.a.v * 2 };\n}\n"
	if got := mustRun(t, r, step("async", code, map[string]string{"a": `{"v":21}`})); got != `{"got":42}` {
		t.Fatalf("got %s", got)
	}
	_, err := run(t, r, step("reject", "async function run() { throw new Error('later'); }", nil))
	if got := steptest.StepError(t, err).Message; got != "Error in JavaScript step reject: later" {
		t.Fatalf("rejected promise: %q", got)
	}
}

func TestErrorsCarryTheReferenceMessageAndFileLine(t *testing.T) {
	r := runner(t)
	req := step("thrower", "function helper() {\n  throw new Error('Test error');\n}\nfunction run() {\n  return helper();\n}\n", nil)
	req.WorkflowFile, req.CodeLine = "/wf/js.lua", 30
	_, err := run(t, r, req)
	se := steptest.StepError(t, err)
	if se.Message != "Error in JavaScript step thrower: Test error" || se.File != "/wf/js.lua" || se.Line != 31 {
		t.Fatalf("got %q at %s:%d", se.Message, se.File, se.Line)
	}
	if !strings.Contains(se.Trace, "/wf/js.lua:31") {
		t.Fatalf("trace: %s", se.Trace)
	}

	_, err = run(t, r, step("norun", "const x = 1;", nil))
	if got := steptest.StepError(t, err).Message; got != "Error in JavaScript step norun: No run function defined in step norun" {
		t.Fatalf("missing run: %q", got)
	}

	_, err = run(t, r, step("str", "function run() { throw 'plain string'; }", nil))
	if got := steptest.StepError(t, err).Message; got != "Error in JavaScript step str: plain string" {
		t.Fatalf("thrown string: %q", got)
	}

	bad := step("syntax", "function run() {\n  return {a: 1;\n}\n", nil)
	bad.WorkflowFile, bad.CodeLine = "/wf/js.lua", 5
	_, err = run(t, r, bad)
	se = steptest.StepError(t, err)
	if !strings.HasPrefix(se.Message, "Error in JavaScript step syntax: SyntaxError: ") || se.Line != 6 {
		t.Fatalf("syntax error: %q at line %d", se.Message, se.Line)
	}
	if problems := r.CheckStep(context.Background(), bad); len(problems) != 1 || !strings.HasPrefix(problems[0], "/wf/js.lua:6: ") {
		t.Fatalf("CheckStep: %q", problems)
	}
	if problems := r.CheckStep(context.Background(), step("ok", "function run() { return 1; }", nil)); len(problems) != 0 {
		t.Fatalf("CheckStep on valid code: %q", problems)
	}
}

func TestReservedNamesAreDeclaredAsInTheReference(t *testing.T) {
	r := runner(t)
	for _, name := range []string{"process", "inputs"} {
		_, err := run(t, r, step("redeclare", "const "+name+" = 1;\nfunction run() { return 1; }\n", nil))
		if se := steptest.StepError(t, err); !strings.Contains(se.Message, "SyntaxError") {
			t.Fatalf("const %s: %q", name, se.Message)
		}
	}
	got := mustRun(t, r, step("scope", "function run() { return { p: typeof process.env, i: typeof inputs, o: typeof outputResult, r: typeof require }; }", nil))
	if got != `{"i":"object","o":"function","p":"object","r":"function"}` {
		t.Fatalf("got %s", got)
	}
}

// The reference pastes names and JSON into JavaScript source; hwe passes data.
func TestInputsCannotInject(t *testing.T) {
	r := runner(t)
	req := step("it's'); process.exit(1); ('", "function run(inputs) { return { v: inputs['my-step'].s, k: Object.keys(inputs) }; }",
		map[string]string{"my-step": `{"s":"it's '); process.exit(1); ('"}`})
	if got := mustRun(t, r, req); got != `{"k":["my-step"],"v":"it's '); process.exit(1); ('"}` {
		t.Fatalf("got %s", got)
	}
}

func TestRequireWorks(t *testing.T) {
	r := runner(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/helper.js", []byte("module.exports = (x) => x + 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := step("req", "const path = require('path');\nconst os = require('os');\nconst inc = require('./helper');\nfunction run() { return { j: path.join('a', 'b'), inc: inc(1), eol: os.EOL === '\\n' }; }\n", nil)
	req.TempDir = dir
	if got := mustRun(t, r, req); got != `{"eol":true,"inc":2,"j":"a/b"}` {
		t.Fatalf("got %s", got)
	}
}

func TestEachStepHasFreshGlobalsAndNoLeftoverTimers(t *testing.T) {
	r := New(Options{
		WorkerOptions: proc.WorkerOptions{
			PoolSize: 1,
			Spares:   -1,
		},
	})
	defer r.Close()
	first := "globalThis.leak = 1;\nsloppy = 2;\nconsole = { log() {} };\nsetTimeout(() => console.error('late timer'), 30);\nsetInterval(() => console.error('interval'), 10);\nfunction run() { return { pid: process.pid }; }\n"
	a := mustRun(t, r, step("a", first, nil))
	h := steptest.NewHost()
	second := "async function run() {\n  await new Promise((r) => setTimeout(r, 100));\n  console.log('still logs');\n  return { pid: process.pid, leak: typeof leak, sloppy: typeof sloppy };\n}\n"
	out, err := r.Run(context.Background(), step("b", second, nil), h)
	if err != nil {
		t.Fatal(err)
	}
	var ra, rb struct {
		PID    int    `json:"pid"`
		Leak   string `json:"leak"`
		Sloppy string `json:"sloppy"`
	}
	_ = json.Unmarshal([]byte(a), &ra)
	_ = json.Unmarshal(out, &rb)
	if ra.PID != rb.PID {
		t.Fatalf("steps ran on different workers (%d, %d): the test proves nothing", ra.PID, rb.PID)
	}
	if rb.Leak != "undefined" || rb.Sloppy != "undefined" {
		t.Fatalf("globals leaked: %s", out)
	}
	if got := h.Lines(); len(got) != 1 || got[0] != "stdout: still logs" {
		t.Fatalf("second step's log: %q", got)
	}
}

func TestUncaughtErrorInTimerFailsTheStep(t *testing.T) {
	r := runner(t)
	code := "function run() {\n  setTimeout(() => { throw new Error('in timer'); }, 5);\n  return new Promise(() => {});\n}\n"
	_, err := run(t, r, step("timer", code, nil))
	if got := steptest.StepError(t, err).Message; got != "Error in JavaScript step timer: in timer" {
		t.Fatalf("got %q", got)
	}
	mustRun(t, r, step("after", "function run() { return 1; }", nil))
}

func TestProcessExit(t *testing.T) {
	r := New(Options{
		WorkerOptions: proc.WorkerOptions{
			PoolSize: 1,
			Spares:   -1,
		},
	})
	defer r.Close()
	got := mustRun(t, r, step("exit0", "function run() { console.log('{\"early\":true}'); process.exit(0); }", nil))
	if got != `{"early":true}` {
		t.Fatalf("exit(0): %s", got)
	}
	_, err := run(t, r, step("exit2", "function run() { process.exit(2); }", nil))
	if got := steptest.StepError(t, err).Message; got != "JavaScript step 'exit2' failed: process.exit(2)" {
		t.Fatalf("exit(2): %q", got)
	}
	pid1 := mustRun(t, r, step("pid", "function run() { return process.pid; }", nil))
	pid2 := mustRun(t, r, step("pid", "function run() { return process.pid; }", nil))
	if pid1 != pid2 {
		t.Fatalf("process.exit ended the worker: %s then %s", pid1, pid2)
	}
}

func TestConsoleGoesToTheStepLog(t *testing.T) {
	r := runner(t)
	h := steptest.NewHost()
	code := "const { execSync } = require('child_process');\nconsole.log('top level');\nfunction run() {\n  console.log('a', 1, {b: 2});\n  console.error('problem');\n  process.stdout.write(execSync('echo child').toString());\n  return {ok: true};\n}\n"
	out, err := r.Run(context.Background(), step("logs", code, nil), h)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"ok":true}` {
		t.Fatalf("output %s", out)
	}
	for _, want := range []string{"stdout: top level", "stdout: a 1 { b: 2 }", "stderr: problem", "stdout: child"} {
		if !h.Has(want) {
			t.Errorf("log is missing %q: %q", want, h.Lines())
		}
	}
	for _, l := range h.Lines() {
		if strings.Contains(l, `{"ok":true}`) {
			t.Errorf("the result line was logged as step output: %q", l)
		}
	}
}

func TestHostEnvironmentDoesNotReachSteps(t *testing.T) {
	t.Setenv("HWE_TEST_HOST_SECRET", "leaked")
	r := New(Options{})
	defer r.Close()
	dir := t.TempDir()
	req := step("env", "function run() { return { env: process.env, cwd: process.cwd() }; }", nil)
	req.Env = map[string]string{"GRANTED": "yes"}
	req.TempDir = dir
	var got struct {
		Env map[string]string `json:"env"`
		Cwd string            `json:"cwd"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, r, req)), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GRANTED": "yes", "HOME": dir, "LANG": "C.UTF-8", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if len(got.Env) != len(want) {
		t.Errorf("step environment %v, want exactly %v", got.Env, want)
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Env[k], v)
		}
	}
	if got.Cwd != dir {
		t.Errorf("cwd %s, want %s", got.Cwd, dir)
	}
	if out := mustRun(t, r, step("env2", "function run() { return { g: process.env.GRANTED || null }; }", nil)); out != `{"g":null}` {
		t.Fatalf("previous step's env leaked: %s", out)
	}
}

func TestKilledWorkerFailsOnlyItsStep(t *testing.T) {
	r := runner(t)
	h := steptest.NewHost()
	errc := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), step("victim", "function run() { console.log('pid', process.pid); return new Promise(() => setInterval(() => {}, 1000)); }", nil), h)
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
	if !errors.As(err, &exited) || err.Error() != "runner node exited: signal: killed" {
		t.Fatalf("got %T %v", err, err)
	}
	if out := mustRun(t, r, step("after", "function run() { return process.pid; }", nil)); out == fmt.Sprintf(`{"value":%d}`, pid) {
		t.Fatal("the killed worker ran the next step")
	}
}

func TestContextTimeoutKillsProcessGroup(t *testing.T) {
	r := runner(t)
	h := steptest.NewHost()
	code := "const { spawn } = require('child_process');\nfunction run() {\n  const c = spawn('sleep', ['300'], { stdio: 'ignore' });\n  console.log('child', c.pid);\n  return new Promise(() => {});\n}\n"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, step("slow", code, nil), h)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if elapsed := time.Since(start); elapsed > 8*time.Second {
		t.Fatalf("Run returned %v after the deadline", elapsed)
	}
	steptest.WaitGone(t, h.WaitPID(t, "child"))
}

func TestIsolationProcessUsesFreshWorker(t *testing.T) {
	r := New(Options{})
	defer r.Close()
	mark := "function run() { const seen = process.hweMark === true; process.hweMark = true; return [seen, process.pid]; }"
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		req := step("iso", mark, nil)
		req.Isolation = "process"
		out := mustRun(t, r, req)
		if !strings.HasPrefix(out, "[false,") || seen[out] {
			t.Fatalf("isolated step %d ran on a used worker: %s", i, out)
		}
		seen[out] = true
	}
	first, second := mustRun(t, r, step("warm", mark, nil)), mustRun(t, r, step("warm", mark, nil))
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
	code := "function run() { const seen = process.hweTenant || null; process.hweTenant = %q; return [seen]; }"
	a := step("s", fmt.Sprintf(code, "a"), nil)
	a.Tenant = "a"
	b := step("s", fmt.Sprintf(code, "b"), nil)
	b.Tenant = "b"
	mustRun(t, r, a)
	if out := mustRun(t, r, b); out != "[null]" {
		t.Fatalf("tenant b saw tenant a's worker: %s", out)
	}
	if out := mustRun(t, r, a); out != `["a"]` {
		t.Fatalf("tenant a's worker was not reused: %s", out)
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
			out, err := r.Run(context.Background(), step(fmt.Sprintf("c%d", i), fmt.Sprintf("async function run() { console.log('step %d'); await null; return %d; }", i, i), nil), h)
			switch {
			case err != nil:
				errs <- err
			case string(out) != `{"value":`+strconv.Itoa(i)+`}`:
				errs <- fmt.Errorf("step %d returned %s", i, out)
			case len(h.Lines()) != 1 || h.Lines()[0] != fmt.Sprintf("stdout: step %d", i):
				errs <- fmt.Errorf("step %d logged %q", i, h.Lines())
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestParseOutputRules(t *testing.T) {
	cases := []struct{ stdout, want string }{
		{"", `{}`},
		{"  \n ", `{}`},
		{"{}\n", `{}`},
		{`{"b":1,"a":2}` + "\n", `{"a":2,"b":1}`},
		{"{\n  \"pretty\": true\n}\n", `{"pretty":true}`},
		{"text\n5\n", `5`},
		{"text\n[1,2]\nmore text\n", `[1,2]`},
		{"only text\n", `{"output":"only text","raw":true}`},
		{"hi\n{}\n", `{"output":"hi\n{}","raw":true}`},
		{"{\"a\":1}\n{\"b\":2}\n", `{"b":2}`},
	}
	for _, c := range cases {
		got, err := ParseOutput(c.stdout)
		if err != nil || string(got) != c.want {
			t.Errorf("ParseOutput(%q) = %s, %v; want %s", c.stdout, got, err, c.want)
		}
	}
}

func TestInfo(t *testing.T) {
	info := runner(t).Info()
	if info.Name != "node" || len(info.Languages) != 1 || info.Languages[0] != api.LangJavaScript || !strings.Contains(info.Version, "Node.js v") {
		t.Fatalf("%+v", info)
	}
}
