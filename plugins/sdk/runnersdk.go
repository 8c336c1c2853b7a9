// Package runnersdk is how to add a language to hwe: write a runner as a Go
// program, build it as hwe-runner-LANG, put it (and its .sha256) on the
// plugin path, and steps with language = "LANG" run in it.
//
// A whole runner:
//
//	package main
//
//	import (
//		"context"
//		"strings"
//
//		"github.com/hwe-run/hwe/host/api"
//		"github.com/hwe-run/hwe/plugins/sdk"
//	)
//
//	func main() {
//		runnersdk.Serve(&runnersdk.Runner{
//			Name:    "upper",
//			Version: "0.1.0",
//			Step: func(ctx context.Context, step *api.StepRequest, host api.Host) (any, error) {
//				host.Log("log", "upper-casing "+step.Step)
//				return map[string]string{"text": strings.ToUpper(step.Code)}, nil
//			},
//		})
//	}
//
// Build and install it:
//
//	go build -o ~/.hwe/plugins/hwe-runner-upper .
//	cd ~/.hwe/plugins && sha256sum hwe-runner-upper > hwe-runner-upper.sha256
//
// The step gets everything in api.StepRequest (code, inputs by step name,
// env, grant, workflow file and line) and reaches the outside world only
// through host: log lines, progress, HTTP fetches, KV and secrets, each
// checked by hwe against the step's grant. The plugin process inherits none
// of hwe's environment. Test a runner with the runnertest package.
package runnersdk

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/plugin"
)

// StepFunc runs one step. Its result becomes the step's output: a
// json.RawMessage is taken as is; anything else is encoded as JSON with
// sorted keys. A failure of the step's code should be returned as
// *api.StepError (see Fail); any other error reports the runner as broken.
//
// StepFunc is called concurrently for independent steps and must return
// promptly once ctx is done.
type StepFunc func(ctx context.Context, step *api.StepRequest, host api.Host) (any, error)

// Runner is an api.Runner built from functions.
type Runner struct {
	Name      string
	Version   string
	Languages []string // the languages it serves; default: []string{Name}
	Step      StepFunc

	// Setup, if set, is called once after the plugin starts, with the
	// settings hwe's configuration has for this runner.
	Setup func(ctx context.Context, settings map[string]string) error
	// Teardown, if set, is called when hwe stops the plugin.
	Teardown func() error
}

var (
	_ api.Runner        = (*Runner)(nil)
	_ api.Closer        = (*Runner)(nil)
	_ plugin.Configurer = (*Runner)(nil)
)

// Info implements api.Runner.
func (r *Runner) Info() api.RunnerInfo {
	langs := r.Languages
	if len(langs) == 0 {
		langs = []string{r.Name}
	}
	return api.RunnerInfo{Name: r.Name, Languages: langs, Version: r.Version, Kind: "plugin"}
}

// Run implements api.Runner.
func (r *Runner) Run(ctx context.Context, step *api.StepRequest, host api.Host) (json.RawMessage, error) {
	if host == nil {
		host = api.NopHost{}
	}
	v, err := r.Step(ctx, step, host)
	if err != nil {
		return nil, err
	}
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("runner %s: step output is not valid JSON", r.Name)
		}
		return raw, nil
	}
	out, err := api.MarshalCanonical(v)
	if err != nil {
		return nil, fmt.Errorf("runner %s: encoding the step output: %w", r.Name, err)
	}
	return out, nil
}

// Configure implements plugin.Configurer.
func (r *Runner) Configure(ctx context.Context, settings map[string]string) error {
	if r.Setup == nil {
		return nil
	}
	return r.Setup(ctx, settings)
}

// Close implements api.Closer.
func (r *Runner) Close() error {
	if r.Teardown == nil {
		return nil
	}
	return r.Teardown()
}

// Serve serves r to hwe and returns when hwe is done with the plugin. It is
// the whole of a runner's main.
func Serve(r api.Runner) { plugin.Serve(r) }

// Fail reports a failure of the step's code (not of the runner).
func Fail(format string, args ...any) error {
	return &api.StepError{Message: fmt.Sprintf(format, args...)}
}

// FailAt reports a failure of the step's code at a line of step.Code
// (1-based), which hwe shows as the line in the workflow file.
func FailAt(step *api.StepRequest, codeLine int, format string, args ...any) error {
	err := &api.StepError{Message: fmt.Sprintf(format, args...)}
	if step.CodeLine > 0 && codeLine > 0 && step.WorkflowFile != "" {
		err.File = step.WorkflowFile
		err.Line = step.CodeLine + codeLine - 1
	}
	return err
}

// Inputs decodes the step's inputs (its dependencies' outputs by step name).
// Numbers stay json.Number, so integers and decimals keep their exact text.
func Inputs(step *api.StepRequest) (map[string]any, error) {
	out := make(map[string]any, len(step.Inputs))
	for name, doc := range step.Inputs {
		v, err := api.DecodeJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}
