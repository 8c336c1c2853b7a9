package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/store"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
)

// gateExecutor runs steps with the real Lua runner, but a step whose name
// has a gate waits for it to open first (or for cancellation), so tests
// can hold a run mid-way.
type gateExecutor struct {
	lua   *luarunner.Runner
	mu    sync.Mutex
	gates map[string]chan struct{}
	calls sync.Map // step name -> *atomic.Int32
	fail  sync.Map // step name -> error message while set
	grant sync.Map // step name -> the api.Grant it last ran with
}

func newGateExecutor() *gateExecutor {
	return &gateExecutor{lua: luarunner.New(luarunner.Options{}), gates: map[string]chan struct{}{}}
}

// gate makes step wait until the returned function is called.
func (g *gateExecutor) gate(step string) (open func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.gates[step] = ch
	g.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (g *gateExecutor) callCount(step string) int {
	v, _ := g.calls.LoadOrStore(step, new(atomic.Int32))
	return int(v.(*atomic.Int32).Load())
}

func (g *gateExecutor) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	v, _ := g.calls.LoadOrStore(req.Step, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
	g.grant.Store(req.Step, req.Grant)
	g.mu.Lock()
	ch := g.gates[req.Step]
	g.mu.Unlock()
	if ch != nil {
		host.Log("log", "waiting at gate")
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if msg, ok := g.fail.Load(req.Step); ok {
		return nil, &api.StepError{Message: msg.(string)}
	}
	return g.lua.Run(ctx, req, host)
}

type testEnv struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	dir   string // the local tenant's workflows folder (or the tenants file's folder)
	store *store.Store
	exec  *gateExecutor
}

// newEnv starts a server on 127.0.0.1 with an on-disk store and the given
// config changes.
func newEnv(t *testing.T, configure ...func(*Config)) *testEnv {
	return newTBEnv(t, configure...)
}

func newBenchEnv(b *testing.B, configure ...func(*Config)) *testEnv {
	return newTBEnv(b, configure...)
}

func newTBEnv(t testing.TB, configure ...func(*Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	ex := newGateExecutor()
	cfg := Config{
		Executor: ex, Store: st, WorkflowsDir: filepath.Join(dir, "workflows"), PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	os.MkdirAll(cfg.WorkflowsDir, 0o755)
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ts := httptest.NewServer(srv.Handler())
	e := &testEnv{t: t, srv: srv, ts: ts, dir: cfg.WorkflowsDir, store: st, exec: ex}
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
		st.Close()
	})
	return e
}

func (e *testEnv) writeWorkflow(name, src string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name+".lua"), []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// do sends a request; token "" sends none.
func (e *testEnv) do(method, path, token, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// must sends a request and checks its status.
func (e *testEnv) must(method, path, token, body string, want int) []byte {
	e.t.Helper()
	resp, data := e.do(method, path, token, body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	return data
}

func decode[T any](t testing.TB, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}

// startRun starts a run and returns its id.
func (e *testEnv) startRun(name, token string) string {
	e.t.Helper()
	data := e.must("POST", "/api/v1/workflows/"+name+"/runs", token, "", http.StatusAccepted)
	return decode[map[string]string](e.t, data)["id"]
}

// waitRun polls until the run has finished and returns it.
func (e *testEnv) waitRun(id, token string) store.Run {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		run := decode[store.Run](e.t, e.must("GET", "/api/v1/runs/"+id, token, "", http.StatusOK))
		if store.Finished(run.Status) && !e.srv.runs.isActive(id) {
			return run
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("run %s did not finish", id)
	return store.Run{}
}

// waitStep polls until a step of a run reaches status.
func (e *testEnv) waitStep(id, step, status, token string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		run := decode[store.Run](e.t, e.must("GET", "/api/v1/runs/"+id, token, "", http.StatusOK))
		for _, s := range run.Steps {
			if s.Name == step && s.Status == status {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("step %s of run %s never became %s", step, id, status)
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	ID    string
	Event string
	Data  string
}

// readSSE reads events from a stream until it ends or `until` returns true.
func readSSE(t testing.TB, body io.Reader, until func(sseEvent) bool) []sseEvent {
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" || cur.Data != "" {
				out = append(out, cur)
				if until != nil && until(cur) {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Data = line[6:]
		}
	}
	return out
}

// chainWorkflow is a three-step workflow a → b → c of Lua steps.
const chainWorkflow = `workflow = {
  name = "chain",
  description = "three steps in a row",
  steps = {
    a = { language = "lua", code = [[
function run()
  print("a says hi")
  return { n = 1 }
end
]] },
    b = { language = "lua", depends_on = {"a"}, code = [[
function run(inputs)
  return { n = inputs.a.n + 1 }
end
]] },
    c = { language = "lua", depends_on = {"b"}, code = [[
function run(inputs)
  return { n = inputs.b.n + 1 }
end
]] },
  },
}
`

func stepsByName(run store.Run) map[string]store.Step {
	m := map[string]store.Step{}
	for _, s := range run.Steps {
		m[s.Name] = s
	}
	return m
}

var _ = fmt.Sprintf

func httptestServer(s *Server) *httptest.Server { return httptest.NewServer(s.Handler()) }
