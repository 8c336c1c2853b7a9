package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/policy"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/store/recorder"
	"github.com/hwe-run/hwe/host/workflow"
	"github.com/urfave/cli/v2"
)

// Runtime is what main provides to `hwe serve` and `hwe runs resume`: the
// executor and the checks that come from the installed runners.
type Runtime struct {
	Executor       engine.Executor
	KnownLanguage  func(canonical string) bool
	CheckStep      func(s *workflow.Step, w *workflow.Workflow) []string
	NewHost        func(tenant *Tenant, req *api.StepRequest, emit engine.HostEvents) api.Host
	Policy         *policy.Policy // the local tenant's policy (nil = policy.Strict())
	Concurrency    int
	DefaultTimeout time.Duration
	Close          func() error // releases the executor (nil = nothing to do)
}

// Defaults are the configured values that flags override.
type Defaults struct {
	Addr         string // default 127.0.0.1:8080
	DataDir      string // default .hwe
	WorkflowsDir string // default workflows
}

// Deps wires the commands to the rest of hwe.
type Deps struct {
	// Defaults returns the configuration's values (nil = built-in defaults).
	Defaults func(c *cli.Context) (Defaults, error)
	// Runtime builds the executor for a command. It may read the serve
	// flags --nats, --nats-listen and --slots from c.
	Runtime func(c *cli.Context) (*Runtime, error)
	// Getenv reads HWE_TOKEN (nil = os.Getenv).
	Getenv func(string) string
	// Context is cancelled to stop `hwe serve` (nil = SIGINT or SIGTERM).
	Context context.Context
}

func (d Deps) defaults(c *cli.Context) (Defaults, error) {
	var def Defaults
	if d.Defaults != nil {
		var err error
		if def, err = d.Defaults(c); err != nil {
			return def, err
		}
	}
	pick := func(flag, configured, builtin string) string {
		if c.IsSet(flag) {
			return c.String(flag)
		}
		if configured != "" {
			return configured
		}
		return builtin
	}
	return Defaults{
		Addr:         pick("addr", def.Addr, "127.0.0.1:8080"),
		DataDir:      pick("data", def.DataDir, ".hwe"),
		WorkflowsDir: pick("workflows", def.WorkflowsDir, "workflows"),
	}, nil
}

func (d Deps) getenv(k string) string {
	if d.Getenv != nil {
		return d.Getenv(k)
	}
	return os.Getenv(k)
}

// Commands returns `hwe serve` and `hwe runs` for the CLI.
func Commands(d Deps) []*cli.Command {
	return []*cli.Command{ServeCommand(d), RunsCommand(d)}
}

var dataFlag = &cli.StringFlag{Name: "data", Usage: "data `DIR` holding the run history (default: configured data_dir, else .hwe)"}

// ServeCommand is `hwe serve`.
func ServeCommand(d Deps) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the REST API and web UI over the workflows folder",
		Description: `Serves /api/v1 (OpenAPI at /api/v1/openapi.json), the web UI at /, /healthz and /metrics.
Without --tenants there is one local tenant over the workflows folder: on a loopback
address it needs no token; elsewhere it refuses to start unless HWE_TOKEN or --token-file
sets one. Runs are recorded in DIR/hwe.db; runs cut short by a crash or shutdown are
marked interrupted and can be finished with the Retry button or 'hwe runs resume ID'.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Usage: "listen `ADDRESS` (default: configured addr, else 127.0.0.1:8080)"},
			dataFlag,
			&cli.StringFlag{Name: "workflows", Usage: "the local tenant's workflows `DIR` (default: configured workflows_dir, else workflows)"},
			&cli.StringFlag{Name: "tenants", Usage: "tenants `FILE` (TOML or JSON): tokens, roles, policies and folders per tenant"},
			&cli.StringFlag{Name: "token-file", Usage: "`FILE` holding the local tenant's token (else $HWE_TOKEN)"},
			&cli.StringFlag{Name: "nats", Usage: "external NATS `URL` to dispatch steps through (default: embedded server)"},
			&cli.StringFlag{Name: "nats-listen", Usage: "open the embedded NATS server to workers on `ADDRESS`"},
			&cli.IntFlag{Name: "slots", Value: runtime.NumCPU(), Usage: "steps this server runs itself (0 = dispatch only)"},
			&cli.IntFlag{Name: "max-runs", Usage: "runs executing at once across tenants (0 = no limit)"},
			&cli.IntFlag{Name: "keep-runs", Usage: "keep at most `N` finished runs per tenant (0 = all)"},
			&cli.DurationFlag{Name: "keep-for", Usage: "delete finished runs older than this (0 = never)"},
			&cli.StringFlag{Name: "schedule-overlap", Value: "skip", Usage: "when a scheduled run is due while the last one still runs: skip or allow"},
			&cli.DurationFlag{Name: "poll", Value: 2 * time.Second, Usage: "how often workflows folders are checked for changes"},
			&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "how long shutdown waits for cancelled runs to record their state"},
		},
		Action: func(c *cli.Context) error { return serveAction(c, d) },
		Subcommands: []*cli.Command{{
			Name:  "token",
			Usage: "print a new random token and the tenants-file entry with its hash",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "name", Value: "token", Usage: "the token's name in the audit log"},
				&cli.StringFlag{Name: "role", Value: "operator", Usage: "viewer, operator or admin"},
			},
			Action: func(c *cli.Context) error {
				if _, err := ParseRole(c.String("role")); err != nil {
					return cli.Exit(err.Error(), 2)
				}
				tok := NewToken()
				fmt.Fprintf(c.App.Writer, "token: %s\n\n  [[tenant.token]]\n  name = %q\n  role = %q\n  sha256 = %q\n",
					tok, c.String("name"), c.String("role"), HashToken(tok))
				return nil
			},
		}},
	}
}

func serveAction(c *cli.Context, d Deps) error {
	if c.NArg() > 0 {
		return cli.Exit("hwe serve takes no arguments", 2)
	}
	def, err := d.defaults(c)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	cfg := Config{
		Addr: def.Addr, WorkflowsDir: def.WorkflowsDir, MaxRuns: c.Int("max-runs"),
		Retention:       store.Retention{MaxRuns: c.Int("keep-runs"), MaxAge: c.Duration("keep-for")},
		ScheduleOverlap: c.String("schedule-overlap"), PollInterval: c.Duration("poll"), ShutdownGrace: c.Duration("grace"),
		Logger: slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)),
	}
	if f := c.String("tenants"); f != "" {
		if cfg.Tenants, err = LoadTenants(f); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	if f := c.String("token-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cli.Exit("--token-file: "+err.Error(), 2)
		}
		cfg.Token = strings.TrimSpace(string(b))
		if cfg.Token == "" {
			return cli.Exit("--token-file: the file is empty", 2)
		}
	} else {
		cfg.Token = d.getenv("HWE_TOKEN")
	}
	if len(cfg.Tenants) == 0 && cfg.Token == "" && !isLoopback(cfg.Addr) {
		return cli.Exit(fmt.Sprintf("refusing to serve on %s without a token: set HWE_TOKEN or --token-file, use --tenants, or listen on 127.0.0.1", cfg.Addr), 2)
	}
	if d.Runtime == nil {
		return cli.Exit("hwe serve: no runners are wired in", 1)
	}
	rt, err := d.Runtime(c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if rt.Close != nil {
		defer rt.Close()
	}
	cfg.Executor, cfg.KnownLanguage, cfg.CheckStep, cfg.NewHost = rt.Executor, rt.KnownLanguage, rt.CheckStep, rt.NewHost
	cfg.Policy, cfg.Concurrency, cfg.DefaultTimeout = rt.Policy, rt.Concurrency, rt.DefaultTimeout
	st, err := store.Open(def.DataDir)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	defer st.Close()
	cfg.Store = st

	ctx := d.Context
	if ctx == nil {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	return Serve(ctx, cfg, func(addr net.Addr) {
		fmt.Fprintf(c.App.ErrWriter, "hwe serve: listening on http://%s (history in %s)\n", addr, st.Path())
	})
}

// RunsCommand is `hwe runs list|show|resume|prune`.
func RunsCommand(d Deps) *cli.Command {
	open := func(c *cli.Context) (*store.Store, error) {
		def, err := d.defaults(c)
		if err != nil {
			return nil, cli.Exit(err.Error(), 2)
		}
		if _, err := os.Stat(def.DataDir); err != nil {
			return nil, cli.Exit(fmt.Sprintf("no run history in %s (set --data or data_dir)", def.DataDir), 1)
		}
		st, err := store.Open(def.DataDir)
		if err != nil {
			return nil, cli.Exit(err.Error(), 1)
		}
		return st, nil
	}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	return &cli.Command{
		Name:  "runs",
		Usage: "list, show, resume and prune recorded runs",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list recorded runs, newest first",
				Flags: []cli.Flag{dataFlag, jsonFlag,
					&cli.StringFlag{Name: "workflow", Usage: "only runs of this workflow"},
					&cli.StringFlag{Name: "status", Usage: "only runs with this status"},
					&cli.StringFlag{Name: "tenant", Usage: "only runs of this tenant"},
					&cli.IntFlag{Name: "limit", Value: 20, Usage: "how many"},
				},
				Action: func(c *cli.Context) error {
					st, err := open(c)
					if err != nil {
						return err
					}
					defer st.Close()
					runs, total, err := st.ListRuns(c.Context, store.RunFilter{Tenant: c.String("tenant"), Workflow: c.String("workflow"),
						Status: c.String("status"), Limit: c.Int("limit")})
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					w := c.App.Writer
					if c.Bool("json") {
						enc := json.NewEncoder(w)
						for _, r := range runs {
							r.Steps = []store.Step{}
							enc.Encode(r)
						}
						return nil
					}
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSTATUS\tWORKFLOW\tTRIGGER\tCREATED\tDURATION")
					for _, r := range runs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.WorkflowID, r.Trigger,
							r.CreatedAt.Local().Format("2006-01-02 15:04:05"), time.Duration(r.DurationMS)*time.Millisecond)
					}
					tw.Flush()
					if total > len(runs) {
						fmt.Fprintf(c.App.ErrWriter, "(%d of %d runs; --limit shows more)\n", len(runs), total)
					}
					return nil
				},
			},
			{
				Name:      "show",
				Usage:     "show one run: its steps, outputs and (with --logs) log lines",
				ArgsUsage: "RUN_ID",
				Flags:     []cli.Flag{dataFlag, jsonFlag, &cli.BoolFlag{Name: "logs", Usage: "also print the log lines"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: hwe runs show RUN_ID", 2)
					}
					st, err := open(c)
					if err != nil {
						return err
					}
					defer st.Close()
					run, err := st.GetRun(c.Context, c.Args().First())
					if errors.Is(err, store.ErrNotFound) {
						return cli.Exit("no run "+c.Args().First(), 1)
					} else if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					if c.Bool("json") {
						return json.NewEncoder(c.App.Writer).Encode(run)
					}
					printRun(c.App.Writer, run)
					if c.Bool("logs") {
						logs, err := st.Events(c.Context, run.ID, store.EventFilter{Types: []string{store.EventStepLog}})
						if err != nil {
							return cli.Exit(err.Error(), 1)
						}
						fmt.Fprintln(c.App.Writer, "\nlogs:")
						for _, l := range logs {
							fmt.Fprintf(c.App.Writer, "  [%s] %s\n", l.Step, l.Line)
						}
					}
					return nil
				},
			},
			{
				Name:      "resume",
				Usage:     "finish a failed, cancelled or interrupted run: re-run what did not succeed, reusing stored outputs",
				ArgsUsage: "RUN_ID",
				Flags: []cli.Flag{dataFlag, jsonFlag,
					&cli.BoolFlag{Name: "force", Usage: "resume a run recorded as queued or running (its process is gone)"},
					&cli.StringFlag{Name: "tenants", Usage: "tenants `FILE`, for the policy of a tenant's run"}},
				Action: func(c *cli.Context) error { return resumeAction(c, d, open) },
			},
			{
				Name:  "prune",
				Usage: "delete finished runs by age or count",
				Flags: []cli.Flag{dataFlag,
					&cli.IntFlag{Name: "keep-runs", Usage: "keep at most N finished runs per tenant"},
					&cli.DurationFlag{Name: "keep-for", Usage: "delete finished runs older than this"},
				},
				Action: func(c *cli.Context) error {
					r := store.Retention{MaxRuns: c.Int("keep-runs"), MaxAge: c.Duration("keep-for")}
					if r.MaxRuns == 0 && r.MaxAge == 0 {
						return cli.Exit("give --keep-runs or --keep-for", 2)
					}
					st, err := open(c)
					if err != nil {
						return err
					}
					defer st.Close()
					n, err := st.Prune(c.Context, r)
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					fmt.Fprintf(c.App.Writer, "deleted %d runs\n", n)
					return nil
				},
			},
		},
	}
}

func resumeAction(c *cli.Context, d Deps, open func(*cli.Context) (*store.Store, error)) error {
	if c.NArg() != 1 {
		return cli.Exit("usage: hwe runs resume RUN_ID", 2)
	}
	id := c.Args().First()
	st, err := open(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Bool("force") {
		if err := st.Interrupt(c.Context, id, "resumed with --force"); err != nil {
			return cli.Exit(err.Error(), 1)
		}
	}
	if d.Runtime == nil {
		return cli.Exit("hwe runs resume: no runners are wired in", 1)
	}
	rt, err := d.Runtime(c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if rt.Close != nil {
		defer rt.Close()
	}
	res, err := recorder.Resume(c.Context, st, id, "cli", func(file string, src []byte) (*workflow.Workflow, error) {
		return workflow.LoadSource(file, src, workflow.LoadOptions{KnownLanguage: rt.KnownLanguage, CheckStep: rt.CheckStep})
	})
	var se *store.StateError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return cli.Exit("no run "+id, 1)
	case errors.As(err, &se):
		hint := ""
		if se.Status == store.StatusRunning || se.Status == store.StatusQueued {
			hint = " (if no process is running it any more, add --force)"
		}
		return cli.Exit(err.Error()+"; nothing to resume"+hint, 1)
	case err != nil:
		return cli.Exit(err.Error(), 1)
	}
	withInput(res.Workflow, res.Run.Input)
	// The run resumes under the local policy (or the tenant's, with --tenants).
	tenant := &Tenant{Name: res.Run.Tenant, Policy: rt.Policy}
	if f := c.String("tenants"); f != "" {
		tenants, err := LoadTenants(f)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		tenant = nil
		for _, t := range tenants {
			if t.Name == res.Run.Tenant {
				tenant = t
			}
		}
		if tenant == nil {
			return cli.Exit(fmt.Sprintf("run %s belongs to tenant %s, which is not in %s", id, res.Run.Tenant, f), 1)
		}
	}
	opts := engine.Options{RunID: id, Executor: rt.Executor, Previous: res.Previous, Grant: policyOf(tenant).Effective,
		Concurrency: rt.Concurrency, DefaultTimeout: rt.DefaultTimeout, OnEvent: res.Recorder.OnEvent}
	if res.Run.Tenant != LocalTenant {
		opts.Tenant = res.Run.Tenant
	}
	if rt.NewHost != nil {
		opts.NewHost = func(req *api.StepRequest, emit engine.HostEvents) api.Host { return rt.NewHost(tenant, req, emit) }
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(c.App.ErrWriter, "resuming run %s (attempt %d): reusing %d step outputs\n", id, res.Attempt, len(res.Previous))
	engine.Run(ctx, res.Workflow, opts)
	if err := res.Recorder.Err(); err != nil {
		return cli.Exit("recording the run: "+err.Error(), 1)
	}
	run, err := st.GetRun(context.Background(), id)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if c.Bool("json") {
		json.NewEncoder(c.App.Writer).Encode(run)
	} else {
		printRun(c.App.Writer, run)
	}
	if run.Status != store.StatusSucceeded {
		return cli.Exit("", 1)
	}
	return nil
}

// printRun writes a run for people.
func printRun(w io.Writer, r *store.Run) {
	fmt.Fprintf(w, "run %s: %s (%s) %s in %s, attempt %d, trigger %s\n", r.ID, r.WorkflowID, r.Workflow, r.Status,
		time.Duration(r.DurationMS)*time.Millisecond, r.Attempt, r.Trigger)
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tLANGUAGE\tSTATUS\tATTEMPTS\tDURATION\tOUTPUT")
	for _, s := range r.Steps {
		out := string(s.Output)
		if s.Error != "" {
			out = "error: " + s.Error
		}
		if len(out) > 80 {
			out = out[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Language, s.Status, s.Attempts,
			time.Duration(s.DurationMS)*time.Millisecond, strings.ReplaceAll(out, "\n", " "))
	}
	tw.Flush()
}
