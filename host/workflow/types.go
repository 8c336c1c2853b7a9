// Package workflow loads a Lua workflow file into a validated DAG.
//
// The file runs in a sandboxed gopher-lua state (no io, os.execute or require)
// under a time limit; every problem found is reported with its file and line.
package workflow

import (
	"fmt"
	"strings"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Workflow is a loaded, validated workflow.
type Workflow struct {
	Name        string
	Description string
	File        string  // path as given to the loader
	Dir         string  // absolute folder of File ("" for sources without a file)
	Source      []byte  // the Lua source
	Concurrency int     // 0 = engine default
	FailFast    bool    // default true
	Schedule    string  // cron expression, "" = none
	Steps       []*Step // in execution order: topological, ties broken by name
}

// Step is one node of the DAG.
type Step struct {
	Name              string
	Language          string // canonical (api.LangPython, ...)
	LanguageAsWritten string // as in the file; "lua" when absent
	Code              string
	DependsOn         []string
	Module            string // wasm
	Function          string // wasm; "run" by default
	Timeout           time.Duration
	Retries           RetryPolicy
	Env               map[string]string
	Allow             *api.Grant // nil when the step asked for nothing
	Isolation         string     // "" or "process"
	Line              int        // line of the step's table in the file
	CodeLine          int        // line where the first line of Code sits (0 = unknown)
}

// RetryPolicy says how often and how fast a failed step is tried again.
type RetryPolicy struct {
	Max     int           // extra attempts after the first; 0 = none
	Backoff time.Duration // wait before the first retry
	Factor  float64       // backoff multiplier per retry (>= 1)
}

// Step returns the named step or nil.
func (w *Workflow) Step(name string) *Step {
	for _, s := range w.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Problem is one validation finding at a file line.
type Problem struct {
	File    string
	Line    int
	Message string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// Problems is every problem found in one file; it is the error the loader returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
