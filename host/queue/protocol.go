package queue

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// protocolVersion is checked by workers: a task from a newer coordinator is
// failed with a message rather than misread.
const protocolVersion = 1

// taskMsg is one execution of one step attempt, published on a task subject.
// Code, inputs and the WASM module travel through the object store when they
// are large (the *Ref fields name the blobs; the inline fields are then empty).
type taskMsg struct {
	V         int             `json:"v"`
	Key       string          `json:"key"` // state key: run.step.attempt
	Gen       uint64          `json:"gen"`
	Request   api.StepRequest `json:"request"`
	CodeRef   string          `json:"code_ref,omitempty"`
	InputsRef string          `json:"inputs_ref,omitempty"`
	ModuleRef string          `json:"module_ref,omitempty"`
	Queued    time.Time       `json:"queued"`
}

// resultMsg is how a worker reports an execution, on the result stream.
type resultMsg struct {
	V         int             `json:"v"`
	Key       string          `json:"key"`
	Gen       uint64          `json:"gen"`
	Worker    string          `json:"worker"`
	Delivery  int             `json:"delivery"`
	Output    json.RawMessage `json:"output,omitempty"`
	OutputRef string          `json:"output_ref,omitempty"`
	Error     *wireError      `json:"error,omitempty"`
}

// Step states in the run-state bucket.
const (
	stateQueued    = "queued"
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// record is the durable state of one step attempt (key run.step.attempt) in
// the KV bucket. It outlives the coordinator: a restarted one finds the
// attempts still out on workers and waits for them instead of sending them
// again, and a result that arrives twice is applied once.
type record struct {
	State     string          `json:"state"`
	Gen       uint64          `json:"gen"`
	Seq       uint64          `json:"seq,omitempty"` // the task's stream sequence while queued
	Worker    string          `json:"worker,omitempty"`
	Delivery  int             `json:"delivery,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	OutputRef string          `json:"output_ref,omitempty"`
	Error     *wireError      `json:"error,omitempty"`
	Updated   time.Time       `json:"updated"`
}

func (r *record) terminal() bool { return r.State != stateQueued }

// sharedConfig is what the coordinator tells workers through the state bucket.
type sharedConfig struct {
	Lease         time.Duration `json:"lease"`
	MaxDeliveries int           `json:"max_deliveries"`
	InlineLimit   int           `json:"inline_limit"`
}

// wireError carries a typed error from a worker (or a host call) so the
// receiver gets back the same api error type with the same message.
type wireError struct {
	Kind    string `json:"kind"` // step, denied, limit, runner_exited, cancelled, other
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Trace   string `json:"trace,omitempty"`
	Detail  string `json:"detail,omitempty"` // denied/limit detail, runner_exited reason
	Name    string `json:"name,omitempty"`   // capability, limit or runner name
}

func encodeError(err error) *wireError {
	if err == nil {
		return nil
	}
	var (
		se *api.StepError
		de *api.DeniedError
		le *api.LimitError
		re *api.RunnerExitedError
	)
	switch {
	case errors.As(err, &se):
		return &wireError{Kind: "step", Message: se.Message, File: se.File, Line: se.Line, Trace: se.Trace}
	case errors.As(err, &de):
		return &wireError{Kind: "denied", Message: de.Error(), Name: de.Capability, Detail: de.Detail}
	case errors.As(err, &le):
		return &wireError{Kind: "limit", Message: le.Error(), Name: le.Limit, Detail: le.Detail}
	case errors.As(err, &re):
		return &wireError{Kind: "runner_exited", Message: re.Error(), Name: re.Runner, Detail: re.Reason}
	}
	return &wireError{Kind: "other", Message: err.Error()}
}

func (w *wireError) decode() error {
	if w == nil {
		return nil
	}
	switch w.Kind {
	case "step":
		return &api.StepError{Message: w.Message, File: w.File, Line: w.Line, Trace: w.Trace}
	case "denied":
		return &api.DeniedError{Capability: w.Name, Detail: w.Detail}
	case "limit":
		return &api.LimitError{Limit: w.Name, Detail: w.Detail}
	case "runner_exited":
		return &api.RunnerExitedError{Runner: w.Name, Reason: w.Detail}
	}
	return errors.New(w.Message)
}

// Host API calls from a worker to the coordinator (request/reply on the
// execution's host subject). log, progress and started are one-way.
type hostCall struct {
	Op       string           `json:"op"` // log, progress, started, sync, kv_get, kv_put, secret, http
	Stream   string           `json:"stream,omitempty"`
	Line     string           `json:"line,omitempty"`
	Fraction float64          `json:"fraction,omitempty"`
	Message  string           `json:"message,omitempty"`
	Key      string           `json:"key,omitempty"`
	Value    []byte           `json:"value,omitempty"`
	Name     string           `json:"name,omitempty"`
	HTTP     *api.HTTPRequest `json:"http,omitempty"`
	Worker   string           `json:"worker,omitempty"`
	Delivery int              `json:"delivery,omitempty"`
}

type hostReply struct {
	Value  []byte            `json:"value,omitempty"`
	Found  bool              `json:"found,omitempty"`
	Secret string            `json:"secret,omitempty"`
	HTTP   *api.HTTPResponse `json:"http,omitempty"`
	Error  *wireError        `json:"error,omitempty"`
	// Inactive: no coordinator is running this execution right now (it is
	// restarting, or the execution was abandoned). The worker retries.
	Inactive bool `json:"inactive,omitempty"`
}
