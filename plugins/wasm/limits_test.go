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
