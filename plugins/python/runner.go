// Package python runs Python steps on warm interpreter workers.
//
// A step's code runs in fresh globals (one dict used as globals and locals,
// so top-level imports and helpers are visible inside run), then run() is
// called with no argument for a root step and run(inputs) otherwise. The
// return value goes through json.dumps; a dump that is not strict JSON (NaN,
// Infinity) becomes a JSON string, exactly as the reference does. Exceptions
// become step errors like "ZeroDivisionError: division by zero" with the
// line in the workflow file.
//
// `import hwe` inside a step gives the host API (log, progress, kv_get,
// kv_put, secret, http_fetch), each call checked against the step's grant by
// the host; a refused call raises hwe.DeniedError naming the capability. The
// module is guest-sdks/python/hwe.py (documented there); each step gets a
// fresh copy, connected to its own host through the worker protocol.
//
// Workers are kept per tenant and grant (see plugins/internal/warm), never
// shared across tenants, and start with an empty environment. Nothing a
// step starts outlives it: copies of the worker made by os.fork() end when
// run() returns in them, without a word to the host, and every process the
// step left is killed before its reply (worker.py says how, with and
// without the sandbox's PID namespace). A result larger than the grant's
// max_output (proc.MaxOutput) fails with an output limit error before it
// leaves the worker.
package python

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	pythonsdk "github.com/hwe-run/hwe/guest-sdks/python"
	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/warm"
	"github.com/hwe-run/hwe/plugins/proc"
)

// Version is reported by `hwe plugins list`.
const Version = "1.0.0"

//go:embed worker.py
var workerScript string

// Options configure a Runner. The zero value is ready to use.
type Options struct {
	// Interpreter is the python3 to run. "" means /usr/bin/python3 if it
	// exists, else python3 on PATH. Either way it is resolved once, through
	// sys.executable, to the real binary, so a pyenv-style shim (which adds
	// ~100 ms per start) is never in the path of a step.
	Interpreter string

	proc.WorkerOptions
}

// Runner runs Python steps. It implements api.Runner, api.StepChecker and
// api.Closer, and is safe for concurrent use.
type Runner struct {
	opts    Options
	scratch *proc.Scratch
	pool    *warm.Pool

	resolveOnce sync.Once
	interpreter string // the real binary
	version     string // e.g. "3.11.2"
	resolveErr  error
}

// New returns a Python runner. Nothing starts until the first step.
func New(opts Options) *Runner {
	r := &Runner{opts: opts, scratch: &proc.Scratch{Root: opts.ScratchDir}}
	r.pool = warm.NewPool(warm.ConfigFor(api.LangPython, r.workerCmd, r.scratch, opts.WorkerOptions))
	return r
}

// Info implements api.Runner.
func (r *Runner) Info() api.RunnerInfo {
	v := Version
	if err := r.resolve(); err == nil {
		v += " (Python " + r.version + ")"
	}
	return api.RunnerInfo{Name: "python", Languages: []string{api.LangPython}, Version: v, Kind: "builtin"}
}

// Interpreter returns the resolved interpreter path.
func (r *Runner) Interpreter() (string, error) {
	if err := r.resolve(); err != nil {
		return "", err
	}
	return r.interpreter, nil
}

// Close ends every worker and removes the runner's scratch folders.
func (r *Runner) Close() error {
	err := r.pool.Close()
	if serr := r.scratch.Close(); err == nil {
		err = serr
	}
	return err
}

// reply is what the worker sends back for one step.
type reply struct {
	OK      bool   `json:"ok"`
	Dump    string `json:"dump"`    // json.dumps(result) on success
	Message string `json:"message"` // on failure
	Line    int    `json:"line"`    // workflow-file line (code line if CodeLine is 0)
	Trace   string `json:"trace"`
	Limit   string `json:"limit"` // on failure: "output" when the result was larger than max_output
	Size    int64  `json:"size"`  // ... and its size in bytes
}

// Run implements api.Runner.
func (r *Runner) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	if host == nil {
		host = api.NopHost{}
	}
	build := func(dir string) map[string]any {
		return map[string]any{
			"step":       req.Step,
			"code":       req.Code,
			"filename":   codeFilename(req),
			"line":       req.CodeLine,
			"has_inputs": req.HasInputs(),
			"inputs":     req.InputsJSON(),
			"cwd":        dir,
			"env":        proc.EnvMap(r.opts.PATH, dir, req.Env),
		}
	}
	rep, err := r.exchange(ctx, req, build, host)
	if err != nil {
		return nil, err
	}
	if !rep.OK && rep.Limit == "output" {
		return nil, proc.OutputLimitError(rep.Size, proc.MaxOutput(req.Grant), false)
	}
	if !rep.OK {
		return nil, stepError(req, rep)
	}
	return convertDump(rep.Dump)
}

// CheckStep implements api.StepChecker: it compiles the code without running
// it, so a syntax error is reported before the workflow starts.
func (r *Runner) CheckStep(ctx context.Context, req *api.StepRequest) []string {
	if err := r.resolve(); err != nil {
		return []string{err.Error()}
	}
	check := func(string) map[string]any {
		return map[string]any{"op": "check", "code": req.Code, "filename": codeFilename(req), "line": req.CodeLine}
	}
	rep, err := r.exchange(ctx, req, check, nil)
	if err != nil {
		return []string{err.Error()}
	}
	if !rep.OK {
		return []string{stepError(req, rep).Error()}
	}
	return nil
}

func (r *Runner) exchange(ctx context.Context, req *api.StepRequest, build func(dir string) map[string]any, host api.Host) (*reply, error) {
	raw, _, err := r.pool.Do(ctx, req, build, host, false)
	if err != nil {
		return nil, err
	}
	var rep reply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("runner python: bad reply from worker: %w", err)
	}
	return &rep, nil
}

// convertDump turns json.dumps output into the step's output: strict JSON
// as is (canonical form), anything else (NaN, Infinity) as a JSON string of
// the dump, as the reference does.
func convertDump(dump string) (json.RawMessage, error) {
	if out, err := api.Canonicalize([]byte(dump)); err == nil && strings.TrimSpace(dump) != "" {
		return out, nil
	}
	return api.MarshalCanonical(dump)
}

func stepError(req *api.StepRequest, rep *reply) error {
	e := &api.StepError{Message: rep.Message, Trace: rep.Trace}
	if rep.Line > 0 && req.CodeLine > 0 && req.WorkflowFile != "" {
		e.File, e.Line = req.WorkflowFile, rep.Line
	}
	return e
}

// codeFilename is the name tracebacks show for step code: the workflow file
// (its lines are the file's lines, so tracebacks even quote the source), or
// a readable stand-in.
func codeFilename(req *api.StepRequest) string {
	if req.WorkflowFile != "" && req.CodeLine > 0 {
		return req.WorkflowFile
	}
	return "<step " + req.Step + ">"
}

func (r *Runner) workerCmd() (*exec.Cmd, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path: r.interpreter,
		// -I: ignore PYTHON* variables and the user's site-packages, and
		// keep the current folder off sys.path.
		// argv[1] is the hwe module's source (the worker installs it per step).
		Args: []string{r.interpreter, "-I", "-c", workerScript, pythonsdk.Module},
		Env:  proc.Env(r.opts.PATH, "/", nil, nil), // each step sets its own
	}
	return cmd, nil
}

// errNoPython is what a step gets when no interpreter can be found.
var errNoPython = errors.New("Python 3 is not installed or not available in PATH. Please install python3 (or set the python interpreter option) to run Python steps.")

// resolve finds the real interpreter once.
func (r *Runner) resolve() error {
	r.resolveOnce.Do(func() {
		candidate := r.opts.Interpreter
		if candidate == "" {
			if isExecutable("/usr/bin/python3") {
				candidate = "/usr/bin/python3"
			} else if p, err := exec.LookPath("python3"); err == nil {
				candidate = p
			} else {
				r.resolveErr = errNoPython
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// This one command runs with hwe's environment: a shim needs it to
		// find its interpreter. Steps never do.
		out, err := exec.CommandContext(ctx, candidate, "-I", "-c",
			"import sys; print(sys.executable); print(sys.version.split()[0]); print(sys.version_info[0])").Output()
		if err != nil {
			r.resolveErr = fmt.Errorf("runner python: cannot run %s: %w (%v)", candidate, err, errNoPython)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 3 || lines[2] != "3" {
			r.resolveErr = fmt.Errorf("runner python: %s is not Python 3", candidate)
			return
		}
		r.interpreter, r.version = strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
		if r.interpreter == "" || !isExecutable(r.interpreter) {
			r.interpreter = candidate
		}
	})
	return r.resolveErr
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

var (
	_ api.Runner      = (*Runner)(nil)
	_ api.StepChecker = (*Runner)(nil)
	_ api.Closer      = (*Runner)(nil)
)
