package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/workflow"
)

// fakeExecutor runs steps whose behaviour is chosen by their code:
// "ok" returns the inputs, "fail" fails, "sleep:D" sleeps (honouring ctx),
// "flaky:N" fails the first N attempts.
type fakeExecutor struct {
	mu       sync.Mutex
	order    []string
	running  int32
	maxSeen  int32
	attempts map[string]int
	started  map[string]time.Time
	ended    map[string]time.Time
}

func newFake() *fakeExecutor {
	return &fakeExecutor{attempts: map[string]int{}, started: map[string]time.Time{}, ended: map[string]time.Time{}}
}

func (f *fakeExecutor) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	n := atomic.AddInt32(&f.running, 1)
	defer atomic.AddInt32(&f.running, -1)
	for {
		m := atomic.LoadInt32(&f.maxSeen)
		if n <= m || atomic.CompareAndSwapInt32(&f.maxSeen, m, n) {
			break
		}
	}
	f.mu.Lock()
	f.order = append(f.order, req.Step)
	f.attempts[req.Step]++
	attempt := f.attempts[req.Step]
	f.started[req.Step] = time.Now()
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.ended[req.Step] = time.Now(); f.mu.Unlock() }()

	host.Log("stdout", "running "+req.Step)
	code := req.Code
	switch {
	case code == "fail":
		return nil, &api.StepError{Message: "boom"}
	case strings.HasPrefix(code, "sleep:"):
		d, _ := time.ParseDuration(strings.TrimPrefix(code, "sleep:"))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case strings.HasPrefix(code, "flaky:"):
		var n int
		fmt.Sscanf(code, "flaky:%d", &n)
		if attempt <= n {
			return nil, errors.New("transient")
		}
	}
	return api.MarshalCanonical(map[string]any{"step": req.Step, "inputs": req.Inputs, "root": !req.HasInputs()})
}

func wf(t *testing.T, src string) *workflow.Workflow {
	t.Helper()
	w, err := workflow.LoadSource("test.lua", []byte(src), workflow.LoadOptions{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return w
}

func byName(res *engine.RunResult) map[string]engine.StepResult {
	m := map[string]engine.StepResult{}
	for _, s := range res.Steps {
		m[s.Name] = s
	}
	return m
}

func TestDependencyOrderAndInputs(t *testing.T) {
	w := wf(t, `workflow = { name = "w", steps = {
		c = { depends_on = {"a", "b"}, code = "ok" },
		a = { code = "ok" },
		b = { depends_on = {"a"}, code = "ok" },
	} }`)
	f := newFake()
	res := engine.Run(context.Background(), w, engine.Options{Executor: f, Concurrency: 1})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	if got := strings.Join(f.order, ","); got != "a,b,c" {
		t.Fatalf("order = %s, want a,b,c", got)
	}
	var out struct {
		Inputs map[string]json.RawMessage
		Root   bool
	}
	json.Unmarshal(byName(res)["c"].Output, &out)
	if len(out.Inputs) != 2 || out.Inputs["a"] == nil || out.Inputs["b"] == nil || out.Root {
		t.Fatalf("c got inputs %v root=%v, want direct deps a and b", out.Inputs, out.Root)
	}
	json.Unmarshal(byName(res)["a"].Output, &out)
	if !out.Root {
		t.Fatal("root step a should be called without inputs")
	}
}

func TestConcurrencyLimitNeverExceeded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`workflow = { steps = {`)
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, `s%d = { code = "sleep:20ms" },`, i)
	}
	b.WriteString(`} }`)
	f := newFake()
	res := engine.Run(context.Background(), wf(t, b.String()), engine.Options{Executor: f, Concurrency: 3})
	if res.Status != engine.StatusSucceeded {
		t.Fatal(res.Error)
	}
	if f.maxSeen > 3 {
		t.Fatalf("saw %d steps at once, limit 3", f.maxSeen)
	}
	if f.maxSeen < 2 {
		t.Fatalf("fan-out never ran concurrently (max %d)", f.maxSeen)
	}
}

func TestReadyQueueNotLevelBarrier(t *testing.T) {
	// slow and fast are both roots; after_fast depends only on fast and must
	// start before slow finishes (a level-barrier engine would wait).
	w := wf(t, `workflow = { steps = {
		slow = { code = "sleep:300ms" },
		fast = { code = "ok" },
		after_fast = { depends_on = {"fast"}, code = "ok" },
	} }`)
	f := newFake()
	res := engine.Run(context.Background(), w, engine.Options{Executor: f, Concurrency: 4})
	if res.Status != engine.StatusSucceeded {
		t.Fatal(res.Error)
	}
	if !f.started["after_fast"].Before(f.ended["slow"]) {
		t.Fatal("after_fast waited for the unrelated slow step")
	}
}

func TestFailFastCancelsAndSkips(t *testing.T) {
	w := wf(t, `workflow = { steps = {
		bad = { code = "fail" },
		long = { code = "sleep:5s" },
		later = { depends_on = {"long"}, code = "ok" },
	} }`)
	start := time.Now()
	res := engine.Run(context.Background(), w, engine.Options{Executor: newFake(), Concurrency: 4})
	if time.Since(start) > 3*time.Second {
		t.Fatal("fail-fast did not cancel the running step")
	}
	s := byName(res)
	if res.Status != engine.StatusFailed || s["bad"].Status != engine.StatusFailed ||
		s["long"].Status != engine.StatusCancelled || s["later"].Status != engine.StatusSkipped {
		t.Fatalf("statuses: run=%s bad=%s long=%s later=%s", res.Status, s["bad"].Status, s["long"].Status, s["later"].Status)
	}
	if !strings.Contains(res.Error, "bad") || !strings.Contains(s["bad"].Error, "boom") {
		t.Fatalf("errors: run=%q bad=%q", res.Error, s["bad"].Error)
	}
}

func TestKeepGoingRunsIndependentBranches(t *testing.T) {
	w := wf(t, `workflow = { steps = {
		bad = { code = "fail" },
		child = { depends_on = {"bad"}, code = "ok" },
		other = { code = "sleep:50ms" },
		other2 = { depends_on = {"other"}, code = "ok" },
	} }`)
	res := engine.Run(context.Background(), w, engine.Options{Executor: newFake(), KeepGoing: true})
	s := byName(res)
	if res.Status != engine.StatusFailed || s["child"].Status != engine.StatusSkipped ||
		s["other"].Status != engine.StatusSucceeded || s["other2"].Status != engine.StatusSucceeded {
		t.Fatalf("got %+v", s)
	}
}

func TestFailFastFalseInWorkflow(t *testing.T) {
	w := wf(t, `workflow = { fail_fast = false, steps = {
		bad = { code = "fail" }, other = { code = "sleep:30ms" } } }`)
	s := byName(engine.Run(context.Background(), w, engine.Options{Executor: newFake()}))
	if s["other"].Status != engine.StatusSucceeded {
		t.Fatalf("fail_fast=false should let other finish, got %s", s["other"].Status)
	}
}

func TestTimeout(t *testing.T) {
	w := wf(t, `workflow = { steps = { slow = { code = "sleep:10s", timeout = "100ms" } } }`)
	start := time.Now()
	res := engine.Run(context.Background(), w, engine.Options{Executor: newFake()})
	if time.Since(start) > 2*time.Second {
		t.Fatal("timeout not enforced")
	}
	s := byName(res)["slow"]
	if s.Status != engine.StatusFailed || !strings.Contains(s.Error, "timed out after 100ms") {
		t.Fatalf("got %s %q", s.Status, s.Error)
	}
}

func TestDefaultTimeout(t *testing.T) {
	w := wf(t, `workflow = { steps = { slow = { code = "sleep:10s" } } }`)
	res := engine.Run(context.Background(), w, engine.Options{Executor: newFake(), DefaultTimeout: 50 * time.Millisecond})
	if s := byName(res)["slow"]; s.Status != engine.StatusFailed {
		t.Fatalf("got %s", s.Status)
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	w := wf(t, `workflow = { steps = {
		flaky = { code = "flaky:2", retries = { max = 3, backoff = "10ms", factor = 2 } },
		never = { code = "fail", retries = { max = 1, backoff = "1ms" } },
	} }`)
	var retries []engine.Event
	var mu sync.Mutex
	res := engine.Run(context.Background(), w, engine.Options{Executor: newFake(), KeepGoing: true, OnEvent: func(e engine.Event) {
		if e.Type == engine.EventStepRetry {
			mu.Lock()
			retries = append(retries, e)
			mu.Unlock()
		}
	}})
	s := byName(res)
	if s["flaky"].Status != engine.StatusSucceeded || s["flaky"].Attempts != 3 {
		t.Fatalf("flaky: %s after %d attempts", s["flaky"].Status, s["flaky"].Attempts)
	}
	if s["never"].Status != engine.StatusFailed || s["never"].Attempts != 2 {
		t.Fatalf("never: %s after %d attempts", s["never"].Status, s["never"].Attempts)
	}
	var flakyBackoffs []int64
	for _, e := range retries {
		if e.Step == "flaky" {
			flakyBackoffs = append(flakyBackoffs, e.DurationMS)
		}
	}
	if fmt.Sprint(flakyBackoffs) != "[10 20]" {
		t.Fatalf("backoffs %v, want [10 20]", flakyBackoffs)
	}
}

func TestCancellationStopsEverything(t *testing.T) {
	w := wf(t, `workflow = { steps = {
		a = { code = "sleep:10s" }, b = { code = "sleep:10s" }, c = { depends_on = {"a"}, code = "ok" } } }`)
	ctx, cancel := context.WithCancel(context.Background())
	f := newFake()
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	start := time.Now()
	res := engine.Run(ctx, w, engine.Options{Executor: f})
	if time.Since(start) > 3*time.Second {
		t.Fatal("cancel did not stop the run")
	}
	if atomic.LoadInt32(&f.running) != 0 {
		t.Fatal("steps still running after Run returned")
	}
	s := byName(res)
	if res.Status != engine.StatusCancelled || s["a"].Status != engine.StatusCancelled || s["c"].Status != engine.StatusCancelled {
		t.Fatalf("run=%s a=%s c=%s", res.Status, s["a"].Status, s["c"].Status)
	}
}

func TestEventsInOrder(t *testing.T) {
	w := wf(t, `workflow = { steps = { a = { code = "ok" }, b = { depends_on = {"a"}, code = "ok" } } }`)
	var types []string
	engine.Run(context.Background(), w, engine.Options{Executor: newFake(), OnEvent: func(e engine.Event) {
		types = append(types, string(e.Type)+":"+e.Step)
	}})
	want := "run_started:,step_started:a,log:a,output:a,step_finished:a,step_started:b,log:b,output:b,step_finished:b,run_finished:"
	if got := strings.Join(types, ","); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func TestPreviousOutputsAreReused(t *testing.T) {
	w := wf(t, `workflow = { steps = { a = { code = "fail" }, b = { depends_on = {"a"}, code = "ok" } } }`)
	f := newFake()
	res := engine.Run(context.Background(), w, engine.Options{Executor: f,
		Previous: map[string]json.RawMessage{"a": json.RawMessage(`{"x":1}`)}})
	if res.Status != engine.StatusSucceeded || strings.Join(f.order, ",") != "b" {
		t.Fatalf("status %s, ran %v", res.Status, f.order)
	}
	if !strings.Contains(string(byName(res)["b"].Output), `"a":{"x":1}`) {
		t.Fatalf("b did not get the stored output: %s", byName(res)["b"].Output)
	}
}

func TestRunnerPanicFailsOnlyTheStep(t *testing.T) {
	w := wf(t, `workflow = { fail_fast = false, steps = { a = { code = "panic" }, b = { code = "ok" } } }`)
	ex := executorFunc(func(ctx context.Context, req *api.StepRequest, h api.Host) (json.RawMessage, error) {
		if req.Code == "panic" {
			panic("runner bug")
		}
		return json.RawMessage(`1`), nil
	})
	s := byName(engine.Run(context.Background(), w, engine.Options{Executor: ex}))
	if s["a"].Status != engine.StatusFailed || !strings.Contains(s["a"].Error, "panicked") || s["b"].Status != engine.StatusSucceeded {
		t.Fatalf("got %+v", s)
	}
}

func TestOutputIsCanonicalAndBounded(t *testing.T) {
	w := wf(t, `workflow = { fail_fast = false, steps = { a = { code = "x" }, big = { code = "big", allow = { output = "10" } } } }`)
	ex := executorFunc(func(ctx context.Context, req *api.StepRequest, h api.Host) (json.RawMessage, error) {
		if req.Code == "big" {
			return json.RawMessage(`"0123456789abcdef"`), nil
		}
		return json.RawMessage(`{ "z": 1.0, "a": "<&>", "n": 12345678901234567890 }`), nil
	})
	pol := api.Grant{MaxOutput: 1 << 20}
	s := byName(engine.Run(context.Background(), w, engine.Options{Executor: ex, Policy: &pol}))
	if got := string(s["a"].Output); got != `{"a":"<&>","n":12345678901234567890,"z":1.0}` {
		t.Fatalf("output %s", got)
	}
	if s["big"].Status != engine.StatusFailed || !strings.Contains(s["big"].Error, "output limit") {
		t.Fatalf("big: %s %q", s["big"].Status, s["big"].Error)
	}
}

type executorFunc func(ctx context.Context, req *api.StepRequest, h api.Host) (json.RawMessage, error)

func (f executorFunc) Execute(ctx context.Context, req *api.StepRequest, h api.Host) (json.RawMessage, error) {
	return f(ctx, req, h)
}
