package wasm

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// A guest that never returns is stopped at its timeout, in both
// conventions, and hwe goes on: a garbage collection (which a spinning
// guest without close-on-context-done would stall forever) completes and
// the next step runs.
func TestSpinningGuestStoppedAtTimeout(t *testing.T) {
	r := newTestRunner(t, Options{})
	quick := map[string]string{"reference.wasm": "rc0", "native.wasm": "noop"}
	for _, module := range []string{"reference.wasm", "native.wasm"} {
		req := step(fixture(t, module), "spin")
		req.Timeout = 200 * time.Millisecond
		start := time.Now()
		err := mustFail(t, r, req, &testHost{}, "WASM function 'spin' did not finish within 200ms and was stopped")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: stopping took %s", module, took)
		}
		var limit *api.LimitError
		if !errors.As(err, &limit) || limit.Limit != "timeout" {
			t.Errorf("%s: error %T %v is not a timeout LimitError", module, err, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: error does not wrap context.DeadlineExceeded", module)
		}
		gcDone := make(chan struct{})
		go func() { runtime.GC(); close(gcDone) }()
		select {
		case <-gcDone:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: garbage collection stalled after the timeout", module)
		}
		mustRun(t, r, step(fixture(t, module), quick[module]), &testHost{})
	}
}

// The default timeout applies when the step sets none.
func TestDefaultTimeout(t *testing.T) {
	r := newTestRunner(t, Options{Timeout: 150 * time.Millisecond})
	mustFail(t, r, step(fixture(t, "native.wasm"), "spin"), &testHost{}, "did not finish within 150ms")
}

// Cancelling the step's context stops the guest too, reported as the
// context's error rather than as the step's timeout.
func TestCancelStopsGuest(t *testing.T) {
	r := newTestRunner(t, Options{})
	for _, module := range []string{"reference.wasm", "native.wasm"} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := r.Run(ctx, step(fixture(t, module), "spin"), &testHost{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", module, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err = r.Run(ctx, step(fixture(t, module), "spin"), &testHost{})
		cancel()
		var limit *api.LimitError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &limit) || limit.Limit != "timeout" {
			t.Errorf("%s: err = %v, want a timeout LimitError wrapping DeadlineExceeded", module, err)
		}
	}
}

// A guest growing its memory without end is stopped at the step's memory
// cap with a memory LimitError, and the runner stays usable.
func TestMemoryHungryGuestStoppedAtCap(t *testing.T) {
	r := newTestRunner(t, Options{})
	for _, module := range []string{"reference.wasm", "native.wasm"} {
		req := step(fixture(t, module), "grow")
		req.Grant.Memory = 4 << 20
		err := mustFail(t, r, req, &testHost{}, "WASM function 'grow' needed more than its memory limit of 4 MiB")
		var limit *api.LimitError
		if !errors.As(err, &limit) || limit.Limit != "memory" {
			t.Errorf("%s: error %T %v is not a memory LimitError", module, err, err)
		}
	}
	// The default cap applies without a grant.
	r2 := newTestRunner(t, Options{MemoryLimit: 8 << 20})
	mustFail(t, r2, step(fixture(t, "native.wasm"), "grow"), &testHost{}, "memory limit of 8 MiB")
	mustRun(t, r2, step(fixture(t, "native.wasm"), "noop"), &testHost{})
}

// A guest whose own allocator gives up before the cap (it says "out of
// memory" and traps) fails with a memory LimitError that quotes it, whether
// it said so in its log or as the error it set; one that says so and
// carries on is not failed for it, and a later trap on the same instance
// is a plain trap again.
func TestGuestReportedOutOfMemory(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "native.wasm")
	for _, fn := range []string{"oom_log_trap", "oom_error_trap"} {
		req := step(module, fn)
		req.Grant.Memory = 8 << 20
		err := mustFail(t, r, req, &testHost{},
			`memory limit exceeded: WASM function '`+fn+`' ran out of memory (its memory limit is 8 MiB): `+
				`the guest reported "out of memory: no block for 1 GiB"`)
		var limit *api.LimitError
		if !errors.As(err, &limit) || limit.Limit != "memory" {
			t.Errorf("%s: %T %v is not a memory LimitError", fn, err, err)
		}
	}
	host := &testHost{}
	mustRun(t, r, step(module, "oom_log_ok"), host)
	if got := strings.Join(host.logLines(), "\n"); got != "log: info: out of memory: no block for 1 GiB" {
		t.Errorf("logs %q", got)
	}
	// The same scope: oom_log_ok's instance is reused; its report is gone.
	err := mustFail(t, r, step(module, "trap"), &testHost{}, "WASM function 'trap' trapped")
	if strings.Contains(err.Error(), "memory") {
		t.Errorf("a trap after an earlier call's report: %v", err)
	}
}

// The same for a reference-convention WASI guest: a report on stderr
// (even an unterminated last line) followed by a trap, or by proc_exit
// with a failure code, is a memory LimitError; a trap without one is not.
func TestReferenceGuestReportedOutOfMemory(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "wasi_oom.wasm")
	for _, fn := range []string{"oom_trap", "oom_unterminated_trap", "oom_exit"} {
		host := &testHost{}
		err := mustFail(t, r, step(module, fn), host,
			`memory limit exceeded: WASM function '`+fn+`' ran out of memory (its memory limit is 256 MiB): `+
				`the guest reported "fatal error: out of memory"`)
		var limit *api.LimitError
		if !errors.As(err, &limit) || limit.Limit != "memory" {
			t.Errorf("%s: %T %v is not a memory LimitError", fn, err, err)
		}
		if !strings.Contains(strings.Join(host.logLines(), "\n"), "stderr: fatal error: out of memory") {
			t.Errorf("%s: the report is not in the step's log: %q", fn, host.logLines())
		}
	}
	err := mustFail(t, r, step(module, "trap"), &testHost{}, "WASM function 'trap' trapped")
	if strings.Contains(err.Error(), "memory") {
		t.Errorf("a trap without a report: %v", err)
	}
}

func TestSaysOutOfMemory(t *testing.T) {
	for line, want := range map[string]bool{
		"fatal error: out of memory": true,
		"runtime: out of memory: cannot allocate 4294967296-byte block (360448 in use)": true,
		"Out Of Memory": true,
		"memory allocation of 4294967296 bytes failed": true,
		"abort: OUT OF MEMORY in ~lib/rt/tlsf.ts":      true,
		"": false,
		"memory allocation of 12 bytes succeeded":               false,
		"failed: memory allocation of":                          false,
		"out of time":                                           false,
		strings.Repeat("x", 300) + "fatal error: out of memory": false, // past the bytes searched
	} {
		if got := saysOutOfMemory([]byte(line)); got != want {
			t.Errorf("saysOutOfMemory(%.40q) = %v, want %v", line, got, want)
		}
	}
}

// A module whose initial memory is already past the cap is refused.
func TestInitialMemoryPastCap(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(fixture(t, "native.wasm"), "noop") // declares 2 pages
	req.Grant.Memory = pageSize                    // 1 page
	mustFail(t, r, req, &testHost{}, "needed more than its memory limit of 64 KiB (the module starts with 128 KiB of memory)")
	// Extism's kernel needs 1 MiB of its own.
	req.Grant.Memory = 512 << 10
	mustFail(t, r, req, &testHost{}, "needed more than its memory limit of 512 KiB")
	req = step(filepath.Join(repoRoot(t), "workflows", "example_wasm_module.wasm"), "run") // 16 pages
	req.Grant.Memory = 512 << 10
	mustFail(t, r, req, &testHost{}, "the module starts with 1 MiB of memory")
	req.Grant.Memory = 1 << 20
	mustRun(t, r, req, &testHost{})
}

// Input larger than the limit is refused by hwe with a clear error, before
// Extism could silently drop it.
func TestOversizedInputRejected(t *testing.T) {
	r := newTestRunner(t, Options{MaxInputBytes: 1 << 20})
	big := `"` + strings.Repeat("x", 1<<20) + `"`
	req := step(fixture(t, "native.wasm"), "echo")
	req.Inputs = inputs("big", big)
	err := mustFail(t, r, req, &testHost{}, "the inputs of WASM step 's' are 1048586 bytes of JSON; the limit is 1 MiB")
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "input" {
		t.Errorf("error %T is not an input LimitError", err)
	}
	// The memory cap bounds input too: half of it.
	req.Grant.Memory = 1 << 20
	mustFail(t, r, req, &testHost{}, "the limit is 512 KiB")

	// Input that fits arrives whole.
	req = step(fixture(t, "native.wasm"), "identity")
	payload := `"` + strings.Repeat("y", 700<<10) + `"`
	req.Inputs = inputs("p", payload)
	out := mustRun(t, r, req, &testHost{})
	if string(out) != `{"p":`+payload+`}` {
		t.Errorf("input of %d bytes did not arrive whole (got %d bytes back)", len(payload), len(out))
	}
}

// Output larger than the grant's MaxOutput fails the step.
func TestOutputLimit(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(fixture(t, "native.wasm"), "big_output")
	req.Grant.MaxOutput = 1000
	err := mustFail(t, r, req, &testHost{}, "WASM function 'big_output' produced 100002 bytes of output; the limit is 1000 bytes")
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "output" {
		t.Errorf("error %T is not an output LimitError", err)
	}
	req.Grant.MaxOutput = 0
	if out := mustRun(t, r, req, &testHost{}); len(out) != 100002 {
		t.Errorf("output of %d bytes, want 100002", len(out))
	}
}

// Extism's own HTTP is never available: no host is allowed.
func TestNoExtismHTTP(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "extism_http.wasm")
	mustFail(t, r, step(module, "run"), &testHost{}, "used Extism's http_request, which hwe does not allow; use hwe_v1_http_fetch")
}

// Close while a step runs: the step finishes (here, at its timeout), new
// steps are refused, and everything is released after the last one.
func TestCloseWhileRunning(t *testing.T) {
	r := New(Options{CacheDir: t.TempDir()})
	req := step(fixture(t, "native.wasm"), "spin")
	req.Timeout = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), req, &testHost{})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	must(t, r.Close())
	must(t, r.Close())
	if _, err := r.Run(context.Background(), step(fixture(t, "native.wasm"), "noop"), &testHost{}); err == nil ||
		!strings.Contains(err.Error(), "closed") {
		t.Errorf("Run after Close: %v", err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Errorf("running step: %v", err)
	}
	if problems := r.CheckStep(context.Background(), req); len(problems) != 1 || !strings.Contains(problems[0], "closed") {
		t.Errorf("CheckStep after Close: %q", problems)
	}
}
