// Package runnertest is a test kit for hwe runners: a fake host that records
// what a step did and enforces its grant like hwe does, RunStep to run one
// step in process, and StartPlugin to run the same steps through a built
// plugin binary over the real plugin protocol.
//
//	func TestUpper(t *testing.T) {
//		res := runnertest.RunStep(t, newRunner(), runnertest.Step{Code: "hi"})
//		if res.Err != nil || string(res.Output) != `{"text":"HI"}` {
//			t.Fatal(res.Output, res.Err)
//		}
//	}
package runnertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/plugin"
)

// LogLine is one line a step logged.
type LogLine struct{ Stream, Line string }

// Host is a fake api.Host. It keeps KV in memory, hands out Secrets, answers
// HTTP fetches with HTTP (no network), and denies what the step's grant does
// not allow, the way hwe does. Safe for concurrent use.
type Host struct {
	// Grant is what the step may do; RunStep sets it from Step.Grant.
	Grant   api.Grant
	Secrets map[string]string
	HTTP    http.Handler // answers HTTPFetch; nil: 404 for everything

	mu       sync.Mutex
	kv       map[string][]byte
	logs     []LogLine
	progress []float64
}

// NewHost returns an empty fake host that grants nothing.
func NewHost() *Host { return &Host{Secrets: map[string]string{}, kv: map[string][]byte{}} }

// Logs returns the lines logged so far.
func (h *Host) Logs() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.logs)
}

// ProgressReports returns the fractions reported so far.
func (h *Host) ProgressReports() []float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.progress)
}

// SetKV stores a value as if an earlier step had put it.
func (h *Host) SetKV(key string, value []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kv == nil {
		h.kv = map[string][]byte{}
	}
	h.kv[key] = value
}

// KV returns a stored value.
func (h *Host) KV(key string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[key]
	return v, ok
}

func (h *Host) Log(stream, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, LogLine{stream, line})
}

func (h *Host) Progress(fraction float64, _ string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress = append(h.progress, fraction)
}

func (h *Host) HTTPFetch(ctx context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, err
	}
	if !api.Allows(h.Grant.Net, u.Host) && !api.Allows(h.Grant.Net, u.Hostname()) {
		return nil, &api.DeniedError{Capability: "net", Detail: u.Host + " is not in the step's allow list"}
	}
	handler := h.HTTP
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, hreq)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	headers := make(map[string]string, len(resp.Header))
	for k := range resp.Header {
		headers[k] = resp.Header.Get(k)
	}
	return &api.HTTPResponse{Status: resp.StatusCode, Headers: headers, Body: body}, nil
}

func (h *Host) KVGet(_ context.Context, key string) ([]byte, bool, error) {
	if !h.Grant.KV {
		return nil, false, &api.DeniedError{Capability: "kv", Detail: "the step has no kv grant"}
	}
	v, ok := h.KV(key)
	return v, ok, nil
}

func (h *Host) KVPut(_ context.Context, key string, value []byte) error {
	if !h.Grant.KV {
		return &api.DeniedError{Capability: "kv", Detail: "the step has no kv grant"}
	}
	h.SetKV(key, slices.Clone(value))
	return nil
}

func (h *Host) Secret(_ context.Context, name string) (string, error) {
	v, ok := h.Secrets[name]
	if !ok || !api.Allows(h.Grant.Secrets, name) {
		return "", &api.DeniedError{Capability: "secrets", Detail: "secret " + name + " not granted"}
	}
	return v, nil
}

// Step is one step for RunStep. Zero fields get test defaults.
type Step struct {
	Name     string // default "step"
	Language string // default: the runner's first language
	Code     string
	Inputs   map[string]any // dependency outputs by step name, encoded as JSON
	Env      map[string]string
	Grant    api.Grant
	Timeout  time.Duration
	Host     *Host // default: NewHost(); its Grant is set to Grant
}

// Result is what a step produced.
type Result struct {
	Output json.RawMessage
	Err    error
	Host   *Host
}

// Value decodes the output (numbers as json.Number).
func (r Result) Value(t testing.TB) any {
	t.Helper()
	v, err := api.DecodeJSON(r.Output)
	if err != nil {
		t.Fatalf("step output %q: %v", r.Output, err)
	}
	return v
}

// RunStep runs one step on r with a fake host and returns what it produced.
// A runner that returns neither an error nor valid JSON fails the test.
func RunStep(t testing.TB, r api.Runner, step Step) Result {
	t.Helper()
	req := &api.StepRequest{
		RunID: "test-run", Workflow: "test", Step: step.Name, Attempt: 1,
		Language: step.Language, LanguageAsWritten: step.Language,
		Code: step.Code, Env: step.Env, Grant: step.Grant, Timeout: step.Timeout,
		WorkflowFile: "/test/workflow.lua", WorkflowDir: "/test", CodeLine: 1,
	}
	if req.Step == "" {
		req.Step = "step"
	}
	if req.Language == "" {
		if langs := r.Info().Languages; len(langs) > 0 {
			req.Language, req.LanguageAsWritten = langs[0], langs[0]
		}
	}
	if len(step.Inputs) > 0 {
		req.Inputs = make(map[string]json.RawMessage, len(step.Inputs))
		for name, v := range step.Inputs {
			doc, err := api.MarshalCanonical(v)
			if err != nil {
				t.Fatalf("input %q: %v", name, err)
			}
			req.Inputs[name] = doc
		}
	}
	host := step.Host
	if host == nil {
		host = NewHost()
	}
	host.Grant = step.Grant

	ctx := context.Background()
	if step.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, step.Timeout)
		defer cancel()
	}
	out, err := r.Run(ctx, req, host)
	if err == nil && !json.Valid(out) {
		t.Fatalf("runner %s returned an output that is not JSON: %q", r.Info().Name, out)
	}
	return Result{Output: out, Err: err, Host: host}
}

// StartPlugin launches a built runner plugin binary the way hwe does (own
// process, no inherited environment, checksum verified, host API served
// back to it) and returns it as an api.Runner for RunStep. It is closed when
// the test ends. env is the plugin's whole environment ("K=V").
func StartPlugin(t testing.TB, path string, env ...string) api.Runner {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	name := strings.TrimPrefix(filepath.Base(path), plugin.ExecutablePrefix)
	c, err := plugin.NewClient(plugin.Config{Name: name, Languages: []string{name}, Kind: "plugin", Path: path, Checksum: sum[:], Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.RemoteInfo(); err != nil {
		t.Fatalf("starting plugin %s: %v", path, err)
	}
	return c
}
