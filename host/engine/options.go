package engine

import (
	"encoding/json"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Options control one run. The zero value runs with the defaults.
type Options struct {
	RunID          string        // "" = a fresh random id
	Tenant         string        // "" = the local tenant
	Concurrency    int           // max steps at once; 0 = the workflow's, else the number of CPUs
	KeepGoing      bool          // run every branch that does not depend on a failure (overrides fail_fast)
	DefaultTimeout time.Duration // per-step timeout when the step sets none; 0 = none
	Executor       Executor      // required

	// OnEvent receives every event of the run, one at a time, in order.
	OnEvent func(Event)

	// NewHost builds the capability-checked host API for one step attempt.
	// emit delivers log and progress lines to the run's events. nil gives a
	// host that records logs and progress and denies every capability.
	NewHost func(req *api.StepRequest, emit HostEvents) api.Host

	// Grant computes a step's effective grant from its `allow` request (the
	// zero Grant when it asked for nothing), normally a policy's Effective.
	// nil: the request intersected with Policy.
	Grant func(request api.Grant) api.Grant

	// Policy bounds every step's `allow` request when Grant is nil; the
	// effective grant is the intersection. nil = deny everything a step asks for.
	Policy *api.Grant

	// Previous holds outputs of steps that already succeeded in an earlier
	// attempt of this run (resume/retry): those steps are not run again.
	Previous map[string]json.RawMessage

	// TempDir is the run's private scratch folder shared by its steps.
	TempDir string
}

// HostEvents is how a host API implementation reports a step's log lines and
// progress back into the run's event stream.
type HostEvents interface {
	Log(stream, line string)
	Progress(fraction float64, message string)
}
