package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// The native convention: inputs in as JSON, output out as canonical JSON.
func TestNativeEcho(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(fixture(t, "native.wasm"), "echo")
	req.Inputs = inputs("b", `{"z":1,"a":[1,2.0,"<&>"]}`, "a", `"x"`)
	out := mustRun(t, r, req, &testHost{})
	want := `{"echo":{"a":"x","b":{"a":[1,2.0,"<&>"],"z":1}}}`
	if string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	// A root step gets {}.
	out = mustRun(t, r, step(fixture(t, "native.wasm"), "echo"), &testHost{})
	if string(out) != `{"echo":{}}` {
		t.Errorf("root step: got %s", out)
	}
}

func TestNativeResults(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "native.wasm")
	for fn, want := range map[string]string{"noop": "null", "void_ok": "null"} {
		if out := mustRun(t, r, step(module, fn), &testHost{}); string(out) != want {
			t.Errorf("%s: got %s, want %s", fn, out, want)
		}
	}
	failures := map[string]string{
		"fail":     "guest says no",
		"rc_only":  "WASM function 'rc_only' failed with return code: 3",
		"bad_json": "WASM function 'bad_json' returned output that is not JSON",
		"trap":     "WASM function 'trap' trapped: wasm error: unreachable",
		"nope":     "Function 'nope' not found in WASM module",
		"two_args": "which hwe cannot call",
	}
	for fn, want := range failures {
		err := mustFail(t, r, step(module, fn), &testHost{}, want)
		if !api.IsStepError(err) {
			t.Errorf("%s: %T is not a step error", fn, err)
		}
	}
	// The guest's own message is the whole message.
	_, err := r.Run(context.Background(), step(module, "fail"), &testHost{})
	if err.Error() != "guest says no" {
		t.Errorf("fail: error %q, want exactly the guest's message", err)
	}
}

// Extism's log functions and hwe_v1_log reach the step's log; progress
// reaches the host.
func TestNativeLogAndProgress(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "native.wasm")
	host := &testHost{}
	mustRun(t, r, step(module, "extism_log"), host)

	req := step(module, "fwd_log")
	req.Inputs = inputs("stream", `"stderr"`, "line", `"two\nlines"`)
	if out := mustRun(t, r, req, host); string(out) != `{"value":null}` {
		t.Errorf("fwd_log output %s", out)
	}
	req = step(module, "fwd_progress")
	req.Inputs = inputs("fraction", `0.5`, "message", `"half"`)
	mustRun(t, r, req, host)

	want := []string{"log: info: hello from extism log", "stderr: two", "stderr: lines"}
	if got := host.logLines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logs %q, want %q", got, want)
	}
	if strings.Join(host.progress, "|") != `[0.5,"half"]` {
		t.Errorf("progress %q", host.progress)
	}

	req.Inputs = inputs("fraction", `2`)
	mustFail(t, r, req, host, "hwe_v1_progress: fraction 2 is outside 0..1")
}

func TestNativeHostFunctionsGranted(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "native.wasm")
	host := &testHost{
		kv:      map[string][]byte{"bin": {0xff, 0x00}},
		secrets: map[string]string{"API_KEY": "s3cret"},
		fetch: func(req api.HTTPRequest) (*api.HTTPResponse, error) {
			return &api.HTTPResponse{Status: 201, Headers: map[string]string{"X-Method": req.Method},
				Body: []byte("got " + string(req.Body) + " for " + req.URL)}, nil
		},
	}
	call := func(fn string, pairs ...string) string {
		req := step(module, fn)
		req.Inputs = inputs(pairs...)
		return string(mustRun(t, r, req, host))
	}
	if got := call("fwd_kv_put", "key", `"greeting"`, "value", `"hello"`); got != `{"value":null}` {
		t.Errorf("kv_put: %s", got)
	}
	if got := call("fwd_kv_get", "key", `"greeting"`); got != `{"found":true,"value":"hello"}` {
		t.Errorf("kv_get: %s", got)
	}
	if got := call("fwd_kv_get", "key", `"absent"`); got != `{"found":false,"value":null}` {
		t.Errorf("kv_get absent: %s", got)
	}
	if got := call("fwd_kv_get", "key", `"bin"`); got != `{"encoding":"base64","found":true,"value":"/wA="}` {
		t.Errorf("kv_get binary: %s", got)
	}
	call("fwd_kv_put", "key", `"b64"`, "value", `"AAEC"`, "encoding", `"base64"`)
	if v := host.kv["b64"]; string(v) != "\x00\x01\x02" {
		t.Errorf("kv_put base64 stored %q", v)
	}
	if got := call("fwd_secret", "name", `"API_KEY"`); got != `{"value":"s3cret"}` {
		t.Errorf("secret: %s", got)
	}
	got := call("fwd_http_fetch", "url", `"http://127.0.0.1:1/x"`, "method", `"post"`, "body", `"ping"`)
	want := `{"value":{"body":"got ping for http://127.0.0.1:1/x","headers":{"X-Method":"POST"},"status":201}}`
	if got != want {
		t.Errorf("http_fetch:\n got %s\nwant %s", got, want)
	}
}

// A guest calling a host function it was not granted sees an error naming
// the capability; when it fails because of it, the step error names it too.
func TestNativeHostFunctionDenied(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "native.wasm")
	cases := []struct {
		fn, capability string
		pairs          []string
	}{
		{"fwd_secret", "secrets", []string{"name", `"API_KEY"`}},
		{"fwd_kv_get", "kv", []string{"key", `"k"`}},
		{"fwd_kv_put", "kv", []string{"key", `"k"`, "value", `"v"`}},
		{"fwd_http_fetch", "net", []string{"url", `"https://example.com/"`}},
	}
	for _, c := range cases {
		for _, host := range []api.Host{api.NopHost{}, &testHost{}} {
			req := step(module, c.fn)
			req.Inputs = inputs(c.pairs...)
			err := mustFail(t, r, req, host, "capability "+c.capability+" denied")
			var denied *api.DeniedError
			if !errors.As(err, &denied) || denied.Capability != c.capability {
				t.Errorf("%s: error %v does not carry a DeniedError for %s", c.fn, err, c.capability)
			}
			if !api.IsStepError(err) {
				t.Errorf("%s: %T is not a step error", c.fn, err)
			}
			// The guest saw the error as data: its message is the response.
			if !strings.Contains(err.Error(), `"capability":"`+c.capability+`"`) {
				t.Errorf("%s: guest did not see the capability in its response: %v", c.fn, err)
			}
		}
	}
	// hwe keeps running, and the same instance pool still serves steps.
	mustRun(t, r, step(module, "noop"), api.NopHost{})
}

// Many steps of one module at once get their own outputs: instances are
// never shared between goroutines. Run with -race.
func TestNativeConcurrentSteps(t *testing.T) {
	r := newTestRunner(t, Options{MaxIdleInstances: 3})
	module := fixture(t, "native.wasm")
	const goroutines, perGoroutine = 16, 12
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perGoroutine)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := &testHost{}
			for i := range perGoroutine {
				id := fmt.Sprintf("g%d-i%d", g, i)
				payload := strings.Repeat(id, 1+(g*7+i)%50)
				req := step(module, "echo")
				req.Step = fmt.Sprintf("s%d", i%2) // steps share instances only by name
				req.Inputs = inputs("id", fmt.Sprintf("%q", id), "payload", fmt.Sprintf("%q", payload))
				if g%4 == 0 {
					req.Tenant = "other" // a second scope sharing the module
				}
				out, err := r.Run(context.Background(), req, host)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					continue
				}
				want := fmt.Sprintf(`{"echo":{"id":%q,"payload":%q}}`, id, payload)
				if string(out) != want {
					errs <- fmt.Errorf("%s: got %.80s…, want %.80s…", id, out, want)
				}
			}
		}()
	}
	// Reference-convention steps of another module at the same time.
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				req := step(fixture(t, "reference.wasm"), "echo_arg")
				req.Inputs = inputs(strings.Split(strings.Repeat("d,1,", (g+i)%5), ",")...)
				out, err := r.Run(context.Background(), req, &testHost{})
				if err != nil {
					errs <- err
					continue
				}
				var got struct{ Wasm_execution struct{ Return_code int } }
				_ = json.Unmarshal(out, &got)
				if want := len(req.Inputs); got.Wasm_execution.Return_code != want {
					errs <- fmt.Errorf("echo_arg with %d inputs returned %d", want, got.Wasm_execution.Return_code)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Instances are reused only within a scope (tenant, workflow, step, grant,
// environment); isolation "process" always gets a fresh one.
func TestNativeInstanceReuseScope(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "native.wasm")
	run := func(tenant, workflow, stepName, isolation string, secrets ...string) error {
		req := step(module, "count_calls")
		req.Tenant, req.Workflow, req.Step, req.Isolation = tenant, workflow, stepName, isolation
		req.Grant.Secrets = secrets
		_, err := r.Run(context.Background(), req, &testHost{})
		return err
	}
	if err := run("a", "w", "s", ""); err != nil {
		t.Fatalf("first call: %v", err)
	}
	// Same scope (a later run of the same step, or its retry): the
	// instance (and its state) is reused.
	if err := run("a", "w", "s", ""); err == nil || !strings.Contains(err.Error(), "return code: 1") {
		t.Fatalf("same scope: err = %v, want the reused instance's count", err)
	}
	for _, other := range []func() error{
		func() error { return run("b", "w", "s", "") },
		func() error { return run("a", "w2", "s", "") },
		func() error { return run("a", "w", "s2", "") },
		func() error { return run("a", "w", "s3", "") },
		func() error { return run("a", "w", "s", "", "API_KEY") },
		func() error { return run("a", "w", "s", "process") },
		func() error { return run("a", "w", "s", "process") },
	} {
		if err := other(); err != nil {
			t.Errorf("another scope saw state: %v", err)
		}
	}
}
