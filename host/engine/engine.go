package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/workflow"
)

// DefaultMaxOutput bounds a step's output when its grant sets no limit.
const DefaultMaxOutput = 16 << 20 // the same default the runners apply while reading (plugins/proc)

// NewRunID returns a random run id.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// run is the state of one workflow run while it executes.
type run struct {
	wf    *workflow.Workflow
	opts  Options
	id    string
	index map[string]int // step name -> position in wf.Steps

	emitMu sync.Mutex // events leave one at a time, in order

	// Owned by the scheduler goroutine (Run):
	steps      []stepState
	dependents [][]int
	waiting    []int // unfinished dependencies per step
	cancelled  bool  // the run's context was cancelled: unstarted steps become cancelled, not skipped
}

type stepState struct {
	status   string
	output   json.RawMessage
	err      string
	attempts int
	started  time.Time
	duration time.Duration
	cancel   context.CancelFunc
}

type completion struct {
	index    int
	output   json.RawMessage
	err      error
	attempts int
	duration time.Duration
	status   string
}

// Run executes the workflow and returns when every step has finished, been
// skipped or been cancelled. It never panics on a runner failure: every
// failure is recorded on its step.
func Run(ctx context.Context, wf *workflow.Workflow, opts Options) *RunResult {
	r := &run{wf: wf, opts: opts, id: opts.RunID, index: make(map[string]int, len(wf.Steps))}
	if r.id == "" {
		r.id = NewRunID()
	}
	start := time.Now()
	r.emit(Event{Type: EventRunStarted, Status: StatusRunning})

	if r.opts.TempDir == "" {
		if dir, err := os.MkdirTemp("", "hwe-run-"); err == nil {
			r.opts.TempDir = dir
			defer os.RemoveAll(dir)
		}
	}
	runErr := r.schedule(ctx)

	res := &RunResult{ID: r.id, Workflow: wf.Name, File: wf.File, Status: StatusSucceeded, Steps: make([]StepResult, len(wf.Steps))}
	for i, s := range wf.Steps {
		st := r.steps[i]
		out := st.output
		if out == nil {
			out = json.RawMessage("null")
		}
		res.Steps[i] = StepResult{Name: s.Name, Language: s.LanguageAsWritten, Status: st.status, Output: out,
			Error: st.err, Attempts: st.attempts, DurationMS: st.duration.Milliseconds()}
	}
	if runErr != "" {
		res.Status, res.Error = StatusFailed, runErr
		if ctx.Err() != nil {
			res.Status = StatusCancelled
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	r.emit(Event{Type: EventRunFinished, Status: res.Status, Error: res.Error, DurationMS: res.DurationMS})
	return res
}

// schedule is the ready-queue scheduler: a step starts as soon as all its
// dependencies have succeeded and a slot is free. It returns the run's error
// ("" when every step succeeded).
func (r *run) schedule(ctx context.Context) string {
	n := len(r.wf.Steps)
	r.steps = make([]stepState, n)
	r.dependents = make([][]int, n)
	r.waiting = make([]int, n)
	for i, s := range r.wf.Steps {
		r.index[s.Name] = i
		r.steps[i].status = StatusPending
	}
	for i, s := range r.wf.Steps {
		r.waiting[i] = len(s.DependsOn)
		for _, d := range s.DependsOn {
			j := r.index[d]
			r.dependents[j] = append(r.dependents[j], i)
		}
	}

	limit := r.opts.Concurrency
	if limit <= 0 {
		limit = r.wf.Concurrency
	}
	if limit <= 0 {
		limit = runtime.NumCPU()
	}
	failFast := r.wf.FailFast && !r.opts.KeepGoing

	// ready holds step indexes in workflow order (the Steps slice is already
	// topologically sorted with ties broken by name), so runs are repeatable.
	ready := newIndexQueue(n)
	for i := range r.wf.Steps {
		if r.waiting[i] == 0 {
			ready.push(i)
		}
	}
	done := make(chan completion, limit)
	running := 0
	firstErr := ""
	stopping := false // fail-fast or cancellation: start nothing new

	for {
		for !stopping && running < limit && ready.len() > 0 {
			i := ready.pop()
			if prev, ok := r.opts.Previous[r.wf.Steps[i].Name]; ok {
				r.finish(completion{index: i, output: prev, status: StatusSucceeded}, ready)
				continue
			}
			running++
			r.start(ctx, i, done)
		}
		if running == 0 {
			break
		}
		select {
		case c := <-done:
			running--
			r.cancelled = ctx.Err() != nil
			r.finish(c, ready)
			if c.status == StatusFailed {
				if firstErr == "" {
					firstErr = fmt.Sprintf("step '%s' failed: %s", r.wf.Steps[c.index].Name, r.steps[c.index].err)
				}
				if failFast && !stopping {
					stopping = true
					r.cancelRunning()
				}
			}
		case <-ctx.Done():
			r.cancelled = true
			if !stopping {
				stopping = true
				r.cancelRunning()
			}
			// keep draining completions until every started step has ended
			c := <-done
			running--
			r.finish(c, ready)
		}
	}
	cancelled := ctx.Err() != nil
	for i := range r.steps {
		if r.steps[i].status == StatusPending {
			r.steps[i].status = StatusSkipped
			if cancelled {
				r.steps[i].status = StatusCancelled
			}
			r.emit(Event{Type: EventStepFinished, Step: r.wf.Steps[i].Name, Status: r.steps[i].status})
		}
	}
	if cancelled && firstErr == "" {
		firstErr = "run cancelled"
	}
	return firstErr
}

func (r *run) cancelRunning() {
	for i := range r.steps {
		if r.steps[i].status == StatusRunning && r.steps[i].cancel != nil {
			r.steps[i].cancel()
		}
	}
}

// finish records a completed step and releases its dependents.
func (r *run) finish(c completion, ready *indexQueue) {
	st := &r.steps[c.index]
	st.status, st.output, st.attempts, st.duration = c.status, c.output, c.attempts, c.duration
	if st.cancel != nil {
		st.cancel()
		st.cancel = nil
	}
	name := r.wf.Steps[c.index].Name
	if c.err != nil {
		st.err = c.err.Error()
	}
	if c.status == StatusSucceeded {
		r.emit(Event{Type: EventStepOutput, Step: name, Output: c.output})
	}
	r.emit(Event{Type: EventStepFinished, Step: name, Status: c.status, Error: st.err, Attempt: c.attempts, DurationMS: c.duration.Milliseconds(), Output: nilIfFailed(c)})
	if c.status != StatusSucceeded {
		r.skipDependents(c.index)
		return
	}
	for _, d := range r.dependents[c.index] {
		r.waiting[d]--
		if r.waiting[d] == 0 && r.steps[d].status == StatusPending {
			ready.push(d)
		}
	}
}

func nilIfFailed(c completion) json.RawMessage {
	if c.status == StatusSucceeded {
		return c.output
	}
	return nil
}

// skipDependents marks every step downstream of a failed one as skipped.
func (r *run) skipDependents(i int) {
	for _, d := range r.dependents[i] {
		if r.steps[d].status != StatusPending {
			continue
		}
		status := StatusSkipped
		if r.cancelled {
			status = StatusCancelled
		}
		r.steps[d].status = status
		r.emit(Event{Type: EventStepFinished, Step: r.wf.Steps[d].Name, Status: status,
			Error: fmt.Sprintf("skipped: dependency '%s' did not succeed", r.wf.Steps[i].Name)})
		r.steps[d].err = fmt.Sprintf("dependency '%s' did not succeed", r.wf.Steps[i].Name)
		r.skipDependents(d)
	}
}

// start launches step i in its own goroutine.
func (r *run) start(ctx context.Context, i int, done chan<- completion) {
	stepCtx, cancel := context.WithCancel(ctx)
	st := &r.steps[i]
	st.status, st.cancel, st.started = StatusRunning, cancel, time.Now()
	req := r.request(i)
	go func() {
		done <- r.execute(stepCtx, req, r.wf.Steps[i], i)
	}()
}

// request builds the StepRequest for step i from its dependencies' outputs.
func (r *run) request(i int) *api.StepRequest {
	s := r.wf.Steps[i]
	inputs := make(map[string]json.RawMessage, len(s.DependsOn))
	for _, d := range s.DependsOn {
		inputs[d] = r.steps[r.index[d]].output
	}
	var request api.Grant
	if s.Allow != nil {
		request = *s.Allow
	}
	var grant api.Grant
	switch {
	case r.opts.Grant != nil:
		grant = r.opts.Grant(request)
	case s.Allow != nil:
		ceiling := api.Grant{}
		if r.opts.Policy != nil {
			ceiling = *r.opts.Policy
		}
		grant = request.Intersect(ceiling)
	}
	env := make(map[string]string, len(s.Env)+len(grant.Env))
	for _, name := range grant.Env {
		if prefix, ok := strings.CutSuffix(name, "*"); ok { // a PREFIX* pattern
			for _, kv := range os.Environ() {
				if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, prefix) {
					env[k] = v
				}
			}
		} else if v, ok := os.LookupEnv(name); ok {
			env[name] = v
		}
	}
	for k, v := range s.Env {
		env[k] = v
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = r.opts.DefaultTimeout
	}
	return &api.StepRequest{
		RunID: r.id, Tenant: r.opts.Tenant, Workflow: r.wf.Name, Step: s.Name,
		Language: s.Language, LanguageAsWritten: s.LanguageAsWritten, Code: s.Code, Inputs: inputs,
		Module: s.Module, Function: s.Function, WorkflowFile: r.wf.File, WorkflowDir: r.wf.Dir,
		CodeLine: s.CodeLine, Env: env, Grant: grant, Timeout: timeout, Isolation: s.Isolation,
		TempDir: r.opts.TempDir,
	}
}

// execute runs every attempt of one step, with its timeout and retries.
func (r *run) execute(ctx context.Context, req *api.StepRequest, s *workflow.Step, i int) completion {
	start := time.Now()
	backoff := s.Retries.Backoff
	maxOutput := req.Grant.MaxOutput
	if maxOutput <= 0 {
		maxOutput = DefaultMaxOutput
	}
	var err error
	for attempt := 1; ; attempt++ {
		a := *req
		a.Attempt = attempt
		r.emit(Event{Type: EventStepStarted, Step: s.Name, Attempt: attempt, Status: StatusRunning})
		var out json.RawMessage
		out, err = r.attempt(ctx, &a, maxOutput)
		if err == nil {
			return completion{index: i, output: out, attempts: attempt, duration: time.Since(start), status: StatusSucceeded}
		}
		if ctx.Err() != nil {
			return completion{index: i, err: errors.New("cancelled"), attempts: attempt, duration: time.Since(start), status: StatusCancelled}
		}
		if attempt > s.Retries.Max {
			return completion{index: i, err: err, attempts: attempt, duration: time.Since(start), status: StatusFailed}
		}
		r.emit(Event{Type: EventStepRetry, Step: s.Name, Attempt: attempt, Error: err.Error(), DurationMS: backoff.Milliseconds()})
		select {
		case <-ctx.Done():
			return completion{index: i, err: errors.New("cancelled"), attempts: attempt, duration: time.Since(start), status: StatusCancelled}
		case <-time.After(backoff):
		}
		factor := s.Retries.Factor
		if factor < 1 {
			factor = 1
		}
		backoff = time.Duration(float64(backoff) * factor)
	}
}

// attempt runs one attempt under the step's timeout and checks its output.
func (r *run) attempt(ctx context.Context, req *api.StepRequest, maxOutput int64) (out json.RawMessage, err error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil { // a runner bug must not take the host down
			out, err = nil, fmt.Errorf("runner %s panicked: %v", req.Language, p)
		}
	}()
	host := r.newHost(req)
	out, err = r.opts.Executor.Execute(ctx, req, host)
	if err != nil {
		if req.Timeout > 0 && isDeadline(err) && ctx.Err() == nil {
			// A remote runner saw the same deadline first (gRPC carries it);
			// our own timer fires within moments.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &api.LimitError{Limit: "timeout", Detail: fmt.Sprintf("step '%s' timed out after %s", req.Step, req.Timeout)}
		}
		return nil, err
	}
	if int64(len(out)) > maxOutput {
		return nil, &api.LimitError{Limit: "output", Detail: fmt.Sprintf("output of %d bytes exceeds %d bytes", len(out), maxOutput)}
	}
	canon, cerr := api.Canonicalize(out)
	if cerr != nil {
		return nil, fmt.Errorf("runner %s returned invalid JSON: %w", req.Language, cerr)
	}
	return canon, nil
}

func (r *run) newHost(req *api.StepRequest) api.Host {
	ev := &stepEvents{r: r, step: req.Step, attempt: req.Attempt}
	if r.opts.NewHost != nil {
		return r.opts.NewHost(req, ev)
	}
	return logOnlyHost{ev}
}

func (r *run) emit(e Event) {
	if r.opts.OnEvent == nil {
		return
	}
	e.RunID, e.Workflow = r.id, r.wf.Name
	e.Time = time.Now()
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.opts.OnEvent(e)
}

// stepEvents turns a step's log lines and progress into run events.
type stepEvents struct {
	r       *run
	step    string
	attempt int
}

func (s *stepEvents) Log(stream, line string) {
	s.r.emit(Event{Type: EventStepLog, Step: s.step, Attempt: s.attempt, Stream: stream, Line: line})
}

func (s *stepEvents) Progress(fraction float64, message string) {
	s.r.emit(Event{Type: EventStepProgress, Step: s.step, Attempt: s.attempt, Progress: fraction, Message: message})
}

// logOnlyHost records logs and progress and denies every capability.
type logOnlyHost struct{ ev HostEvents }

func (h logOnlyHost) Log(stream, line string)            { h.ev.Log(stream, line) }
func (h logOnlyHost) Progress(f float64, message string) { h.ev.Progress(f, message) }
func (h logOnlyHost) HTTPFetch(ctx context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	return api.NopHost{}.HTTPFetch(ctx, req)
}
func (h logOnlyHost) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	return api.NopHost{}.KVGet(ctx, key)
}
func (h logOnlyHost) KVPut(ctx context.Context, key string, value []byte) error {
	return api.NopHost{}.KVPut(ctx, key, value)
}
func (h logOnlyHost) Secret(ctx context.Context, name string) (string, error) {
	return api.NopHost{}.Secret(ctx, name)
}

// isDeadline reports whether err says a deadline passed, also when it came
// across a process boundary as text.
func isDeadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded")
}
