// Package api holds the contracts between the hwe host and everything it runs:
// runners (plugins), the host API that step code reaches the outside through,
// capability grants, and the typed errors that cross those boundaries.
//
// It imports the standard library only, so a runner, a guest SDK or a
// third-party plugin can depend on it without pulling in the engine.
package api

import (
	"context"
	"encoding/json"
	"time"
)

// Canonical language names. A workflow may use aliases (see NormalizeLanguage);
// runners are registered under the canonical name.
const (
	LangLua        = "lua"
	LangPython     = "python"
	LangJavaScript = "javascript"
	LangShell      = "shell"
	LangWasm       = "wasm"
)

// StepRequest is everything a runner needs to execute one attempt of one step.
// The engine builds it; a runner must treat it as read-only.
type StepRequest struct {
	RunID    string // unique per run
	Tenant   string // "" for the local tenant
	Workflow string // workflow name
	Step     string // step name
	Attempt  int    // 1-based

	// Language is the canonical language (LangPython, ...); LanguageAsWritten
	// is what the workflow file said ("js", "bash", ...).
	Language          string
	LanguageAsWritten string

	Code string // the step's code, exactly as written (the newline after [[ already dropped by Lua)

	// Inputs are the direct dependencies' outputs keyed by step name, each a
	// compact JSON document with sorted keys. Empty (len 0) for a root step:
	// runners that call run() must then call it with no argument.
	Inputs map[string]json.RawMessage

	// WASM only: the module path as written and the function to call.
	Module   string
	Function string

	// WorkflowFile is the absolute path of the workflow file; WorkflowDir its
	// folder. Relative paths in a step (a wasm module) resolve against
	// WorkflowDir first, then the working directory.
	WorkflowFile string
	WorkflowDir  string

	// CodeLine is the line in WorkflowFile where the first line of Code sits
	// (0 if unknown), so runners can report errors at file lines:
	// file line = CodeLine + (line inside Code) - 1.
	CodeLine int

	Env       map[string]string // step env (`env = {...}`), already filtered by the grant
	Grant     Grant             // the effective grant (request ∩ policy)
	Timeout   time.Duration     // 0 = none; the context carries the deadline too
	Isolation string            // "" (warm worker) or "process" (fresh worker per step)
	TempDir   string            // the run's private writable scratch folder shared by its steps ("" = none)
}

// HasInputs reports whether run must be called with an inputs argument.
func (r *StepRequest) HasInputs() bool { return len(r.Inputs) > 0 }

// InputsJSON returns the inputs as one compact JSON object with sorted keys.
func (r *StepRequest) InputsJSON() json.RawMessage {
	b, err := MarshalCanonical(r.Inputs)
	if err != nil || r.Inputs == nil {
		return json.RawMessage("{}")
	}
	return b
}

// RunnerInfo describes a runner for `hwe plugins list` and for validation.
type RunnerInfo struct {
	Name      string   `json:"name"`      // e.g. "python"
	Languages []string `json:"languages"` // canonical languages it serves
	Version   string   `json:"version"`
	Kind      string   `json:"kind"` // "builtin", "builtin-plugin", "plugin"
	Path      string   `json:"path,omitempty"`
}

// Runner executes steps of one or more languages.
//
// Run returns the step's output as a JSON document (any JSON value). A failure
// of the step's own code is returned as a *StepError; any other error means the
// runner itself failed. Run must return promptly once ctx is done, having
// stopped everything it started for the step. Run is called concurrently.
type Runner interface {
	Info() RunnerInfo
	Run(ctx context.Context, req *StepRequest, host Host) (json.RawMessage, error)
}

// StepChecker is implemented by runners that can check a step before anything
// runs (a wasm module exists and exports the function, the code compiles).
// Each returned Problem is reported at the step's line.
type StepChecker interface {
	CheckStep(ctx context.Context, req *StepRequest) []string
}

// Closer is implemented by runners that hold processes or caches to release.
type Closer interface {
	Close() error
}
