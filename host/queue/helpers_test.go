package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/workflow"
)

// Worker processes: the test binary re-executed with these variables set
// runs RunWorker with the test runner and exits on SIGTERM.
const (
	envWorkerURL   = "HWE_QUEUE_TEST_WORKER_URL"
	envWorkerName  = "HWE_QUEUE_TEST_WORKER_NAME"
	envWorkerSlots = "HWE_QUEUE_TEST_WORKER_SLOTS"
	envExecLog     = "HWE_QUEUE_TEST_EXEC_LOG"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envWorkerURL); url != "" {
		os.Exit(workerProcessMain(url))
	}
	os.Exit(m.Run())
}

func workerProcessMain(url string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	slots, _ := strconv.Atoi(os.Getenv(envWorkerSlots))
	name := os.Getenv(envWorkerName)
	err := RunWorker(ctx, WorkerConfig{URL: url, Name: name, Slots: slots, Runners: testRegistry(name),
		Ready: func() { fmt.Println("READY") }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// langTest is the language of the test runner's steps.
const langTest = "test"

// command is what a test step's code says to do (JSON).
type command struct {
	SleepMS  int      `json:"sleep_ms,omitempty"`
	Fail     string   `json:"fail,omitempty"`
	FailTill int      `json:"fail_till,omitempty"` // fail attempts up to this one
	Crash    bool     `json:"crash,omitempty"`     // exit the worker process
	Log      []string `json:"log,omitempty"`
	KV       bool     `json:"kv,omitempty"`     // put and get a KV key through the host
	Secret   string   `json:"secret,omitempty"` // read a secret through the host
	BigOut   int      `json:"big_out,omitempty"`
	ReadFile bool     `json:"read_module,omitempty"` // return the size and hash of req.Module
	Scratch  bool     `json:"scratch,omitempty"`     // write and read a file in the run's scratch folder
}

// testRunner executes test steps. Each execution appends a line to the
// execution log (if $HWE_QUEUE_TEST_EXEC_LOG is set), so tests can count how
// often each step really ran.
type testRunner struct{ worker string }

func testRegistry(worker string) *registry.Registry {
	reg := registry.New()
	reg.Register(&testRunner{worker: worker})
	return reg
}

func (r *testRunner) Info() api.RunnerInfo {
	return api.RunnerInfo{Name: "test", Languages: []string{langTest, api.LangWasm}, Version: "1", Kind: "builtin"}
}

func (r *testRunner) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	var c command
	if req.Code != "" {
		if err := json.Unmarshal([]byte(req.Code), &c); err != nil {
			return nil, &api.StepError{Message: "bad test command: " + err.Error()}
		}
	}
	logExec("start", req, r.worker)
	out := map[string]any{"step": req.Step, "worker": r.worker, "attempt": req.Attempt}
	var inputs []string
	for k := range req.Inputs {
		inputs = append(inputs, k)
	}
	sort.Strings(inputs)
	out["inputs"] = inputs
	for _, l := range c.Log {
		host.Log("stdout", l)
	}
	if c.Crash {
		os.Exit(7)
	}
	if c.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(c.SleepMS) * time.Millisecond):
		case <-ctx.Done():
			logExec("cancelled", req, r.worker)
			return nil, ctx.Err()
		}
	}
	if c.KV {
		if err := host.KVPut(ctx, "k-"+req.Step, []byte("v-"+req.Step)); err != nil {
			return nil, err
		}
		v, found, err := host.KVGet(ctx, "k-"+req.Step)
		if err != nil {
			return nil, err
		}
		out["kv"] = string(v)
		out["found"] = found
	}
	if c.Secret != "" {
		s, err := host.Secret(ctx, c.Secret)
		if err != nil {
			return nil, err
		}
		out["secret"] = s
	}
	if c.BigOut > 0 {
		out["big"] = strings.Repeat("x", c.BigOut)
	}
	if c.ReadFile {
		data, err := os.ReadFile(req.Module)
		if err != nil {
			return nil, &api.StepError{Message: err.Error()}
		}
		out["module_size"] = len(data)
		out["module_ref"] = blobRef(data)
	}
	if c.Scratch {
		if req.TempDir == "" {
			return nil, &api.StepError{Message: "no scratch folder"}
		}
		p := filepath.Join(req.TempDir, req.Step+".txt")
		if err := os.WriteFile(p, []byte(req.Step), 0o600); err != nil {
			return nil, &api.StepError{Message: err.Error()}
		}
		out["scratch"] = true
	}
	if c.Fail != "" || req.Attempt <= c.FailTill {
		logExec("end", req, r.worker)
		return nil, &api.StepError{Message: "failed: " + c.Fail, File: req.WorkflowFile, Line: 7}
	}
	logExec("end", req, r.worker)
	return json.Marshal(out)
}

var execLogMu sync.Mutex

func logExec(what string, req *api.StepRequest, worker string) {
	path := os.Getenv(envExecLog)
	if path == "" {
		return
	}
	execLogMu.Lock()
	defer execLogMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %s %d %s %d\n", what, req.RunID, token(req.Step), req.Attempt, worker, os.Getpid())
}

// execCounts reads an execution log: how many times each step started and
// ended, and on which workers it ended.
type execCounts struct {
	started map[string]int
	ended   map[string]int
	workers map[string]string // step → worker that ended it last
	byPID   map[string]int    // worker → executions ended
}

func readExecLog(t *testing.T, path string) execCounts {
	t.Helper()
	c := execCounts{started: map[string]int{}, ended: map[string]int{}, workers: map[string]string{}, byPID: map[string]int{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return c
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 6 {
			continue
		}
		step, _ := untoken(fields[2])
		switch fields[0] {
		case "start":
			c.started[step]++
		case "end":
			c.ended[step]++
			c.workers[step] = fields[4]
			c.byPID[fields[4]]++
		}
	}
	return c
}

// startNATS starts an embedded server on a random loopback port.
func startNATS(t testing.TB, dir string) *Embedded {
	t.Helper()
	emb, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	return emb
}

func newExecutor(t testing.TB, cfg ExecutorConfig) *Executor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := NewExecutor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// startWorker runs an in-process worker until the test ends.
func startWorker(t testing.TB, cfg WorkerConfig) {
	t.Helper()
	startStoppableWorker(t, cfg)
}

// startStoppableWorker runs an in-process worker and returns a function that
// stops it and waits until it has.
func startStoppableWorker(t testing.TB, cfg WorkerConfig) (stop func()) {
	t.Helper()
	if cfg.Runners == nil {
		cfg.Runners = testRegistry(cfg.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	cfg.Ready = func() { close(ready) }
	go func() { done <- RunWorker(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("worker %s: %v", cfg.Name, err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("worker %s did not start", cfg.Name)
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// workerProcess is a worker running in a child process.
type workerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startWorkerProcess re-executes the test binary as a worker.
func startWorkerProcess(t testing.TB, url, name string, slots int, execLog string) *workerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorkerURL+"="+url, envWorkerName+"="+name,
		envWorkerSlots+"="+strconv.Itoa(slots), envExecLog+"="+execLog)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wp := &workerProcess{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if sc.Text() == "READY" {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { cmd.Wait(); close(wp.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-wp.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-wp.done
		}
	})
	select {
	case <-ready:
	case <-wp.done:
		t.Fatalf("worker process %s exited before it was ready", name)
	case <-time.After(60 * time.Second):
		t.Fatalf("worker process %s did not start", name)
	}
	return wp
}

// kill9 kills the worker process with SIGKILL and waits for it.
func (wp *workerProcess) kill9(t testing.TB) {
	t.Helper()
	if err := wp.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-wp.done
}

// testWorkflow builds a workflow of test steps directly (the loader only
// accepts the built-in languages).
type stepSpec struct {
	name string
	cmd  command
	deps []string
	env  map[string]string
}

func testWorkflow(name string, specs []stepSpec) *workflow.Workflow {
	wf := &workflow.Workflow{Name: name, File: name + ".lua", FailFast: true}
	for _, s := range specs {
		code, _ := json.Marshal(s.cmd)
		wf.Steps = append(wf.Steps, &workflow.Step{Name: s.name, Language: langTest, LanguageAsWritten: langTest,
			Code: string(code), DependsOn: s.deps, Env: s.env})
	}
	return wf
}

// fanout is one root step and n steps depending on it.
func fanout(n int, cmd command) *workflow.Workflow {
	specs := []stepSpec{{name: "root"}}
	for i := range n {
		specs = append(specs, stepSpec{name: fmt.Sprintf("s%04d", i), cmd: cmd, deps: []string{"root"}})
	}
	return testWorkflow("fanout", specs)
}

// runWorkflow runs wf through ex and returns the result and its events.
func runWorkflow(t testing.TB, ctx context.Context, wf *workflow.Workflow, opts engine.Options) (*engine.RunResult, []engine.Event) {
	t.Helper()
	var mu sync.Mutex
	var events []engine.Event
	opts.OnEvent = func(e engine.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	res := engine.Run(ctx, wf, opts)
	mu.Lock()
	defer mu.Unlock()
	return res, append([]engine.Event(nil), events...)
}

func requireSucceeded(t testing.TB, res *engine.RunResult) {
	t.Helper()
	if res.Status == engine.StatusSucceeded {
		return
	}
	for _, s := range res.Steps {
		if s.Status != engine.StatusSucceeded {
			t.Errorf("step %s: %s %s", s.Name, s.Status, s.Error)
		}
	}
	t.Fatalf("run %s: %s", res.Status, res.Error)
}

func stepOutput(t testing.TB, s engine.StepResult) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(s.Output, &out); err != nil {
		t.Fatalf("step %s output %s: %v", s.Name, s.Output, err)
	}
	return out
}

// memHost is a Host with an in-memory KV and secrets, recording log lines.
type memHost struct {
	mu      sync.Mutex
	kv      map[string][]byte
	secrets map[string]string
	logs    []string
}

func (h *memHost) Log(stream, line string) {
	h.mu.Lock()
	h.logs = append(h.logs, stream+": "+line)
	h.mu.Unlock()
}
func (h *memHost) Progress(float64, string) {}
func (h *memHost) HTTPFetch(context.Context, api.HTTPRequest) (*api.HTTPResponse, error) {
	return nil, &api.DeniedError{Capability: "net", Detail: "not in this test"}
}
func (h *memHost) KVGet(_ context.Context, key string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[key]
	return v, ok, nil
}
func (h *memHost) KVPut(_ context.Context, key string, value []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kv[key] = value
	return nil
}
func (h *memHost) Secret(_ context.Context, name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.secrets[name]; ok {
		return s, nil
	}
	return "", &api.DeniedError{Capability: "secrets", Detail: "secret " + name + " not granted"}
}

func byName(res *engine.RunResult) map[string]engine.StepResult {
	out := map[string]engine.StepResult{}
	for _, s := range res.Steps {
		out[s.Name] = s
	}
	return out
}

func readExecLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// waitStats waits (a little) until the executor's counters satisfy ok: a
// result is handed to Execute before it is recorded.
func waitStats(ex *Executor, ok func(Stats) bool) Stats {
	deadline := time.Now().Add(5 * time.Second)
	for !ok(ex.Stats()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return ex.Stats()
}
