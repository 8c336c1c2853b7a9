// Package node runs JavaScript steps on warm Node.js workers.
//
// The contract is the reference's: the step defines run(); it is called
// with no argument for a root step and run(inputs) otherwise; `inputs`,
// `outputResult` and `process` are in scope; a null/undefined result is {}, a
// primitive p is {"value": p}; the output is then parsed from everything the
// step printed plus the result line (see ParseOutput). Fixes over the
// reference: an async run is awaited, inputs cannot inject code, what the
// step prints reaches its log, and errors carry the workflow-file line.
//
// require('hwe') inside a step gives the host API (log, progress, kv_get,
// kv_put, secret, http_fetch), each call checked against the step's grant by
// the host. The functions return Promises (the worker reaches the host
// asynchronously); a refused call rejects with hwe.DeniedError naming the
// capability. The module is guest-sdks/javascript/hwe.js (documented
// there); each step gets a fresh instance.
//
// Nothing a step starts outlives it: the worker kills what the step left
// before replying (worker.js says how; without the sandbox's PID namespace
// a process that left the worker's process group, with setsid, and lost
// its parent escapes that). A result line larger than the grant's
// max_output (proc.MaxOutput) fails with an output limit error before it
// leaves the worker; of what the step prints, up to max_output is kept
// for the output rules, and past that only the last JSON line.
package node

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

	javascriptsdk "github.com/hwe-run/hwe/guest-sdks/javascript"
	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/warm"
	"github.com/hwe-run/hwe/plugins/proc"
)

// Version is reported by `hwe plugins list`.
const Version = "1.0.0"

//go:embed worker.js
var workerScript string

// Options configure a Runner. The zero value is ready to use.
type Options struct {
	// Interpreter is the node binary. "" means /usr/bin/node if it exists,
	// else node on PATH; either way it is resolved once, through
	// process.execPath, to the real binary.
	Interpreter string

	proc.WorkerOptions
}

// Runner runs JavaScript steps. It implements api.Runner, api.StepChecker
// and api.Closer, and is safe for concurrent use.
type Runner struct {
	opts    Options
	scratch *proc.Scratch
	pool    *warm.Pool

	resolveOnce sync.Once
	interpreter string
	version     string // e.g. "v20.20.2"
	resolveErr  error
}

// New returns a JavaScript runner. Nothing starts until the first step.
func New(opts Options) *Runner {
	r := &Runner{opts: opts, scratch: &proc.Scratch{Root: opts.ScratchDir}}
	r.pool = warm.NewPool(warm.ConfigFor("node", r.workerCmd, r.scratch, opts.WorkerOptions))
	return r
}

// Info implements api.Runner.
func (r *Runner) Info() api.RunnerInfo {
	v := Version
	if err := r.resolve(); err == nil {
		v += " (Node.js " + r.version + ")"
	}
	return api.RunnerInfo{Name: "node", Languages: []string{api.LangJavaScript}, Version: v, Kind: "builtin"}
}

// Interpreter returns the resolved node binary.
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
	OK         bool    `json:"ok"`
	ResultLine *string `json:"result_line"` // what the reference's trailer prints; nil after process.exit(0)
	Message    string  `json:"message"`     // on failure
	Line       int     `json:"line"`        // on failure: where (workflow-file line if CodeLine is set)
	Trace      string  `json:"trace"`
	Limit      string  `json:"limit"` // on failure: "output" when the result was larger than max_output
	Size       int64   `json:"size"`  // ... and its size in bytes
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
	// The output is parsed from what the step printed, so stdout is kept up
	// to the output limit; past it, only the last line that is JSON.
	maxOutput := proc.MaxOutput(req.Grant)
	var past lastJSONLine
	stdout := &proc.Capture{Limit: int(maxOutput) + 1, Overflow: past.watch, MayBeOutput: startsJSONValue}
	raw, err := r.pool.DoCapture(ctx, req, build, host, stdout)
	if err != nil {
		return nil, err
	}
	rep, err := decodeReply(raw)
	if err != nil {
		return nil, err
	}
	if !rep.OK && rep.Limit == "output" {
		return nil, proc.OutputLimitError(rep.Size, maxOutput, false)
	}
	if !rep.OK {
		return nil, stepError(req, rep)
	}
	if rep.ResultLine != nil {
		// The reference prints the result after whatever the step printed.
		stdout.AddLine(proc.Line{Text: *rep.ResultLine, Complete: true})
	}
	if !stdout.Truncated {
		return ParseOutput(stdout.String())
	}
	// More was printed than the output may hold: only a JSON line can
	// still be the output (rule 3 of ParseOutput).
	found := past.value
	if found == nil {
		found = lastJSONValueLine(stdout.String())
	}
	if found == nil || string(found) == "{}" {
		return nil, proc.OutputLimitError(int64(stdout.Len()), maxOutput, true)
	}
	return found, nil
}

// lastJSONLine follows the lines a step printed past what its capture
// keeps, for the last one that is a JSON value.
type lastJSONLine struct{ value json.RawMessage }

func (l *lastJSONLine) watch(line proc.Line) {
	if line.Cut() {
		return // too long to be the output anyway
	}
	if v := jsonValueLine(line.Text); v != nil {
		l.value = v
	}
}

// startsJSONValue reports whether a line that starts with start may be a
// JSON value.
func startsJSONValue(start []byte) bool {
	c := proc.FirstNonSpace(start)
	return c != 0 && strings.IndexByte(`{["-0123456789tfn`, c) >= 0
}

// jsonValueLine is the trimmed line as canonical JSON, or nil if it is not
// a JSON value.
func jsonValueLine(line string) json.RawMessage {
	line = strings.TrimSpace(line)
	if !startsJSONValue([]byte(line[:min(len(line), 1)])) {
		return nil // cannot start a JSON value: skip the parse
	}
	v, err := api.Canonicalize([]byte(line))
	if err != nil {
		return nil
	}
	return v
}

// lastJSONValueLine is the last line of text that is a JSON value, or nil.
func lastJSONValueLine(text string) json.RawMessage {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if v := jsonValueLine(lines[i]); v != nil {
			return v
		}
	}
	return nil
}

// CheckStep implements api.StepChecker: it compiles the code without running
// it.
func (r *Runner) CheckStep(ctx context.Context, req *api.StepRequest) []string {
	if err := r.resolve(); err != nil {
		return []string{err.Error()}
	}
	check := func(string) map[string]any {
		return map[string]any{"op": "check", "step": req.Step, "code": req.Code, "filename": codeFilename(req), "line": req.CodeLine}
	}
	raw, _, err := r.pool.Do(ctx, req, check, nil, false)
	if err != nil {
		return []string{err.Error()}
	}
	rep, err := decodeReply(raw)
	if err != nil {
		return []string{err.Error()}
	}
	if !rep.OK {
		return []string{stepError(req, rep).Error()}
	}
	return nil
}

func decodeReply(raw []byte) (*reply, error) {
	var rep reply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("runner node: bad reply from worker: %w", err)
	}
	return &rep, nil
}

func stepError(req *api.StepRequest, rep *reply) error {
	e := &api.StepError{Message: rep.Message, Trace: rep.Trace}
	if rep.Line > 0 && req.CodeLine > 0 && req.WorkflowFile != "" {
		e.File, e.Line = req.WorkflowFile, rep.Line
	}
	return e
}

// ParseOutput applies the reference's rules to what a step printed (its
// stdout with the result line last), trimmed:
//  1. empty → {}
//  2. the whole text is one JSON value → that value
//  3. else the last line that is a JSON value
//  4. if that is {} or nothing parsed → {"output": <text>, "raw": true}
func ParseOutput(stdout string) (json.RawMessage, error) {
	text := strings.TrimSpace(stdout)
	if text == "" {
		return json.RawMessage("{}"), nil
	}
	if v, err := api.Canonicalize([]byte(text)); err == nil {
		return v, nil
	}
	found := lastJSONValueLine(text)
	if found == nil || string(found) == "{}" {
		return api.MarshalCanonical(map[string]any{"output": text, "raw": true})
	}
	return found, nil
}

func codeFilename(req *api.StepRequest) string {
	if req.WorkflowFile != "" && req.CodeLine > 0 {
		return req.WorkflowFile
	}
	return "step " + req.Step
}

func (r *Runner) workerCmd() (*exec.Cmd, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	return &exec.Cmd{
		Path: r.interpreter,
		// argv[1] is the hwe module's source (the worker loads it per step).
		Args: []string{r.interpreter, "-e", workerScript, javascriptsdk.Module},
		Env:  proc.Env(r.opts.PATH, "/", nil, nil), // each step sets its own
	}, nil
}

var errNoNode = errors.New("Node.js is not installed or not available in PATH. Please install Node.js to run JavaScript steps.")

func (r *Runner) resolve() error {
	r.resolveOnce.Do(func() {
		candidate := r.opts.Interpreter
		if candidate == "" {
			if isExecutable("/usr/bin/node") {
				candidate = "/usr/bin/node"
			} else if p, err := exec.LookPath("node"); err == nil {
				candidate = p
			} else {
				r.resolveErr = errNoNode
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, candidate, "-p", "process.execPath + '\\n' + process.version").Output()
		if err != nil {
			r.resolveErr = fmt.Errorf("runner node: cannot run %s: %w (%v)", candidate, err, errNoNode)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 {
			r.resolveErr = fmt.Errorf("runner node: unexpected answer from %s: %q", candidate, out)
			return
		}
		r.interpreter, r.version = strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
		if !isExecutable(r.interpreter) {
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
