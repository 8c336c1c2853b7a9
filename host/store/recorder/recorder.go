// Package recorder writes a run's engine events into the run history as
// they happen. It is the bridge between host/engine and host/store, which
// know nothing of each other: `hwe serve`, `hwe run` with a data folder and
// `hwe runs resume` all record through it.
//
//	rec, err := recorder.Create(ctx, st, wf, recorder.Meta{Tenant: "local", WorkflowID: "etl", Trigger: "cli"})
//	opts.RunID, opts.OnEvent = rec.ID(), rec.OnEvent
//	res := engine.Run(ctx, wf, opts)
//	err = rec.Err() // the first write that failed, if any
package recorder

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/workflow"
)

// Meta says who started a run and why.
type Meta struct {
	RunID      string // "" = a new id
	Tenant     string // "local" when there are no tenants
	WorkflowID string // the workflow's API name (file stem); "" = from the file name
	Trigger    string // "api", "cli", "schedule", "webhook", "legacy", ...
	Actor      string
	Origin     string // "serve" or "cli": which kind of process owns the run
	Input      json.RawMessage
}

// Recorder appends the events of one run to the store. OnEvent is safe to
// use as engine.Options.OnEvent; the engine calls it one event at a time.
type Recorder struct {
	st *store.Store
	id string

	mu    sync.Mutex
	err   error
	after func(store.Event)
}

// Create records a new queued run of wf, with its source and step plan, and
// returns its recorder.
func Create(ctx context.Context, st *store.Store, wf *workflow.Workflow, m Meta) (*Recorder, error) {
	if m.WorkflowID == "" {
		m.WorkflowID = strings.TrimSuffix(filepath.Base(wf.File), filepath.Ext(wf.File))
	}
	id, err := st.CreateRun(ctx, store.NewRun{
		ID: m.RunID, Tenant: m.Tenant, WorkflowID: m.WorkflowID, Workflow: wf.Name, File: wf.File,
		Trigger: m.Trigger, Actor: m.Actor, Origin: m.Origin, Input: m.Input, Source: wf.Source, Plan: Plan(wf),
	})
	if err != nil {
		return nil, err
	}
	return &Recorder{st: st, id: id}, nil
}

// Attach returns a recorder for an existing run (to resume it).
func Attach(st *store.Store, runID string) *Recorder {
	return &Recorder{st: st, id: runID}
}

// ID is the run's id; pass it as engine.Options.RunID.
func (r *Recorder) ID() string { return r.id }

// OnStored sets a function called with every event after it is stored
// (with its sequence number), e.g. to publish it to live subscribers.
func (r *Recorder) OnStored(f func(store.Event)) { r.after = f }

// Err returns the first store write that failed. The run goes on when the
// history cannot be written; the caller decides whether that is an error.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// OnEvent stores one engine event. run_started marks the run running;
// run_finished records its final status.
func (r *Recorder) OnEvent(ev engine.Event) {
	r.Record(FromEngine(ev))
}

// Record stores one event (engine events go through OnEvent). Writes use a
// background context: a cancelled run must still record how it ended.
func (r *Recorder) Record(sev store.Event) store.Event {
	ctx := context.Background()
	sev.RunID = r.id
	if sev.Time.IsZero() {
		sev.Time = time.Now().UTC()
	}
	var err error
	switch sev.Type {
	case store.EventRunStarted:
		err = r.st.StartRun(ctx, r.id, sev.Time)
	case store.EventRunFinished:
		err = r.st.FinishRun(ctx, r.id, sev.Status, sev.Error, sev.Time, sev.DurationMS)
	}
	if err2 := r.st.AppendEvent(ctx, &sev); err == nil {
		err = err2
	}
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	if r.after != nil {
		r.after(sev)
	}
	return sev
}

// FromEngine converts an engine event to its stored form. A step_finished
// event drops its output: the output event just before it carries it, and
// outputs can be large.
func FromEngine(ev engine.Event) store.Event {
	sev := store.Event{
		Type: string(ev.Type), RunID: ev.RunID, Workflow: ev.Workflow, Step: ev.Step, Time: ev.Time.UTC(),
		Attempt: ev.Attempt, Status: ev.Status, Output: ev.Output, Error: ev.Error, Stream: ev.Stream,
		Line: ev.Line, Progress: ev.Progress, Message: ev.Message, DurationMS: ev.DurationMS,
	}
	if ev.Type == engine.EventStepFinished {
		sev.Output = nil
	}
	return sev
}

// Plan lists a workflow's steps as a run records them up front, so a run's
// page shows every step before it starts. Languages are as written, like
// `hwe run --json`.
func Plan(wf *workflow.Workflow) []store.PlannedStep {
	plan := make([]store.PlannedStep, len(wf.Steps))
	for i, s := range wf.Steps {
		plan[i] = store.PlannedStep{Name: s.Name, Language: s.LanguageAsWritten, DependsOn: s.DependsOn}
	}
	return plan
}

// Resumable is a stored run made ready to run again.
type Resumable struct {
	Run      *store.Run                 // as stored before this attempt
	Workflow *workflow.Workflow         // loaded from the run's own source
	Previous map[string]json.RawMessage // outputs of the steps that succeeded
	Recorder *Recorder
	Attempt  int
}

// Resume prepares another attempt of a run that did not succeed: it loads
// the workflow from the source stored with the run (so the same code runs
// even if the file changed since), collects the outputs of the steps that
// succeeded, and marks the run queued again. Run it with
// engine.Options{RunID: rec.ID(), Previous: res.Previous, OnEvent: rec.OnEvent}.
//
// load validates the stored source; nil means workflow.LoadSource with the
// built-in languages.
func Resume(ctx context.Context, st *store.Store, runID, actor string, load func(file string, src []byte) (*workflow.Workflow, error)) (*Resumable, error) {
	if load == nil {
		load = func(file string, src []byte) (*workflow.Workflow, error) {
			return workflow.LoadSource(file, src, workflow.LoadOptions{})
		}
	}
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	if !store.Finished(run.Status) || run.Status == store.StatusSucceeded {
		return nil, &store.StateError{ID: runID, Status: run.Status}
	}
	wf, err := load(run.File, run.Source)
	if err != nil {
		return nil, err
	}
	attempt, err := st.BeginAttempt(ctx, runID, actor)
	if err != nil {
		return nil, err
	}
	return &Resumable{Run: run, Workflow: wf, Previous: run.Outputs(), Recorder: Attach(st, runID), Attempt: attempt}, nil
}
