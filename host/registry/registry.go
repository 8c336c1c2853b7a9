// Package registry maps languages to the runners that serve them and is the
// in-process engine.Executor: a ready step goes to the runner registered for
// its language. Runners that are costly to start (plugin processes, WASM
// caches) are registered as factories and built on first use.
package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/hwe-run/hwe/host/api"
)

// Factory builds a runner on first use.
type Factory func() (api.Runner, error)

type entry struct {
	once    sync.Once
	factory Factory
	runner  api.Runner
	err     error
	info    api.RunnerInfo // known without building, for listings
}

// Registry is a set of runners keyed by canonical language. The zero value is
// not usable; call New. Tests build their own isolated Registry.
type Registry struct {
	mu      sync.RWMutex
	entries map[string]*entry
}

// New returns an empty registry.
func New() *Registry { return &Registry{entries: map[string]*entry{}} }

// Register adds a ready runner for each language it declares.
func (r *Registry) Register(runner api.Runner) {
	info := runner.Info()
	for _, lang := range info.Languages {
		e := &entry{runner: runner, info: info}
		e.once.Do(func() {})
		r.set(lang, e)
	}
}

// RegisterFactory adds a runner for language that is built on first use.
// info describes it for listings before it is built.
func (r *Registry) RegisterFactory(language string, info api.RunnerInfo, f Factory) {
	r.set(language, &entry{factory: f, info: info})
}

func (r *Registry) set(lang string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[lang] = e
}

// Has reports whether a runner serves the canonical language.
func (r *Registry) Has(lang string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.entries[lang]
	return ok
}

// Lookup returns the runner for a canonical language, building it if needed.
func (r *Registry) Lookup(lang string) (api.Runner, error) {
	r.mu.RLock()
	e, ok := r.entries[lang]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("Unsupported language: %s (no runner is installed for it)", lang)
	}
	e.once.Do(func() {
		e.runner, e.err = e.factory()
		if e.err != nil {
			e.err = fmt.Errorf("starting the %s runner: %w", lang, e.err)
		}
	})
	return e.runner, e.err
}

// Execute implements engine.Executor by calling the step's runner in process.
func (r *Registry) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	runner, err := r.Lookup(req.Language)
	if err != nil {
		return nil, err
	}
	return runner.Run(ctx, req, host)
}

// CheckStep asks the step's runner, if it can, to check the step before anything runs.
func (r *Registry) CheckStep(ctx context.Context, req *api.StepRequest) []string {
	runner, err := r.Lookup(req.Language)
	if err != nil {
		return []string{err.Error()}
	}
	if c, ok := runner.(api.StepChecker); ok {
		return c.CheckStep(ctx, req)
	}
	return nil
}

// Infos lists every registered runner once, sorted by name.
func (r *Registry) Infos() []api.RunnerInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{}
	var out []api.RunnerInfo
	for _, e := range r.entries {
		info := e.info
		if e.runner != nil {
			info = e.runner.Info()
		}
		key := info.Name + "\x00" + info.Path
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close releases every runner that was built.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	closed := map[api.Runner]bool{}
	var first error
	for _, e := range r.entries {
		if e.runner == nil || closed[e.runner] {
			continue
		}
		closed[e.runner] = true
		if c, ok := e.runner.(api.Closer); ok {
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
