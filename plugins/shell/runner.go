// Package shell runs shell steps (language shell, bash or sh) with bash, one
// process per step (bash starts in about a millisecond, so there is no pool).
//
// The contract is the reference's: the code runs under `set -e`; each
// dependency's output is in INPUT_<DEP> as compact JSON and `parse_input
// <dep>` prints it; a `run` function, if the code defines one, is called
// after the top level; the step's output is the first stdout line that is a
// JSON object on its own, otherwise {"exit_code":0,"stderr":…,"stdout":…}.
//
// Fixes over the reference: inputs travel as real environment variables, so
// a `'` in the data cannot break or inject into the script; a dependency
// name that is not a shell identifier (my-step) becomes INPUT_MY_STEP instead
// of failing, and parse_input maps names the same way; parse_input prints
// the value exactly (no word splitting or globbing); stdin is /dev/null; the
// step's output goes to its log; a failure reports its workflow-file line;
// nothing from hwe's environment reaches the step.
//
// The host API is the `hwe-host` command, first on the step's PATH (see
// hosthelper.go; `hwe-host help` lists its commands):
//
//	hwe-host log MESSAGE...            hwe-host progress FRACTION [MESSAGE...]
//	hwe-host kv-get KEY                hwe-host kv-put KEY [VALUE]   (no VALUE: stdin)
//	hwe-host secret NAME               hwe-host http-fetch [-X M] [-H 'N: v'] [-d BODY|@-] [--json] [--fail] URL
//
// Values print on stdout exactly; kv-get of a missing key exits 1; a call
// the grant refuses exits 77 and prints "hwe-host: capability NAME denied:
// ...", which under set -e fails the step with that message. Each step
// also gets a private folder of its own (where hwe-host lives, hidden as
// .hwe-bin and .hwe-host-*), which is also where it runs unless the engine
// gave the run a TempDir.
//
// Limits: what the step prints is kept up to the grant's max_output
// (proc.MaxOutput) and read line by line without holding more; a JSON
// line too long to keep is an output limit error, as is a fallback output
// that would hold more than that. A bash that dies of a fault (SIGSEGV,
// deep recursion) fails the step; one killed for its memory or CPU time
// fails it with the limit, when the spawn hook's sandbox can tell.
package shell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/proc"
)

// Version is reported by `hwe plugins list`.
const Version = "1.0.0"

// Options configure a Runner. The zero value is ready to use.
type Options struct {
	// Bash is the bash binary; "" = /bin/bash, /usr/bin/bash, or bash on PATH.
	Bash string

	// Spawn starts every step process; nil starts it directly. This is the
	// hook an OS sandbox wraps. Inside maps host folders to the paths a
	// sandboxed step sees them at (nil = the same).
	Spawn  proc.SpawnFunc
	Inside proc.InsideFunc

	// PATH is the PATH steps see; "" = proc.DefaultPATH.
	PATH string

	// ScratchDir is where a step's private folder is made when the engine
	// gives none; "" = the system temp folder.
	ScratchDir string
}

// Runner runs shell steps. It implements api.Runner, api.StepChecker and
// api.Closer, and is safe for concurrent use.
type Runner struct {
	opts    Options
	scratch *proc.Scratch

	resolveOnce sync.Once
	bash        string
	version     string
	resolveErr  error
}

// New returns a shell runner.
func New(opts Options) *Runner {
	return &Runner{opts: opts, scratch: &proc.Scratch{Root: opts.ScratchDir}}
}

// Info implements api.Runner.
func (r *Runner) Info() api.RunnerInfo {
	v := Version
	if err := r.resolve(); err == nil && r.version != "" {
		v += " (bash " + r.version + ")"
	}
	return api.RunnerInfo{Name: "shell", Languages: []string{api.LangShell}, Version: v, Kind: "builtin"}
}

// Close implements api.Closer: it removes the runner's scratch folders.
func (r *Runner) Close() error { return r.scratch.Close() }

// lineFD is the descriptor the ERR trap reports failing line numbers on.
// 3–9 are the descriptors scripts use for themselves; 9 is the least used.
const lineFD = 9

// errTrap is put in front of the code's first line (so line numbers do not
// move): it reports the line of every failing command on lineFD. With -E it
// also fires inside functions such as run.
const errTrap = `trap '{ printf "%s\n" "$LINENO" >&9; } 2>/dev/null' ERR; `

// trailer calls run if the code defined it, as the reference does.
const trailer = "\nif declare -f run > /dev/null; then\n  run\nfi\n"

// parseInput is the reference's helper, exported to bash as a function
// through the environment. It maps a step name to its variable the same way
// inputVar does and prints the value exactly as stored.
const parseInput = `() {  local v="INPUT_${1^^}"; v="${v//[^A-Z0-9_]/_}"; printf '%s\n' "${!v}"; }`

// Run implements api.Runner.
func (r *Runner) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	if host == nil {
		host = api.NopHost{}
	}
	// Every step has a private folder of its own, for hwe-host; it is also
	// where the step runs unless the engine gave the run a TempDir.
	own, err := r.scratch.MakeDir("step-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(own)
	dir := own
	if req.TempDir != "" {
		dir = req.TempDir
	}

	res, err := r.execute(ctx, req, dir, own, host)
	if err != nil {
		return nil, err
	}
	if res.state.Success() {
		return res.output(proc.MaxOutput(req.Grant))
	}
	// A limit the sandbox enforces (memory, CPU time) is what stopped it.
	var limit *api.LimitError
	if errors.As(res.explained, &limit) {
		return nil, limit
	}
	if ws, ok := res.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		hint, own := stepSignals[ws.Signal()]
		if !own {
			// Killed from outside (SIGKILL, SIGTERM): not the step's doing.
			return nil, &api.RunnerExitedError{Runner: "shell", Reason: res.state.String()}
		}
		// Each step has a bash of its own: bash crashing is the step failing.
		return nil, &api.StepError{
			Message: fmt.Sprintf("Shell script failed in step '%s': bash killed by signal: %s%s", req.Step, ws.Signal(), hint),
			Trace:   res.stderr.String(),
		}
	}
	msg := strings.TrimRight(res.stderr.String(), "\n")
	if strings.TrimSpace(msg) == "" {
		msg = res.state.String()
	}
	e := &api.StepError{Message: fmt.Sprintf("Shell script failed in step '%s': %s", req.Step, msg)}
	if line := failingLine(req.Step, res); line > 0 && req.CodeLine > 0 && req.WorkflowFile != "" {
		e.File, e.Line = req.WorkflowFile, req.CodeLine+line-1
	}
	return nil, e
}

// stepSignals are the signals a process gets for what it did itself (a
// fault, abort(), a system call the sandbox refuses, a limit it went over),
// with a hint at the likely cause. Bash dying of one is the step failing;
// any other signal came from outside.
var stepSignals = map[syscall.Signal]string{
	syscall.SIGSEGV: " (stack overflow?)",
	syscall.SIGBUS:  "",
	syscall.SIGILL:  "",
	syscall.SIGFPE:  "",
	syscall.SIGABRT: "",
	syscall.SIGTRAP: "",
	syscall.SIGSYS:  " (a system call the sandbox refuses)",
	syscall.SIGXCPU: " (CPU time limit)",
	syscall.SIGXFSZ: " (file size limit)",
}

// CheckStep implements api.StepChecker: bash -n parses the code without
// running it.
func (r *Runner) CheckStep(ctx context.Context, req *api.StepRequest) []string {
	if err := r.resolve(); err != nil {
		return []string{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bash, "-n", "-c", req.Code+trailer, req.Step)
	cmd.Env = proc.Env(r.opts.PATH, "/", nil, nil)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if msg == "" {
		msg = err.Error()
	}
	e := &api.StepError{Message: "Shell syntax error in step '" + req.Step + "': " + msg}
	if line := bashErrorLine(req.Step, msg); line > 0 && req.CodeLine > 0 && req.WorkflowFile != "" {
		e.File, e.Line = req.WorkflowFile, req.CodeLine+line-1
	}
	return []string{e.Error()}
}

type result struct {
	state     *os.ProcessState
	explained error // the wait error, as the SpawnFunc explains it (a limit it recognised)
	// The streams, kept up to the output limit (for the fallback output
	// and the error message).
	stdout, stderr *proc.Capture
	// The first stdout line that looks like a JSON object: jsonLine when it
	// is one, or tooBig, its size, when it was too long to keep.
	jsonLine  json.RawMessage
	tooBig    int64
	trapLines []int // lines the ERR trap reported, in order
}

// output is the output of a step that succeeded: ParseOutput's rule, with
// the output limit applied to what did not fit in memory.
func (res *result) output(maxOutput int64) (json.RawMessage, error) {
	switch {
	case res.jsonLine != nil:
		return res.jsonLine, nil
	case res.tooBig > 0:
		return nil, proc.OutputLimitError(res.tooBig, maxOutput, false)
	case res.stdout.Truncated || res.stderr.Truncated:
		// The fallback output holds both streams: too big.
		return nil, proc.OutputLimitError(int64(res.stdout.Len()+res.stderr.Len()), maxOutput, true)
	}
	return ParseOutput(res.stdout.String(), res.stderr.String())
}

// watchStdout follows the step's stdout lines for the first one that is a
// JSON object (ParseOutput's rule), kept or not.
func (res *result) watchStdout(l proc.Line) {
	if res.jsonLine != nil || res.tooBig > 0 || !l.LooksLikeObject() {
		return
	}
	if l.Cut() {
		res.tooBig = l.Size() // the output, if it is JSON; too big either way
		return
	}
	if v, err := api.Canonicalize([]byte(strings.TrimSpace(l.Text))); err == nil {
		res.jsonLine = v
	}
}

// execute runs the step in dir (own, its private folder, or the run's
// TempDir) with hwe-host installed in own and served for host.
func (r *Runner) execute(ctx context.Context, req *api.StepRequest, dir, own string, host api.Host) (*result, error) {
	log := host.Log
	info := proc.SpawnInfo{Runner: "shell", Tenant: req.Tenant, Grant: req.Grant, Purpose: proc.PurposeStep,
		Workdir: own, TempDir: req.TempDir}
	binDir, err := installHostHelper(r.bash, own, r.opts.Inside.Inside(info, own))
	if err != nil {
		return nil, fmt.Errorf("runner shell: install hwe-host: %w", err)
	}
	stopHostCalls, err := serveHostCalls(ctx, host, own)
	if err != nil {
		return nil, fmt.Errorf("runner shell: serve hwe-host: %w", err)
	}
	defer stopHostCalls()

	// cmd.Dir stays a host path (a sandbox maps it itself); HOME is where
	// the process sees the folder.
	env := proc.Env(r.opts.PATH, r.opts.Inside.Inside(info, dir), req.Env, inputVars(req))
	env = prependPath(env, r.opts.Inside.Inside(info, binDir))
	cmd := &exec.Cmd{
		Path: r.bash,
		// -e: the reference's `set -e`. -E: the ERR trap reaches functions.
		// The argument after the script is $0 (the reference's was a temp
		// file path), which bash also puts in front of its error messages.
		Args: []string{r.bash, "-E", "-e", "-c", errTrap + req.Code + trailer, req.Step},
		Env:  env,
		Dir:  dir,
	}

	var pipes []*os.File
	newPipe := func() (*os.File, *os.File, error) {
		rd, wr, err := os.Pipe()
		if err == nil {
			pipes = append(pipes, rd, wr)
		}
		return rd, wr, err
	}
	defer func() {
		for _, f := range pipes {
			_ = f.Close()
		}
	}()
	outR, outW, err := newPipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := newPipe()
	if err != nil {
		return nil, err
	}
	lineR, lineW, err := newPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.ExtraFiles = make([]*os.File, lineFD-2) // fd 3..8 closed, fd 9 = line reports
	cmd.ExtraFiles[lineFD-3] = lineW

	release, explain, err := proc.Start(r.opts.Spawn, cmd, info)
	if err != nil {
		return nil, fmt.Errorf("runner shell: start bash: %w", err)
	}
	defer release()
	_ = outW.Close()
	_ = errW.Close()
	_ = lineW.Close()

	// The output is parsed from stdout (and, failing a JSON line, from both
	// streams), so they are kept up to the output limit; lines are cut at
	// that limit while they are read, and only their start is logged.
	limit := int(proc.MaxOutput(req.Grant)) + 1
	stdout := &proc.Capture{Limit: limit, MayBeOutput: func(start []byte) bool { return proc.FirstNonSpace(start) == '{' }}
	stderr := &proc.Capture{Limit: limit}
	res := &result{stdout: stdout, stderr: stderr}
	var lines []int
	var readers sync.WaitGroup
	readers.Add(3)
	go func() {
		defer readers.Done()
		proc.ReadLinesMax(outR, stdout.LineLimit, func(l proc.Line) {
			res.watchStdout(l)
			stdout.AddLine(l)
			log("stdout", l.LogText())
		})
	}()
	go func() {
		defer readers.Done()
		proc.ReadLinesMax(errR, stderr.LineLimit, func(l proc.Line) {
			stderr.AddLine(l)
			log("stderr", l.LogText())
		})
	}()
	go func() {
		defer readers.Done()
		proc.ReadLines(lineR, func(line string, _ bool) {
			if n, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && len(lines) < 10000 {
				lines = append(lines, n)
			}
		})
	}()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var stopped error
	select {
	case err := <-waited:
		res.explained = explain(err) // before release
	case <-ctx.Done():
		proc.KillGroup(cmd)
		<-waited
		stopped = fmt.Errorf("shell step stopped: %w", ctx.Err())
	}
	// Whatever the step left running in the background ends with it.
	proc.KillGroup(cmd)
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(time.Second):
		// Something outside the process group still holds the pipes.
		_ = outR.Close()
		_ = errR.Close()
		_ = lineR.Close()
		<-readersDone
	}
	if stopped != nil {
		return nil, stopped
	}
	res.state = cmd.ProcessState
	res.trapLines = lines
	return res, nil
}

// prependPath puts dir in front of env's PATH (the step's own PATH if it
// set one), so hwe-host is found first.
func prependPath(env []string, dir string) []string {
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			if v == "" {
				env[i] = "PATH=" + dir
			} else {
				env[i] = "PATH=" + dir + ":" + v
			}
			return env
		}
	}
	return append(env, "PATH="+dir)
}

// inputVars returns INPUT_<DEP> for every input, plus parse_input. Names are
// mapped by inputVar; when two names map to the same variable, the one that
// sorts last wins.
func inputVars(req *api.StepRequest) map[string]string {
	vars := map[string]string{"BASH_FUNC_parse_input%%": parseInput}
	names := make([]string, 0, len(req.Inputs))
	for name := range req.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vars[inputVar(name)] = compact(req.Inputs[name])
	}
	return vars
}

// inputVar is the variable holding dependency name's output: INPUT_ plus the
// name upper-cased, with every character that cannot appear in a shell
// variable name replaced by "_" (the reference used the name as is, so
// "my-step" broke the script).
func inputVar(name string) string {
	var b strings.Builder
	b.WriteString("INPUT_")
	for _, c := range strings.ToUpper(name) {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// compact returns the JSON document without insignificant whitespace, as
// the reference's scripts (which grep for "key":value) expect.
func compact(doc json.RawMessage) string {
	if out, err := api.Canonicalize(doc); err == nil {
		return string(out)
	}
	return string(doc)
}

// ParseOutput applies the reference's rule to a successful step: the first
// line of trimmed stdout that, trimmed, starts with "{", ends with "}" and
// is JSON; otherwise {"exit_code":0,"stderr":…,"stdout":…} with both
// streams trimmed.
func ParseOutput(stdout, stderr string) (json.RawMessage, error) {
	if v := firstObjectLine(stdout); v != nil {
		return v, nil
	}
	return api.MarshalCanonical(map[string]any{
		"exit_code": 0,
		"stderr":    strings.TrimSpace(stderr),
		"stdout":    strings.TrimSpace(stdout),
	})
}

// firstObjectLine is the first line of stdout that, trimmed, starts with
// "{", ends with "}" and is JSON, canonicalized; nil if there is none.
func firstObjectLine(stdout string) json.RawMessage {
	for line := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "{") && strings.HasSuffix(line, "}") {
			if v, err := api.Canonicalize([]byte(line)); err == nil {
				return v
			}
		}
	}
	return nil
}

// failingLine is the code line a failed step stopped at: the last line the
// ERR trap reported, else the line of bash's own last error message.
func failingLine(step string, res *result) int {
	if n := len(res.trapLines); n > 0 {
		return res.trapLines[n-1]
	}
	return bashErrorLine(step, res.stderr.String())
}

// bashErrorLine finds "<$0>: line N:" (or "<$0>: -c: line N:") in bash's
// messages and returns the last N.
func bashErrorLine(step, stderr string) int {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(step) + `: (?:-c: )?line (\d+): `)
	m := re.FindAllStringSubmatch(stderr, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func (r *Runner) resolve() error {
	r.resolveOnce.Do(func() {
		candidate := r.opts.Bash
		if candidate == "" {
			for _, p := range []string{"/bin/bash", "/usr/bin/bash"} {
				if st, err := os.Stat(p); err == nil && !st.IsDir() {
					candidate = p
					break
				}
			}
		}
		if candidate == "" {
			p, err := exec.LookPath("bash")
			if err != nil {
				r.resolveErr = fmt.Errorf("bash is not installed or not available in PATH. Please install bash to run shell steps")
				return
			}
			candidate = p
		}
		r.bash = candidate
		out, err := exec.Command(candidate, "-c", `printf '%s' "$BASH_VERSION"`).Output()
		if err != nil {
			r.resolveErr = fmt.Errorf("runner shell: cannot run %s: %w", candidate, err)
			return
		}
		r.version = string(out)
	})
	return r.resolveErr
}

var (
	_ api.Runner      = (*Runner)(nil)
	_ api.StepChecker = (*Runner)(nil)
	_ api.Closer      = (*Runner)(nil)
)
