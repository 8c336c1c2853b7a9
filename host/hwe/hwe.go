// Package hwe is hwe as a Go library: load a workflow from a file or a string
// and run it with the runners you choose.
//
//	wf, err := hwe.LoadString("demo.lua", src, hwe.Options{Runners: []api.Runner{lua.New(lua.Options{})}})
//	res := hwe.Run(ctx, wf, hwe.Options{...})
//
// Runners live in github.com/hwe-run/hwe/plugins/...; this package never
// picks them for you, so a program links only the runners it uses.
package hwe

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/workflow"
)

// Re-exported so callers need only this package for the common types.
type (
	Workflow   = workflow.Workflow
	Problems   = workflow.Problems
	RunResult  = engine.RunResult
	StepResult = engine.StepResult
	Event      = engine.Event
)

// Options for loading and running.
type Options struct {
	Runners     []api.Runner  // the runners steps may use (by the languages they declare)
	Concurrency int           // steps at once; 0 = the workflow's, else CPUs
	KeepGoing   bool          // run independent branches after a failure
	Timeout     time.Duration // default per-step timeout; 0 = none
	OnEvent     func(Event)   // receives every event of a run, in order
	Policy      *api.Grant    // ceiling for steps' `allow` requests; nil = grant nothing
}

func (o Options) registry() *registry.Registry {
	reg := registry.New()
	for _, r := range o.Runners {
		reg.Register(r)
	}
	return reg
}

// LoadFile reads and validates a workflow file. On invalid input the error is
// a Problems with every FILE:LINE: message.
func LoadFile(path string, opts Options) (*Workflow, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(path)
	return LoadString(path, string(src), opts, filepath.Dir(abs))
}

// LoadString validates a workflow given as source. name is used in messages;
// dir (optional) anchors relative paths such as wasm modules.
func LoadString(name, src string, opts Options, dir ...string) (*Workflow, error) {
	reg := opts.registry()
	lo := workflow.LoadOptions{KnownLanguage: reg.Has}
	if len(dir) > 0 {
		lo.Dir = dir[0]
	}
	lo.CheckStep = func(s *workflow.Step, w *workflow.Workflow) []string {
		if !reg.Has(s.Language) {
			return []string{"no runner for language " + s.Language + " was given"}
		}
		return reg.CheckStep(context.Background(), &api.StepRequest{Workflow: w.Name, Step: s.Name,
			Language: s.Language, Code: s.Code, Module: s.Module, Function: s.Function,
			WorkflowFile: name, WorkflowDir: w.Dir, CodeLine: s.CodeLine})
	}
	return workflow.LoadSource(name, []byte(src), lo)
}

// Run executes a loaded workflow and returns its result. Cancel ctx to stop
// the run; every step it started is stopped before Run returns.
func Run(ctx context.Context, wf *Workflow, opts Options) *RunResult {
	return engine.Run(ctx, wf, engine.Options{
		Executor: opts.registry(), Concurrency: opts.Concurrency, KeepGoing: opts.KeepGoing,
		DefaultTimeout: opts.Timeout, OnEvent: opts.OnEvent, Policy: opts.Policy,
	})
}
