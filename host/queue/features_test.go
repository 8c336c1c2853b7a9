package queue

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/workflow"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestHostCallsGoToTheCoordinator: KV and secrets calls made on a worker are
// served by the Host the engine built for the step on the coordinator, a
// denial comes back as the same error, and every log line reaches the run's
// events before the step's finish.
func TestHostCallsGoToTheCoordinator(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 2})

	host := &memHost{kv: map[string][]byte{}, secrets: map[string]string{"TOKEN": "s3cret"}}
	var lines []string
	for i := range 200 {
		lines = append(lines, "line "+string(rune('a'+i%26)))
	}
	wf := testWorkflow("host", []stepSpec{
		{name: "kv", cmd: command{KV: true, Secret: "TOKEN", Log: lines}},
		{name: "denied", cmd: command{Secret: "OTHER"}},
	})
	wf.FailFast = false
	res, events := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex,
		NewHost: func(req *api.StepRequest, emit engine.HostEvents) api.Host { return host }})

	steps := byName(res)
	kv := stepOutput(t, steps["kv"])
	if kv["kv"] != "v-kv" || kv["found"] != true || kv["secret"] != "s3cret" {
		t.Errorf("kv step output %v", kv)
	}
	if string(host.kv["k-kv"]) != "v-kv" {
		t.Errorf("the coordinator's KV holds %q", host.kv["k-kv"])
	}
	den := steps["denied"]
	if den.Status != engine.StatusFailed || den.Error != "capability secrets denied: secret OTHER not granted" {
		t.Errorf("denied step: %s %q", den.Status, den.Error)
	}
	// memHost records the lines; they must all be there, in order, before
	// the engine saw the step finish (the worker syncs before its result).
	host.mu.Lock()
	got := slices.Clone(host.logs)
	host.mu.Unlock()
	var want []string
	for _, l := range lines {
		want = append(want, "stdout: "+l)
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines: got %d, want %d in order", len(got), len(want))
	}
	_ = events
}

// TestLogLinesPrecedeFinish checks the order in the engine's event stream.
func TestLogLinesPrecedeFinish(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 2})
	wf := testWorkflow("logs", []stepSpec{{name: "a", cmd: command{Log: []string{"one", "two", "three"}}}})
	res, events := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex})
	requireSucceeded(t, res)
	var seq []string
	for _, e := range events {
		switch e.Type {
		case engine.EventStepLog:
			seq = append(seq, e.Line)
		case engine.EventStepFinished:
			seq = append(seq, "finished")
		}
	}
	if strings.Join(seq, ",") != "one,two,three,finished" {
		t.Errorf("events: %v", seq)
	}
}

// TestErrorsAndRetries: a step error keeps its type and message, and an
// engine retry is a new attempt sent as a new message.
func TestErrorsAndRetries(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 2})

	wf := testWorkflow("errors", []stepSpec{
		{name: "flaky", cmd: command{FailTill: 2}},
		{name: "broken", cmd: command{Fail: "boom"}},
	})
	wf.Step("flaky").Retries = workflow.RetryPolicy{Max: 3, Backoff: time.Millisecond, Factor: 1}
	wf.FailFast = false
	res, _ := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex})
	broken, flaky := byName(res)["broken"], byName(res)["flaky"]
	if broken.Status != engine.StatusFailed || broken.Error != "errors.lua:7: failed: boom" {
		t.Errorf("broken: %s %q", broken.Status, broken.Error)
	}
	if flaky.Status != engine.StatusSucceeded || flaky.Attempts != 3 || stepOutput(t, flaky)["attempt"] != 3.0 {
		t.Errorf("flaky: %s after %d attempts, output %s", flaky.Status, flaky.Attempts, flaky.Output)
	}
	if st := ex.Stats(); st.Published != 4 {
		t.Errorf("published %d executions, want 4 (3 attempts + 1)", st.Published)
	}
}

// TestLargePayloads: code, inputs and outputs above the inline limit and a
// WASM module travel through the object store.
func TestLargePayloads(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL(), InlineLimit: 4 << 10})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 2})

	module := make([]byte, 300<<10)
	rand.Read(module)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	wf := testWorkflow("large", []stepSpec{
		{name: "big", cmd: command{BigOut: 100 << 10, Log: []string{strings.Repeat("y", 8<<10)}}},
		{name: "after", deps: []string{"big"}, cmd: command{BigOut: 10, Log: []string{strings.Repeat("z", 20<<10)}}},
		{name: "wasm", cmd: command{ReadFile: true}},
	})
	wf.Dir = dir
	ws := wf.Step("wasm")
	ws.Language, ws.Module = api.LangWasm, "m.wasm"
	wf.Step("after").Code = `{"big_out": 10, "log": ["` + strings.Repeat("q", 10<<10) + `"]}`

	host := &memHost{kv: map[string][]byte{}}
	res, _ := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex,
		NewHost: func(req *api.StepRequest, emit engine.HostEvents) api.Host { return host }})
	requireSucceeded(t, res)
	steps := byName(res)
	if out := stepOutput(t, steps["big"]); len(out["big"].(string)) != 100<<10 {
		t.Errorf("big output has %d bytes", len(out["big"].(string)))
	}
	if out := stepOutput(t, steps["after"]); !slices.Equal(out["inputs"].([]any), []any{"big"}) {
		t.Errorf("after's inputs: %v", out["inputs"])
	}
	out := stepOutput(t, steps["wasm"])
	if out["module_size"] != float64(len(module)) || out["module_ref"] != blobRef(module) {
		t.Errorf("module on the worker: %v, want %d bytes %s", out, len(module), blobRef(module))
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if len(host.logs) != 2 || len(host.logs[0]) != len("stdout: ")+8<<10 {
		t.Errorf("large log lines: %d", len(host.logs))
	}
}

// TestRoutingByLabels: a step asking for labels runs only on a worker that
// has them; one asking for labels no worker has waits (and says so).
func TestRoutingByLabels(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "plain", Slots: 4})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "gpu", Slots: 4, Labels: map[string]string{"gpu": "true", "zone": "a"}})

	var specs []stepSpec
	for i := range 12 {
		s := stepSpec{name: "any" + string(rune('a'+i)), cmd: command{SleepMS: 20}}
		if i%2 == 0 {
			s.name = "gpu" + string(rune('a'+i))
			s.env = map[string]string{EnvLabels: "gpu=true"}
		}
		specs = append(specs, s)
	}
	res, _ := runWorkflow(t, context.Background(), testWorkflow("labels", specs), engine.Options{Executor: ex, Concurrency: 12})
	requireSucceeded(t, res)
	for _, s := range res.Steps {
		w := stepOutput(t, s)["worker"]
		if strings.HasPrefix(s.Name, "gpu") && w != "gpu" {
			t.Errorf("step %s needs gpu=true but ran on %v", s.Name, w)
		}
	}

	// Nobody has region=eu: the step waits until its timeout.
	wf := testWorkflow("nowhere", []stepSpec{{name: "eu", env: map[string]string{EnvLabels: "region=eu"}}})
	wf.Step("eu").Timeout = 500 * time.Millisecond
	res, events := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex})
	if res.Status != engine.StatusFailed || !strings.Contains(res.Steps[0].Error, "timed out") {
		t.Errorf("step without a worker: %s %q", res.Status, res.Steps[0].Error)
	}
	found := false
	for _, e := range events {
		found = found || e.Type == engine.EventStepLog && strings.Contains(e.Line, "no worker has taken test steps with labels region=eu")
	}
	if !found {
		t.Error("no log line said that no worker serves region=eu")
	}
}

// TestCancelStopsStepsOnWorkers: fail-fast cancels a step running on a
// worker (the worker stops it) and one still queued (deleted from the queue).
func TestCancelStopsStepsOnWorkers(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	execLog := filepath.Join(t.TempDir(), "exec.log")
	t.Setenv(envExecLog, execLog)
	// w1 takes only test steps, one at a time: a-long runs, c-queued waits
	// in the queue. w2 takes only wasm steps: b-fails, which ends the run.
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 1, Languages: []string{langTest}})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w2", Slots: 1, Languages: []string{api.LangWasm}})
	wf := testWorkflow("cancel", []stepSpec{
		{name: "a-long", cmd: command{SleepMS: 20_000}},
		{name: "b-fails", cmd: command{SleepMS: 300, Fail: "stop"}},
		{name: "c-queued", cmd: command{SleepMS: 20_000}},
	})
	wf.Step("b-fails").Language = api.LangWasm
	start := time.Now()
	res, _ := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex, Concurrency: 3})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("fail-fast took %s: running steps were not stopped", took)
	}
	if res.Status != engine.StatusFailed {
		t.Fatalf("run %s", res.Status)
	}
	time.Sleep(300 * time.Millisecond) // let the worker record the cancellation
	c := readExecLog(t, execLog)
	if c.ended["a-long"]+c.ended["c-queued"] != 0 {
		t.Errorf("cancelled steps ran to the end: %v", c.ended)
	}
	if st := ex.Stats(); st.Cancelled != 2 {
		t.Errorf("cancelled %d executions, want 2", st.Cancelled)
	}
	// Nothing is left in the task queue.
	js, _ := jetstream.New(mustConnect(t, emb.ClientURL()))
	s, err := js.Stream(context.Background(), ex.n.taskStream())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, _ := s.Info(context.Background())
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks left in the queue", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustConnect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestScratchFolderPerRun: steps of a run on one worker share a scratch
// folder there.
func TestScratchFolderPerRun(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	work := t.TempDir()
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 2, WorkDir: work})
	wf := testWorkflow("scratch", []stepSpec{{name: "a", cmd: command{Scratch: true}}, {name: "b", cmd: command{Scratch: true}}})
	res, _ := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex, RunID: "run-1"})
	requireSucceeded(t, res)
	for _, f := range []string{"a.txt", "b.txt"} {
		if _, err := os.Stat(filepath.Join(work, "runs", "run-1", f)); err != nil {
			t.Error(err)
		}
	}
}

// TestIdempotentCompletion: an attempt that already succeeded is not run
// again, and a result delivered twice is applied once.
func TestIdempotentCompletion(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	execLog := filepath.Join(t.TempDir(), "exec.log")
	t.Setenv(envExecLog, execLog)
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 2})

	req := &api.StepRequest{RunID: "r1", Workflow: "w", Step: "once", Attempt: 1, Language: langTest, Code: `{}`}
	first, err := ex.Execute(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ex.Execute(context.Background(), req, nil)
	if err != nil || string(again) != string(first) {
		t.Fatalf("second Execute: %s, %v", again, err)
	}
	// A duplicate of the result (a worker that ran it twice) is ignored.
	rec, _, err := ex.getRecord(context.Background(), stateKey("r1", "once", 1))
	if err != nil || rec == nil || rec.State != stateSucceeded {
		t.Fatalf("record %+v, %v", rec, err)
	}
	res := resultMsg{V: protocolVersion, Key: stateKey("r1", "once", 1), Gen: rec.Gen, Worker: "ghost", Output: json.RawMessage(`{"ghost":true}`)}
	data, _ := json.Marshal(res)
	js, _ := jetstream.New(mustConnect(t, emb.ClientURL()))
	if _, err := js.Publish(context.Background(), ex.n.resultSubject("r1"), data); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ex.Stats().Duplicates == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	third, _ := ex.Execute(context.Background(), req, nil)
	if string(third) != string(first) {
		t.Errorf("after the duplicate: %s, want %s", third, first)
	}
	// The second call found the attempt done (or just being recorded).
	st := ex.Stats()
	if st.Published != 1 || st.Reused+st.Attached != 2 || st.Applied != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v", st)
	}
	if c := readExecLog(t, execLog); c.ended["once"] != 1 {
		t.Errorf("ran %d times", c.ended["once"])
	}
}

// TestStoppingWorkerHandsStepsBack: a worker told to stop lets running steps
// finish for its grace period, then hands them back to the queue, and another
// worker takes them at once (not after the lease).
func TestStoppingWorkerHandsStepsBack(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL(), Lease: time.Minute})
	execLog := filepath.Join(t.TempDir(), "exec.log")
	t.Setenv(envExecLog, execLog)
	stop := startStoppableWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "leaving", Slots: 1, Grace: 200 * time.Millisecond})

	wf := testWorkflow("handback", []stepSpec{{name: "long", cmd: command{SleepMS: 1500}}})
	done := make(chan *engine.RunResult, 1)
	go func() {
		res, _ := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex})
		done <- res
	}()
	waitForStarts(t, execLog, "leaving", 1)
	start := time.Now()
	stop()
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "staying", Slots: 1})
	res := <-done
	requireSucceeded(t, res)
	if w := stepOutput(t, res.Steps[0])["worker"]; w != "staying" {
		t.Errorf("finished on %v", w)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("hand-back took %s (the lease is a minute)", took)
	}
}
