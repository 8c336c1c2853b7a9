package wasm

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// testHost is an api.Host that records what a step did and grants what the
// test says: KV when kv is non-nil, the listed secrets, and HTTP through
// fetch when set. Everything else is denied like the real host would.
type testHost struct {
	mu       sync.Mutex
	logs     []string // "stream: line"
	progress []string
	kv       map[string][]byte
	secrets  map[string]string
	fetch    func(api.HTTPRequest) (*api.HTTPResponse, error)
}

func (h *testHost) Log(stream, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, stream+": "+line)
}

func (h *testHost) Progress(fraction float64, message string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, _ := json.Marshal([]any{fraction, message})
	h.progress = append(h.progress, string(b))
}

func (h *testHost) HTTPFetch(_ context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	if h.fetch == nil {
		return nil, &api.DeniedError{Capability: "net", Detail: "host " + req.URL + " not granted"}
	}
	return h.fetch(req)
}

func (h *testHost) KVGet(_ context.Context, key string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kv == nil {
		return nil, false, &api.DeniedError{Capability: "kv", Detail: "kv not granted"}
	}
	v, ok := h.kv[key]
	return v, ok, nil
}

func (h *testHost) KVPut(_ context.Context, key string, value []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kv == nil {
		return &api.DeniedError{Capability: "kv", Detail: "kv not granted"}
	}
	h.kv[key] = value
	return nil
}

func (h *testHost) Secret(_ context.Context, name string) (string, error) {
	if v, ok := h.secrets[name]; ok {
		return v, nil
	}
	return "", &api.DeniedError{Capability: "secrets", Detail: "secret " + name + " not granted"}
}

func (h *testHost) logLines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logs...)
}

// repoRoot is the repository root, two levels above this package.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func fixture(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "testdata", "wasm", name)
}

// newTestRunner returns a Runner with a private disk cache, closed at the end.
func newTestRunner(t testing.TB, opts Options) *Runner {
	t.Helper()
	if opts.CacheDir == "" && !opts.NoDiskCache {
		opts.CacheDir = t.TempDir()
	}
	r := New(opts)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// step builds a request for fn in the module at path.
func step(path, fn string) *api.StepRequest {
	return &api.StepRequest{
		RunID: "run-1", Workflow: "wf", Step: "s", Attempt: 1,
		Language: api.LangWasm, LanguageAsWritten: "wasm",
		Module: path, Function: fn, WorkflowDir: filepath.Dir(path),
	}
}

// inputs builds a step's inputs from dependency name → JSON text pairs.
func inputs(pairs ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = json.RawMessage(pairs[i+1])
	}
	return m
}

func mustRun(t testing.TB, r *Runner, req *api.StepRequest, host api.Host) json.RawMessage {
	t.Helper()
	out, err := r.Run(context.Background(), req, host)
	if err != nil {
		t.Fatalf("Run(%s %s): %v", filepath.Base(req.Module), req.Function, err)
	}
	return out
}

func mustFail(t testing.TB, r *Runner, req *api.StepRequest, host api.Host, want string) error {
	t.Helper()
	out, err := r.Run(context.Background(), req, host)
	if err == nil {
		t.Fatalf("Run(%s %s) = %s, want an error containing %q", filepath.Base(req.Module), req.Function, out, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Run(%s %s) error = %q, want it to contain %q", filepath.Base(req.Module), req.Function, err, want)
	}
	return err
}

// decode parses a JSON document into generic values.
func decode(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("output %s is not a JSON object: %v", raw, err)
	}
	return v
}
