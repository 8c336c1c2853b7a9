package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/hwe-run/hwe/host/api"
)

// runReference runs a step in the reference convention: a fresh instance
// per step (as the reference did, so no state carries over; instantiating a
// small module costs microseconds), the function's status code mapped to
// the reference's result object and return-code rules.
func (r *Runner) runReference(ctx context.Context, req *api.StepRequest, host api.Host, m *module, fn string, shape callShape, lim limits) (json.RawMessage, error) {
	inputCount := len(req.Inputs)
	host.Log("stdout", fmt.Sprintf("Executing WASM function '%s' from module '%s'", fn, req.Module))
	host.Log("stdout", fmt.Sprintf("Input data available: %d items", inputCount))

	rc, err := r.callReference(ctx, req, host, m, fn, shape, lim, inputCount)
	if err != nil {
		return nil, err
	}
	host.Log("stdout", fmt.Sprintf("WASM function completed with return code: %d", rc))
	return referenceResult(req, fn, rc, time.Now())
}

func (r *Runner) callReference(ctx context.Context, req *api.StepRequest, host api.Host, m *module, fn string, shape callShape, lim limits, inputCount int) (int32, error) {
	rt, err := r.plainRuntime(ctx)
	if err != nil {
		return 0, err
	}
	callCtx, cancel := context.WithTimeout(ctx, lim.timeout)
	defer cancel()

	watch := newMemoryWatch(lim.pages)
	stdout, stderr := &lineWriter{stream: "stdout"}, &lineWriter{stream: "stderr", watch: watch}
	stdout.start(host)
	stderr.start(host)
	defer stdout.finish()
	defer stderr.finish()
	cfg, closeFS, err := r.moduleConfig(req, stdout, stderr, &guestSleeper{ctx: callCtx})
	if err != nil {
		return 0, err
	}
	defer closeFS()

	// Anonymous, so any number of instances of one module can coexist; no
	// start function runs at instantiation (its time would not count
	// against the call), a WASI reactor's _initialize is called below.
	inst, err := rt.InstantiateModule(watch.context(callCtx), m.compiled, cfg.WithName("").WithStartFunctions())
	if err != nil {
		if f := r.callFailure(ctx, callCtx, watch, fn, lim, err); !isTrap(f) {
			return 0, f
		}
		return 0, &api.StepError{Message: fmt.Sprintf("Failed to instantiate WASM module '%s': %s", req.Module, firstLine(err)), Trace: err.Error()}
	}
	defer inst.Close(context.Background())
	if watch.exceeded() {
		return 0, memoryError(fn, lim, errors.New("its initial memory is larger than the limit"))
	}
	if init := inst.ExportedFunction("_initialize"); init != nil && len(init.Definition().ParamTypes()) == 0 {
		if _, err := init.Call(callCtx); err != nil {
			return 0, r.callFailure(ctx, callCtx, watch, "_initialize", lim, err)
		}
	}

	f := inst.ExportedFunction(fn)
	var results []uint64
	if shape == shapeTakesCount {
		// The reference passed an undefined value here; hwe passes the
		// number of inputs, so a module can tell a root step from others.
		results, err = f.Call(callCtx, uint64(uint32(inputCount)))
	} else {
		results, err = f.Call(callCtx)
	}
	// An unterminated last line of stderr may be the guest's report of
	// running out of memory: flush it before deciding what went wrong.
	stdout.finish()
	stderr.finish()
	if err != nil {
		// A WASI guest that calls proc_exit(n) returns n as its code,
		// unless it said it ran out of memory and exits with a failure.
		var exit *sys.ExitError
		if errors.As(err, &exit) && callCtx.Err() == nil && ctx.Err() == nil {
			if exit.ExitCode() != 0 && watch.guestReport() != "" {
				return 0, guestMemoryError(fn, lim, watch.guestReport(), err)
			}
			return int32(exit.ExitCode()), nil
		}
		return 0, r.callFailure(ctx, callCtx, watch, fn, lim, err)
	}
	if len(results) == 1 {
		return int32(uint32(results[0])), nil
	}
	return 0, nil // () -> (): returning is success
}

// referenceResult builds the reference's result object, or its error for a
// return code outside 0..10.
func referenceResult(req *api.StepRequest, fn string, rc int32, now time.Time) (json.RawMessage, error) {
	var status string
	var processed map[string]any
	stamp := rfc3339Chrono(now)
	switch {
	case rc == 0:
		status = "success"
		processed = map[string]any{
			"success":   true,
			"message":   "WASM processing completed successfully",
			"timestamp": stamp,
		}
	case rc >= 1 && rc <= 10:
		// A warning: the step still succeeds.
		status = "error"
		processed = map[string]any{
			"warning":   true,
			"message":   fmt.Sprintf("WASM processing completed with warning code %d", rc),
			"timestamp": stamp,
		}
	default:
		return nil, &api.StepError{Message: fmt.Sprintf("WASM function '%s' failed with return code: %d", fn, rc)}
	}
	out := map[string]any{
		"wasm_execution": map[string]any{
			"module":      req.Module,
			"function":    fn,
			"return_code": rc,
			"status":      status,
			"input_count": len(req.Inputs),
		},
		"processed_data": processed,
	}
	if len(req.Inputs) > 0 {
		summary := map[string]string{}
		for name, value := range req.Inputs {
			summary[name] = describeValue(value)
		}
		out["input_summary"] = summary
	}
	return api.MarshalCanonical(out)
}

// describeValue summarises one input like the reference: object[keys],
// array[len], string[bytes], number[n], bool[b] or null.
func describeValue(raw json.RawMessage) string {
	v, err := api.DecodeJSON(raw)
	if err != nil {
		return "null"
	}
	switch v := v.(type) {
	case map[string]any:
		return fmt.Sprintf("object[%d]", len(v))
	case []any:
		return fmt.Sprintf("array[%d]", len(v))
	case string:
		return fmt.Sprintf("string[%d]", len(v))
	case json.Number:
		return "number[" + v.String() + "]"
	case bool:
		return fmt.Sprintf("bool[%t]", v)
	}
	return "null"
}

// rfc3339Chrono formats t in UTC like Rust chrono's to_rfc3339: "+00:00",
// and 0, 3, 6 or 9 fractional digits, the fewest that are exact.
func rfc3339Chrono(t time.Time) string {
	t = t.UTC()
	frac := ""
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		frac = fmt.Sprintf(".%03d", ns/1_000_000)
	case ns%1_000 == 0:
		frac = fmt.Sprintf(".%06d", ns/1_000)
	default:
		frac = fmt.Sprintf(".%09d", ns)
	}
	return t.Format("2006-01-02T15:04:05") + frac + "+00:00"
}

// callFailure explains why a call into a guest failed: the step's context
// ended (cancelled, or the engine's deadline), the call's own timeout, the
// memory cap, or a trap in the guest.
func (r *Runner) callFailure(ctx, callCtx context.Context, watch *memoryWatch, fn string, lim limits, err error) error {
	switch {
	case ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", &api.LimitError{Limit: "timeout",
				Detail: fmt.Sprintf("WASM function '%s' was stopped at the step's deadline", fn)}, ctx.Err())
		}
		return fmt.Errorf("WASM function '%s' was stopped: %w", fn, ctx.Err())
	case callCtx.Err() != nil:
		return fmt.Errorf("%w: %w", &api.LimitError{Limit: "timeout",
			Detail: fmt.Sprintf("WASM function '%s' did not finish within %s and was stopped", fn, lim.timeout)}, callCtx.Err())
	case watch.exceeded():
		return memoryError(fn, lim, err)
	case watch.guestReport() != "":
		return guestMemoryError(fn, lim, watch.guestReport(), err)
	}
	return &api.StepError{Message: fmt.Sprintf("WASM function '%s' trapped: %s", fn, firstLine(err)), Trace: err.Error()}
}

func memoryError(fn string, lim limits, cause error) error {
	return &api.LimitError{Limit: "memory", Detail: fmt.Sprintf(
		"WASM function '%s' needed more than its memory limit of %s (%s)", fn, formatBytes(lim.memoryBytes()), firstLine(cause))}
}

// guestMemoryError is the error for a guest whose own allocator gave up
// (see memoryWatch): what it asked for was more than the cap would have
// given it, or more than a 32-bit memory holds, so it is the memory limit
// that stopped it, even though no grow reached the cap.
func guestMemoryError(fn string, lim limits, report string, cause error) error {
	return &api.LimitError{Limit: "memory", Detail: fmt.Sprintf(
		"WASM function '%s' ran out of memory (its memory limit is %s): the guest reported %q (%s)",
		fn, formatBytes(lim.memoryBytes()), report, firstLine(cause))}
}

func isTrap(err error) bool {
	var se *api.StepError
	return errors.As(err, &se)
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
