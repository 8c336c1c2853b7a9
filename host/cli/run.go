package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/policy"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/store/recorder"
	"github.com/hwe-run/hwe/host/workflow"
	ucli "github.com/urfave/cli/v2"
)

func runCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run workflows (a file, a folder of *.lua, or a name in the workflows folder; none = the workflows folder)",
		ArgsUsage: "[TARGET...]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object per workflow on stdout"},
			&ucli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Usage: "steps run at once (default: the workflow's `concurrency`, else config, else CPUs)"},
			&ucli.BoolFlag{Name: "keep-going", Aliases: []string{"k"}, Usage: "after a failure, keep running every branch that does not depend on it"},
			&ucli.DurationFlag{Name: "timeout", Usage: "default per-step timeout for steps without one (e.g. 30s)"},
			&ucli.StringFlag{Name: "sandbox", Value: "", Usage: "OS sandbox for subprocess steps: on or off (off: for trusted local work only)"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr"},
		},
		Action: func(c *ucli.Context) error { return env.run(c) },
	}
}

func (env *Env) run(c *ucli.Context) error {
	cfg, err := env.loadConfig()
	if err != nil {
		return err
	}
	switch s := c.String("sandbox"); s {
	case "":
	case "on", "off":
		cfg.Values["sandbox"] = config.Value{Key: cfg.Values["sandbox"].Key, Value: s, Source: "flag --sandbox"}
	default:
		return usageErr("--sandbox must be on or off, not %q", s)
	}
	if cfg.Get("sandbox") == "off" {
		fmt.Fprintln(env.Stderr, "hwe: warning: the OS sandbox is off: steps run with your user's full access (--sandbox=off is for trusted local work only)")
	}
	files, err := resolveTargets(env.Dir, cfg.Get("workflows_dir"), c.Args().Slice())
	if err != nil {
		return usageErr("%v", err)
	}
	reg, err := env.registry(cfg)
	if err != nil {
		return err
	}
	defer reg.Close()

	var history *store.Store // run history, when a data folder is configured
	if dir := cfg.Get("data_dir"); dir != "" {
		if history, err = store.Open(dir); err != nil {
			return fmt.Errorf("opening the run history in %s: %w", dir, err)
		}
		defer history.Close()
	}

	hostAPI, err := newLocalHostAPI(cfg, env.Getenv)
	if err != nil {
		return err
	}
	defer hostAPI.close()

	ctx, stop := signal.NotifyContext(env.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := engine.Options{Executor: reg, KeepGoing: c.Bool("keep-going") || !cfg.Bool("fail_fast"), DefaultTimeout: cfg.Duration("timeout")}
	if c.IsSet("concurrency") {
		if c.Int("concurrency") < 1 {
			return usageErr("--concurrency must be at least 1")
		}
		opts.Concurrency = c.Int("concurrency")
	}
	if c.IsSet("timeout") {
		opts.DefaultTimeout = c.Duration("timeout")
	}
	hostAPI.wire(&opts)
	rs := &runSession{env: env, reg: reg, opts: opts, history: history,
		progress:    newProgress(env.Stderr, env.Getenv, c.Bool("quiet")),
		concurrency: cfg.Int("concurrency"),
		// the configured concurrency applies unless the flag or the workflow sets one
		useConfigConcurrency: !c.IsSet("concurrency") && cfg.Values["concurrency"].Source != "default",
	}
	failed := 0
	for i, file := range files {
		if ctx.Err() != nil {
			break
		}
		if !c.Bool("json") && len(files) > 1 {
			if i > 0 {
				fmt.Fprintln(env.Stdout)
			}
			fmt.Fprintf(env.Stdout, "=== Running workflow %d/%d: %s ===\n", i+1, len(files), filepath.Base(file))
		}
		res, err := rs.runFile(ctx, file)
		if err != nil {
			return err
		}
		if res.Status != engine.StatusSucceeded {
			failed++
		}
		if c.Bool("json") {
			if err := writeJSONLine(env.Stdout, res); err != nil {
				return err
			}
		} else {
			printHuman(env, res)
		}
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// runSession is what every workflow of one `hwe run` shares.
type runSession struct {
	env                  *Env
	reg                  *registry.Registry
	opts                 engine.Options
	history              *store.Store // nil: no run history kept
	progress             *progress
	concurrency          int
	useConfigConcurrency bool
}

// runFile validates and runs one workflow file. A workflow that fails
// validation is a failed result with no steps: nothing of it runs.
func (rs *runSession) runFile(ctx context.Context, file string) (*engine.RunResult, error) {
	env := rs.env
	wf, problems := env.load(ctx, file, rs.reg)
	if problems != nil {
		for _, p := range problems {
			fmt.Fprintln(env.Stderr, p.String())
		}
		return &engine.RunResult{Workflow: env.workflowName(file), File: file, Status: engine.StatusFailed,
			Error: problems.Error(), Steps: []engine.StepResult{}}, nil
	}
	o := rs.opts
	if rs.useConfigConcurrency && wf.Concurrency == 0 {
		o.Concurrency = rs.concurrency
	}
	o.OnEvent = rs.progress.event
	rs.progress.begin(wf)
	var rec *recorder.Recorder
	if rs.history != nil {
		var err error
		if rec, err = recorder.Create(ctx, rs.history, wf, recorder.Meta{Tenant: "local", Trigger: "cli", Origin: "cli"}); err != nil {
			return nil, fmt.Errorf("recording the run: %w", err)
		}
		o.RunID = rec.ID()
		o.OnEvent = func(e engine.Event) { rs.progress.event(e); rec.OnEvent(e) }
	}
	res := engine.Run(ctx, wf, o)
	res.ID = "" // `hwe run --json` has no run id unless history is kept
	if rec != nil {
		if err := rec.Err(); err != nil {
			fmt.Fprintf(env.Stderr, "hwe: warning: the run history is incomplete: %v\n", err)
		}
		res.ID = rec.ID()
	}
	if res.Status == engine.StatusCancelled {
		res.Status = engine.StatusFailed // the CLI contract knows succeeded and failed
	}
	return res, nil
}

// load reads and validates one workflow, asking the runners to check its steps.
func (env *Env) load(ctx context.Context, file string, reg *registry.Registry) (*workflow.Workflow, workflow.Problems) {
	abs := file
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(env.Dir, file)
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, workflow.Problems{{File: file, Message: err.Error()}}
	}
	wf, err := workflow.LoadSource(file, src, loadOptions(ctx, reg, filepath.Dir(abs), file))
	if err != nil {
		var ps workflow.Problems
		if errors.As(err, &ps) {
			return nil, ps
		}
		return nil, workflow.Problems{{File: file, Message: err.Error()}}
	}
	return wf, nil
}

// loadOptions wires validation to the runners: which languages exist, and
// each runner's own checks of a step (a wasm module exports its function).
func loadOptions(ctx context.Context, reg *registry.Registry, dir, file string) workflow.LoadOptions {
	return workflow.LoadOptions{
		Dir:           dir,
		KnownLanguage: reg.Has,
		CheckStep: func(s *workflow.Step, w *workflow.Workflow) []string {
			var problems []string
			if s.Allow != nil {
				for _, why := range policy.Local().Explain(*s.Allow) {
					problems = append(problems, "the local policy refuses "+why)
				}
			}
			if !reg.Has(s.Language) {
				return problems
			}
			return append(problems, reg.CheckStep(ctx, &api.StepRequest{
				Workflow: w.Name, Step: s.Name, Language: s.Language, LanguageAsWritten: s.LanguageAsWritten,
				Code: s.Code, Module: s.Module, Function: s.Function, WorkflowFile: file, WorkflowDir: w.Dir, CodeLine: s.CodeLine,
			})...)
		},
	}
}

// workflowName names a workflow that failed validation: its own `name`
// when the file still evaluates, else the file name without .lua.
func (env *Env) workflowName(file string) string {
	abs := file
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(env.Dir, file)
	}
	if src, err := os.ReadFile(abs); err == nil {
		if name := workflow.PeekName(src); name != "" {
			return name
		}
	}
	b := filepath.Base(file)
	return b[:len(b)-len(filepath.Ext(b))]
}

// writeJSONLine prints v as one compact JSON line without HTML escaping.
func writeJSONLine(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// printHuman prints step outputs the way the reference does, then a result line.
func printHuman(env *Env, res *engine.RunResult) {
	n := 0
	for _, s := range res.Steps {
		if s.Status == engine.StatusSucceeded {
			n++
			fmt.Fprintf(env.Stdout, "Step %d '%s' output: %s\n", n, s.Name, s.Output)
		}
	}
	d := time.Duration(res.DurationMS) * time.Millisecond
	if res.Status == engine.StatusSucceeded {
		fmt.Fprintf(env.Stdout, "✅ Workflow '%s' completed successfully (%s)\n", res.Workflow, d)
	} else {
		fmt.Fprintf(env.Stdout, "❌ Workflow '%s' failed: %s\n", res.Workflow, res.Error)
	}
}
