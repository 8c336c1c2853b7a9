// Package lua runs Lua steps in-process on gopher-lua, in a sandbox: only the
// string, table, math and (time-only) os libraries, a fresh global
// environment per step, the context deadline enforced inside the VM, a heap
// watchdog, and every VM panic contained to the step that caused it.
package lua

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/luasafe"
	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Version is reported by `hwe plugins list`.
const Version = "1.0.0"

// Options configure a Runner.
type Options struct {
	// MemoryLimit is how far the Go heap may grow while Lua steps run before
	// they are stopped (default 1 GiB). gopher-lua has no per-state heap
	// accounting, so this is a process-wide guard.
	MemoryLimit int64
}

// Runner runs Lua steps. It is safe for concurrent use.
type Runner struct {
	states chan *glua.LState // idle states, each used by one step at a time
	protos sync.Map          // code -> *glua.FunctionProto (compiled once)
	guard  *memoryGuard
}

// New returns a Lua runner.
func New(opts Options) *Runner {
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = 1 << 30
	}
	// A bounded channel, not a sync.Pool: the pool drops its states at every
	// GC and a new sandboxed state costs ~300 µs.
	return &Runner{guard: newMemoryGuard(opts.MemoryLimit), states: make(chan *glua.LState, 2*runtime.GOMAXPROCS(0))}
}

// Info implements api.Runner.
func (r *Runner) Info() api.RunnerInfo {
	return api.RunnerInfo{Name: "lua", Languages: []string{api.LangLua}, Version: Version + " (gopher-lua, Lua 5.1)", Kind: "builtin"}
}

// CheckStep compiles the step's code so syntax errors are found before anything runs.
func (r *Runner) CheckStep(_ context.Context, req *api.StepRequest) []string {
	if _, err := r.compile(req); err != nil {
		return []string{err.Error()}
	}
	return nil
}

const chunkName = "step"

var syntaxErr = regexp.MustCompile(`line:(\d+)\(column:\d+\) near '(.*)':\s+(.*)`)

// compile returns the step's compiled chunk, compiling it at most once.
func (r *Runner) compile(req *api.StepRequest) (*glua.FunctionProto, error) {
	if p, ok := r.protos.Load(req.Code); ok {
		return p.(*glua.FunctionProto), nil
	}
	chunk, err := parse.Parse(strings.NewReader(rewriteFloorDiv(req.Code)), chunkName)
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		line := 0
		if m := syntaxErr.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = fmt.Sprintf("syntax error near '%s': %s", m[2], m[3])
		} else if strings.Contains(msg, "at EOF") {
			line = strings.Count(req.Code, "\n") + 1
			msg = "syntax error at end of code: " + strings.TrimSpace(msg[strings.Index(msg, "at EOF")+len("at EOF:"):])
		}
		return nil, stepError(req, line, msg)
	}
	proto, err := glua.Compile(chunk, chunkName)
	if err != nil {
		return nil, stepError(req, 0, err.Error())
	}
	r.protos.Store(req.Code, proto)
	return proto, nil
}

// stepError builds an error at a line of the step's code, mapped to the file line.
func stepError(req *api.StepRequest, codeLine int, msg string) error {
	e := &api.StepError{Message: msg}
	if codeLine > 0 && req.CodeLine > 0 && req.WorkflowFile != "" {
		e.File, e.Line = req.WorkflowFile, req.CodeLine+codeLine-1
	} else if codeLine > 0 {
		e.Message = fmt.Sprintf("line %d of step code: %s", codeLine, msg)
	}
	return e
}

var runtimeErr = regexp.MustCompile(`^` + chunkName + `:(\d+):\s*`)

// Run implements api.Runner.
func (r *Runner) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	proto, err := r.compile(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	release := r.guard.track(cancel, req.Grant.Memory)
	defer release()

	var L *glua.LState
	select {
	case L = <-r.states:
	default:
		L = luasafe.NewState()
	}
	var out json.RawMessage
	runErr, broken := luasafe.Protect(func() error {
		var err error
		out, err = r.runIn(ctx, L, proto, req, host)
		return err
	})
	if broken || ctx.Err() != nil {
		L.Close() // a state interrupted mid-call or after a VM panic is not reused
	} else {
		L.RemoveContext()
		L.SetTop(0)
		select {
		case r.states <- L:
		default:
			L.Close()
		}
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		var le *api.LimitError
		if errors.As(cause, &le) {
			return nil, le
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, runErr
}

func (r *Runner) runIn(ctx context.Context, L *glua.LState, proto *glua.FunctionProto, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	L.SetContext(ctx)
	env := luasafe.NewEnv(L)
	env.RawSetString("print", L.NewFunction(printTo(host)))
	env.RawSetString("hwe", hostModule(ctx, L, host))
	env.RawSetString(floorDivName, stateFloorDiv(L))

	fn := L.NewFunctionFromProto(proto)
	fn.Env = env
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		return nil, luaError(ctx, req, err)
	}
	run, ok := env.RawGetString("run").(*glua.LFunction)
	if !ok {
		return nil, &api.StepError{Message: fmt.Sprintf("Lua step '%s' does not define a function run (got %s)", req.Step, env.RawGetString("run").Type())}
	}
	L.Push(run)
	nargs := 0
	if req.HasInputs() {
		inputs, err := api.DecodeJSON(req.InputsJSON())
		if err != nil {
			return nil, fmt.Errorf("decoding inputs: %w", err)
		}
		L.Push(FromJSON(L, inputs))
		nargs = 1
	}
	if err := L.PCall(nargs, 1, nil); err != nil {
		return nil, luaError(ctx, req, err)
	}
	ret := L.Get(-1)
	L.Pop(1)
	out, err := ToJSON(ret)
	if err != nil {
		return nil, &api.StepError{Message: fmt.Sprintf("Lua step '%s' returned a value that is not JSON: %v", req.Step, err)}
	}
	return out, nil
}

// luaError turns a VM error into a step error at the file line where it happened.
func luaError(ctx context.Context, req *api.StepRequest, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := err.Error()
	var apiErr *glua.ApiError
	if errors.As(err, &apiErr) && apiErr.Object != nil {
		msg = apiErr.Object.String()
	}
	if i := strings.Index(msg, "\nstack traceback:"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if m := runtimeErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return stepError(req, line, msg[len(m[0]):])
	}
	return &api.StepError{Message: msg}
}

// printTo is Lua's print writing one log line per call to the step's log.
func printTo(host api.Host) glua.LGFunction {
	return func(L *glua.LState) int {
		var b bytes.Buffer
		for i := 1; i <= L.GetTop(); i++ {
			if i > 1 {
				b.WriteByte('\t')
			}
			b.WriteString(L.ToStringMeta(L.Get(i)).String())
		}
		for _, line := range strings.Split(b.String(), "\n") {
			host.Log("stdout", line)
		}
		return 0
	}
}

// stateFloorDiv returns the state's floor-division operator, made once.
func stateFloorDiv(L *glua.LState) glua.LValue {
	if op, ok := L.G.Registry.RawGetString(floorDivName).(*glua.LTable); ok {
		return op
	}
	op := floorDivOperator(L)
	L.G.Registry.RawSetString(floorDivName, op)
	return op
}
