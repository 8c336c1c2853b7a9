// Package engine runs a workflow's DAG: a ready-queue scheduler with a
// concurrency limit, fail-fast or keep-going, per-step timeouts and retries,
// cancellation, and events for every transition.
//
// The engine never imports a runner: ready steps go to an Executor, which the
// caller wires to in-process runners, plugins, or a NATS work queue.
package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Executor runs one attempt of one ready step. The in-process executor looks
// up the runner by language; a distributed one hands the request to a worker.
type Executor interface {
	Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error)
}

// Step and run statuses, as they appear in `hwe run --json` and the API.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusCancelled = "cancelled"
)

// EventType names what an Event reports.
type EventType string

const (
	EventRunStarted   EventType = "run_started"
	EventStepStarted  EventType = "step_started"
	EventStepLog      EventType = "log"
	EventStepProgress EventType = "progress"
	EventStepRetry    EventType = "step_retry"
	EventStepFinished EventType = "step_finished"
	EventStepOutput   EventType = "output"
	EventRunFinished  EventType = "run_finished"
)

// Event is one thing that happened in a run. Events of one run are delivered
// to Options.OnEvent one at a time, in order.
type Event struct {
	Type       EventType       `json:"type"`
	RunID      string          `json:"run_id"`
	Workflow   string          `json:"workflow"`
	Step       string          `json:"step,omitempty"`
	Time       time.Time       `json:"time"`
	Attempt    int             `json:"attempt,omitempty"`
	Status     string          `json:"status,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Stream     string          `json:"stream,omitempty"` // log events: stdout, stderr, log
	Line       string          `json:"line,omitempty"`   // log events
	Progress   float64         `json:"progress,omitempty"`
	Message    string          `json:"message,omitempty"` // progress events
	DurationMS int64           `json:"duration_ms,omitempty"`
}

// RunResult is a finished run, in the `hwe run --json` shape.
type RunResult struct {
	ID         string       `json:"id,omitempty"`
	Workflow   string       `json:"workflow"`
	File       string       `json:"file"`
	Status     string       `json:"status"`
	DurationMS int64        `json:"duration_ms"`
	Error      string       `json:"error,omitempty"`
	Steps      []StepResult `json:"steps"`
}

// StepResult is one step of a finished run.
type StepResult struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output"`
	Error      string          `json:"error,omitempty"`
	Attempts   int             `json:"attempts"`
	DurationMS int64           `json:"duration_ms"`
}
