package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	extism "github.com/extism/go-sdk"

	"github.com/hwe-run/hwe/host/api"
)

// instance is one instantiated native module (its Extism kernel and the
// guest). It is used by one step at a time; between steps it waits in its
// module's pool.
type instance struct {
	plugin         *extism.Plugin
	watch          *memoryWatch
	stdout, stderr *lineWriter
	sleeper        *guestSleeper
	logHost        api.Host // the step using the instance, for Extism log calls
	scope          string
	closeFS        func()
}

func (inst *instance) close() {
	_ = inst.plugin.Close(context.Background())
	inst.closeFS()
}

// scopeOf says which steps may reuse each other's instances: only runs of
// the same step (tenant, workflow and step name) with the same grant and
// environment. A guest's memory and globals survive between calls of one
// instance, and so does code it left running: a goroutine a Go guest
// started runs again whenever its instance runs code, and can read that
// call's input. Keying reuse by step means whatever a step leaves behind
// can only ever meet a later run of that same step (its retry, or the
// next run of its workflow), never another step, another workflow's step
// or another tenant's, nor a step allowed something it is not (a secret,
// a file). Everything fixed at instantiation (environment, mounts) is in
// the scope too. Steps with Isolation "process" always get a fresh
// instance.
func scopeOf(req *api.StepRequest) string {
	env := make([]string, 0, len(req.Env))
	for k, v := range req.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	b, _ := json.Marshal(struct {
		Tenant, Workflow, Step string
		Grant                  api.Grant
		Env                    []string
	}{req.Tenant, req.Workflow, req.Step, req.Grant, env})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// newInstance instantiates a native module for a step's scope.
func (r *Runner) newInstance(ctx context.Context, req *api.StepRequest, m *module, fn string, lim limits, scope string) (*instance, error) {
	watch := newMemoryWatch(lim.pages)
	inst := &instance{
		watch:   watch,
		stdout:  &lineWriter{stream: "stdout"},
		stderr:  &lineWriter{stream: "stderr", watch: watch},
		sleeper: &guestSleeper{},
		scope:   scope,
	}
	cfg, closeFS, err := r.moduleConfig(req, inst.stdout, inst.stderr, inst.sleeper)
	if err != nil {
		return nil, err
	}
	inst.closeFS = closeFS
	inst.plugin, err = m.plugin.Instance(inst.watch.context(ctx), extism.PluginInstanceConfig{ModuleConfig: cfg})
	if err != nil {
		closeFS()
		if inst.watch.exceeded() {
			return nil, memoryError(fn, lim, err)
		}
		return nil, &api.StepError{Message: fmt.Sprintf("Failed to instantiate WASM module '%s': %s", req.Module, firstLine(err)), Trace: err.Error()}
	}
	if inst.watch.exceeded() {
		inst.close()
		return nil, memoryError(fn, lim, errors.New("its initial memory is larger than the limit"))
	}
	inst.plugin.SetLogger(func(level extism.LogLevel, msg string) {
		inst.watch.noteGuestOutput([]byte(msg))
		if inst.logHost != nil {
			inst.logHost.Log("log", strings.ToLower(level.String())+": "+msg)
		}
	})
	return inst, nil
}

// runNative runs a step in the native convention: inputs as JSON in, the
// guest's output parsed as JSON out, the guest's error as the step's error.
func (r *Runner) runNative(ctx context.Context, req *api.StepRequest, host api.Host, m *module, fn string, lim limits) (json.RawMessage, error) {
	input := []byte(req.InputsJSON())
	if int64(len(input)) > lim.maxInput {
		return nil, &api.LimitError{Limit: "input", Detail: fmt.Sprintf(
			"the inputs of WASM step '%s' are %d bytes of JSON; the limit is %s (at most half the step's %s memory limit, and at most %s)",
			req.Step, len(input), formatBytes(lim.maxInput), formatBytes(lim.memoryBytes()), formatBytes(r.opts.MaxInputBytes))}
	}

	scope := scopeOf(req)
	reusable := req.Isolation != "process"
	var inst *instance
	if reusable {
		inst = m.pool.get(scope)
	}
	if inst == nil {
		var err error
		if inst, err = r.newInstance(ctx, req, m, fn, lim, scope); err != nil {
			return nil, err
		}
	}

	callCtx, cancel := context.WithTimeout(ctx, lim.timeout)
	defer cancel()
	state := &callState{host: host, maxMessage: lim.maxHost}
	inst.watch.reset()
	inst.logHost, inst.sleeper.ctx = host, callCtx
	inst.stdout.start(host)
	inst.stderr.start(host)
	rc, out, err := inst.plugin.CallWithContext(withCallState(callCtx, state), fn, input)
	inst.stdout.finish()
	inst.stderr.finish()
	inst.logHost, inst.sleeper.ctx = nil, nil

	// A guest that failed by setting an error returned normally: its
	// instance is intact. Any other error (trap, timeout, memory) may have
	// left it broken or closed, so it is thrown away.
	guestMsg, trapMsg := "", ""
	if err != nil && callCtx.Err() == nil && !inst.watch.exceeded() {
		switch msg := inst.plugin.GetErrorWithContext(callCtx); {
		case msg == "":
		case msg == err.Error():
			guestMsg = msg
		default:
			trapMsg = msg // set just before trapping, e.g. by an abort handler
			inst.watch.noteGuestOutput([]byte(msg))
		}
	}
	// A guest that said it ran out of memory and then trapped fails with
	// a memory error (callFailure), whatever else it said.
	if inst.watch.guestReport() != "" {
		trapMsg = ""
	}
	if (err == nil || guestMsg != "") && reusable {
		m.pool.put(inst)
	} else {
		inst.close()
	}

	switch {
	case guestMsg != "":
		return nil, guestFailure(guestMsg, state.denied)
	case trapMsg != "":
		return nil, withDenials(&api.StepError{
			Message: fmt.Sprintf("WASM function '%s' trapped: %s (%s)", fn, trapMsg, firstLine(err)),
			Trace:   err.Error()}, state.denied)
	case err != nil:
		f := r.callFailure(ctx, callCtx, inst.watch, fn, lim, err)
		if strings.Contains(err.Error(), "HTTP request to") && strings.Contains(err.Error(), "is not allowed") {
			f = &api.StepError{Message: fmt.Sprintf(
				"WASM function '%s' used Extism's http_request, which hwe does not allow; use hwe_v1_http_fetch (%s)", fn, firstLine(err)),
				Trace: err.Error()}
		}
		return nil, withDenials(f, state.denied)
	case rc != 0:
		return nil, guestFailure(fmt.Sprintf("WASM function '%s' failed with return code: %d", fn, int32(rc)), state.denied)
	}
	if int64(len(out)) > lim.maxOutput {
		return nil, &api.LimitError{Limit: "output", Detail: fmt.Sprintf(
			"WASM function '%s' produced %d bytes of output; the limit is %s", fn, len(out), formatBytes(lim.maxOutput))}
	}
	result, err := api.Canonicalize(out)
	if err != nil {
		return nil, &api.StepError{Message: fmt.Sprintf("WASM function '%s' returned output that is not JSON: %v (output starts %q)", fn, err, preview(out))}
	}
	return result, nil
}

// guestFailure is the step error for a guest that reported failure; if a
// host call was denied during the call, the error names the capability.
func guestFailure(msg string, denied []*api.DeniedError) error {
	return withDenials(&api.StepError{Message: msg}, denied)
}

// deniedStepError is a step failure that followed a denied host call. It
// unwraps to both, so callers can find the *api.StepError and the
// *api.DeniedError.
type deniedStepError struct {
	err    error
	denied *api.DeniedError
	msg    string
}

func (e *deniedStepError) Error() string   { return e.msg }
func (e *deniedStepError) Unwrap() []error { return []error{e.err, e.denied} }

func withDenials(err error, denied []*api.DeniedError) error {
	if len(denied) == 0 {
		return err
	}
	d := denied[len(denied)-1]
	msg := err.Error()
	if !strings.Contains(msg, d.Error()) {
		msg += " (after a denied host call: " + d.Error() + ")"
	}
	var se *api.StepError
	if errors.As(err, &se) {
		// Keep it a plain *api.StepError at the top, so the message shown
		// is the full one.
		return &deniedStepError{err: &api.StepError{Message: msg, Trace: se.Trace}, denied: d, msg: msg}
	}
	return &deniedStepError{err: err, denied: d, msg: msg}
}

func preview(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}
