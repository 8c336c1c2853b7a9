package server

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/store/recorder"
	"github.com/hwe-run/hwe/host/workflow"
)

// InputEnv is the environment variable through which every step of a run
// started with an input (a webhook's body, or "input" in the run request)
// receives it, as JSON.
const InputEnv = "HWE_INPUT"

var (
	errShutdown  = errors.New("the server is shutting down")
	errCancelled = errors.New("cancelled by request")
)

// runManager starts runs in the background, queues them behind tenant and
// server quotas, and cancels them.
type runManager struct {
	s      *Server
	global chan struct{} // nil = no server-wide limit

	mu      sync.Mutex
	active  map[string]*activeRun
	closing bool
	wg      sync.WaitGroup
}

// activeRun is a run this server is executing (or has queued).
type activeRun struct {
	id         string
	tenant     *tenantState
	workflowID string
	trigger    string
	ctx        context.Context
	cancel     context.CancelCauseFunc
	languages  map[string]string // step → canonical language, for metrics
}

func newRunManager(s *Server) *runManager {
	m := &runManager{s: s, active: map[string]*activeRun{}}
	if s.cfg.MaxRuns > 0 {
		m.global = make(chan struct{}, s.cfg.MaxRuns)
	}
	return m
}

// startRequest is a run to start.
type startRequest struct {
	tenant  *tenantState
	entry   *entry
	trigger string
	actor   string
	input   json.RawMessage
}

// start records a queued run and executes it in the background; it returns
// as soon as the run is recorded.
func (m *runManager) start(ctx context.Context, req startRequest) (string, error) {
	if m.isClosing() {
		return "", errShutdown
	}
	// Each run loads its own copy from the source it will record, so the
	// stored source is exactly what ran and the input can be set per run.
	wf, err := m.s.loadWorkflow(req.tenant, req.entry.Path, req.entry.Source)
	if err != nil {
		return "", err
	}
	withInput(wf, req.input)
	rec, err := recorder.Create(ctx, m.s.cfg.Store, wf, recorder.Meta{
		Tenant: req.tenant.Name, WorkflowID: req.entry.Name, Trigger: req.trigger, Actor: req.actor,
		Origin: originServe, Input: req.input,
	})
	if err != nil {
		return "", err
	}
	m.s.metrics.runStarted(req.trigger)
	m.launch(rec, req.tenant, req.entry.Name, req.trigger, wf, nil)
	return rec.ID(), nil
}

// retry starts another attempt of a finished run that did not succeed,
// reusing the outputs of its steps that did.
func (m *runManager) retry(ctx context.Context, t *tenantState, runID, actor string) error {
	if m.isClosing() {
		return errShutdown
	}
	if m.isActive(runID) {
		return &store.StateError{ID: runID, Status: store.StatusRunning}
	}
	res, err := recorder.Resume(ctx, m.s.cfg.Store, runID, actor, func(file string, src []byte) (*workflow.Workflow, error) {
		return m.s.loadWorkflow(t, file, src)
	})
	if err != nil {
		return err
	}
	withInput(res.Workflow, res.Run.Input)
	m.s.metrics.runStarted("retry")
	m.launch(res.Recorder, t, res.Run.WorkflowID, "retry", res.Workflow, res.Previous)
	return nil
}

// withInput hands a run's input to every step as $HWE_INPUT.
func withInput(wf *workflow.Workflow, input json.RawMessage) {
	if len(input) == 0 {
		return
	}
	for _, st := range wf.Steps {
		env := maps.Clone(st.Env)
		if env == nil {
			env = map[string]string{}
		}
		env[InputEnv] = string(input)
		st.Env = env
	}
}

func (m *runManager) launch(rec *recorder.Recorder, t *tenantState, workflowID, trigger string, wf *workflow.Workflow, previous map[string]json.RawMessage) {
	ctx, cancel := context.WithCancelCause(context.Background())
	a := &activeRun{id: rec.ID(), tenant: t, workflowID: workflowID, trigger: trigger, ctx: ctx, cancel: cancel,
		languages: make(map[string]string, len(wf.Steps))}
	for _, st := range wf.Steps {
		a.languages[st.Name] = st.Language
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		cancel(errShutdown)
		m.s.cfg.Store.Interrupt(context.Background(), a.id, interruptedSignal)
		return
	}
	m.active[a.id] = a
	m.wg.Add(1)
	m.mu.Unlock()
	go m.execute(a, rec, wf, previous)
}

// execute waits for a slot, runs the workflow and forgets the run.
func (m *runManager) execute(a *activeRun, rec *recorder.Recorder, wf *workflow.Workflow, previous map[string]json.RawMessage) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.active, a.id)
		m.mu.Unlock()
		a.cancel(nil)
	}()

	m.s.metrics.queued.Add(1)
	gotTenant := acquire(a.ctx, a.tenant.slots)
	gotGlobal := gotTenant && acquire(a.ctx, m.global)
	m.s.metrics.queued.Add(-1)
	if gotTenant {
		defer release(a.tenant.slots)
	}
	if gotGlobal {
		defer release(m.global)
	}
	if !gotGlobal {
		// Cancelled (or shut down) while queued: record how it ended.
		status, msg := store.StatusCancelled, "cancelled before it started"
		if errors.Is(context.Cause(a.ctx), errShutdown) {
			status, msg = store.StatusInterrupted, interruptedSignal
		}
		m.publish(rec.Record(store.Event{Type: store.EventRunFinished, Workflow: wf.Name, Status: status, Error: msg}))
		m.s.metrics.runFinished(status, 0)
		return
	}

	m.s.metrics.active.Add(1)
	defer m.s.metrics.active.Add(-1)
	opts := engine.Options{
		RunID:          a.id,
		Concurrency:    m.s.cfg.Concurrency,
		DefaultTimeout: m.s.cfg.DefaultTimeout,
		Executor:       m.s.cfg.Executor,
		Previous:       previous,
		Grant:          policyOf(a.tenant.Tenant).Effective,
		OnEvent:        func(ev engine.Event) { m.onEvent(a, rec, ev) },
	}
	if len(m.s.cfg.Tenants) > 0 {
		opts.Tenant = a.tenant.Name // "" is the engine's local tenant
	}
	if newHost := m.s.cfg.NewHost; newHost != nil {
		tenant := a.tenant.Tenant
		opts.NewHost = func(req *api.StepRequest, emit engine.HostEvents) api.Host { return newHost(tenant, req, emit) }
	}
	engine.Run(a.ctx, wf, opts)
	if err := rec.Err(); err != nil {
		m.s.log.Error("recording run history", "run", a.id, "err", err)
	}
}

// onEvent records an engine event, counts it and publishes it to streams.
func (m *runManager) onEvent(a *activeRun, rec *recorder.Recorder, ev engine.Event) {
	if ev.Type == engine.EventRunFinished && errors.Is(context.Cause(a.ctx), errShutdown) {
		ev.Status, ev.Error = store.StatusInterrupted, interruptedSignal
	}
	sev := rec.Record(recorder.FromEngine(ev))
	switch ev.Type {
	case engine.EventStepFinished:
		if ev.Attempt > 0 || ev.Status != engine.StatusSucceeded { // not a step whose output was reused
			m.s.metrics.stepFinished(a.languages[ev.Step], ev.Status, time.Duration(ev.DurationMS)*time.Millisecond)
		}
	case engine.EventRunFinished:
		m.s.metrics.runFinished(ev.Status, time.Duration(ev.DurationMS)*time.Millisecond)
	}
	m.publish(sev)
}

func (m *runManager) publish(ev store.Event) {
	m.s.metrics.events.Add(1)
	m.s.hub.publish(ev)
}

// cancel stops an active run of tenant t. It reports false when the run is
// not active (finished, unknown, or another tenant's).
func (m *runManager) cancel(t *tenantState, runID string) bool {
	m.mu.Lock()
	a := m.active[runID]
	m.mu.Unlock()
	if a == nil || a.tenant != t {
		return false
	}
	a.cancel(errCancelled)
	return true
}

func (m *runManager) isActive(runID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[runID] != nil
}

func (m *runManager) isClosing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// activeFor lists the active runs of one workflow (for schedule overlap).
func (m *runManager) activeFor(t *tenantState, workflowID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, a := range m.active {
		if a.tenant == t && a.workflowID == workflowID {
			n++
		}
	}
	return n
}

func (m *runManager) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.active)
}

// shutdown cancels every active run and waits until they have recorded how
// they ended, or ctx ends; runs still going then are marked interrupted.
func (m *runManager) shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	for _, a := range m.active {
		a.cancel(errShutdown)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.active {
		m.s.log.Warn("run did not stop in time; recording it as interrupted", "run", id)
		m.s.cfg.Store.Interrupt(context.Background(), id, interruptedSignal)
	}
	return errors.New("server: some runs did not stop before the shutdown deadline")
}

func acquire(ctx context.Context, slots chan struct{}) bool {
	if slots == nil {
		return ctx.Err() == nil
	}
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func release(slots chan struct{}) {
	if slots != nil {
		<-slots
	}
}
