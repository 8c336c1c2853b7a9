package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// The test binary doubles as the plugin, the way the hwe binary does:
// launched as `TESTBINARY __runner echo` (the built-in path) or under a
// hwe-runner-echo file name (the third-party path), it serves echoRunner
// instead of running tests.
func TestMain(m *testing.M) {
	if ServeBuiltinIfRequested(os.Args, func(name string) api.Runner {
		if name == "echo" {
			return echoRunner{}
		}
		return nil
	}) {
		os.Exit(0)
	}
	if strings.HasPrefix(filepath.Base(os.Args[0]), ExecutablePrefix) {
		Serve(echoRunner{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// echoRunner is a small runner whose step code is a command word. It
// exercises every path across the process boundary.
type echoRunner struct{}

func (echoRunner) Info() api.RunnerInfo {
	return api.RunnerInfo{Name: "echo", Languages: []string{"echo"}, Version: "1.2.3"}
}

func (echoRunner) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	switch req.Code {
	case "noop":
		return json.RawMessage("null"), nil
	case "echo":
		// Host API round trips: a log line and a KV read.
		host.Log("log", fmt.Sprintf("hello from pid %d", os.Getpid()))
		value, found, err := host.KVGet(ctx, "greeting")
		if err != nil {
			return nil, err
		}
		return api.MarshalCanonical(map[string]any{
			"step": req.Step, "inputs": req.Inputs, "kv": string(value), "kv_found": found,
			"pid": os.Getpid(), "env": req.Env, "code_line": req.CodeLine, "grant": req.Grant,
		})
	case "block":
		// Tell the test where we are, then wait to be cancelled or killed.
		host.Log("log", fmt.Sprintf("blocking pid %d", os.Getpid()))
		<-ctx.Done()
		if marker := req.Env["MARKER"]; marker != "" {
			_ = os.WriteFile(marker, []byte("cancelled"), 0o600)
		}
		return nil, ctx.Err()
	case "spawn":
		// A grandchild in the plugin's process group, like an interpreter worker.
		cmd := exec.Command("/bin/sleep", "300")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go cmd.Wait()
		return api.MarshalCanonical(map[string]any{"pid": os.Getpid(), "child": cmd.Process.Pid})
	case "environ":
		var names []string
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			names = append(names, name)
		}
		sort.Strings(names)
		return api.MarshalCanonical(map[string]any{"names": names, "environ": os.Environ()})
	case "fail":
		return nil, &api.StepError{Message: "boom", File: req.WorkflowFile, Line: req.CodeLine + 2, Trace: "trace here"}
	case "secret":
		v, err := host.Secret(ctx, "token")
		if err != nil {
			return nil, err
		}
		return api.MarshalCanonical(v)
	case "kvput":
		if err := host.KVPut(ctx, "written", []byte("by plugin")); err != nil {
			return nil, err
		}
		host.Progress(0.5, "half")
		return json.RawMessage(`"ok"`), nil
	case "http":
		resp, err := host.HTTPFetch(ctx, api.HTTPRequest{Method: "GET", URL: "http://example.invalid/x", Headers: map[string]string{"A": "b"}})
		if err != nil {
			return nil, err
		}
		return api.MarshalCanonical(map[string]any{"status": resp.Status, "body": string(resp.Body), "h": resp.Headers})
	case "print":
		// Runner code that prints instead of using host.Log.
		fmt.Println("printed to stdout")
		fmt.Fprintln(os.Stderr, "printed to stderr")
		return json.RawMessage("null"), nil
	case "panic":
		panic("runner bug")
	case "badjson":
		return json.RawMessage("{not json"), nil
	case "plainerror":
		return nil, errors.New("plain runner failure")
	}
	return nil, &api.StepError{Message: "unknown command " + req.Code}
}

// fakeHost records what a plugin did through the host API.
type fakeHost struct {
	mu       sync.Mutex
	logs     []string
	progress []string
	kv       map[string][]byte
	secrets  map[string]string
	onLog    func(line string)
}

func newFakeHost() *fakeHost {
	return &fakeHost{kv: map[string][]byte{}, secrets: map[string]string{}}
}

func (h *fakeHost) Log(stream, line string) {
	h.mu.Lock()
	h.logs = append(h.logs, stream+": "+line)
	onLog := h.onLog
	h.mu.Unlock()
	if onLog != nil {
		onLog(line)
	}
}

func (h *fakeHost) Progress(f float64, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress = append(h.progress, fmt.Sprintf("%.2f %s", f, msg))
}

func (h *fakeHost) HTTPFetch(_ context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	if req.URL != "http://example.invalid/x" {
		return nil, &api.DeniedError{Capability: "net", Detail: req.URL}
	}
	return &api.HTTPResponse{Status: 200, Body: []byte("fetched " + req.Headers["A"]), Headers: map[string]string{"X": "y"}}, nil
}

func (h *fakeHost) KVGet(_ context.Context, key string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[key]
	return v, ok, nil
}

func (h *fakeHost) KVPut(_ context.Context, key string, value []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kv[key] = value
	return nil
}

func (h *fakeHost) Secret(_ context.Context, name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.secrets[name]; ok {
		return v, nil
	}
	return "", &api.DeniedError{Capability: "secrets", Detail: "secret " + name + " not granted"}
}
