// Package server is `hwe serve`: the REST API under /api/v1 (with its
// OpenAPI document), server-sent events for live runs, bearer-token tenants
// with roles, the audit log, cron schedules and webhooks, /healthz,
// Prometheus /metrics, the reference's two legacy routes, and the embedded
// web UI.
//
// Everything it runs goes through injected dependencies (Config.Executor,
// Config.Store), so the CLI wires it in a few lines and tests use fakes.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/policy"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/webui"
	"github.com/hwe-run/hwe/host/workflow"
)

// Config is everything the server needs. Executor and Store are required.
type Config struct {
	// Addr is the listen address for Serve (default 127.0.0.1:8080). It also
	// decides whether a token is needed: see Token.
	Addr string

	// Executor runs steps (the runner registry, or a NATS dispatcher).
	Executor engine.Executor
	// Store keeps run history; store.Open("") gives an in-memory one.
	Store *store.Store
	// KnownLanguage accepts languages served by third-party runners
	// (workflow.LoadOptions.KnownLanguage); nil = built-ins only.
	KnownLanguage func(canonical string) bool
	// CheckStep lets runners check steps when workflows load
	// (workflow.LoadOptions.CheckStep); nil = structural checks only.
	CheckStep func(s *workflow.Step, w *workflow.Workflow) []string
	// NewHost builds the capability-checked host API for a step attempt of
	// a tenant (nil = the engine's log-only host). The tenant carries its
	// name and policy; req.Grant is already the effective grant.
	NewHost func(tenant *Tenant, req *api.StepRequest, emit engine.HostEvents) api.Host

	// Tenants, when set, gives each tenant its tokens, policy and folder.
	// Without it there is one tenant, "local", over WorkflowsDir.
	Tenants []*Tenant
	// WorkflowsDir is the local tenant's folder (default "workflows").
	WorkflowsDir string
	// Token is the local tenant's admin token (HWE_TOKEN or --token-file).
	// Without tenants and without a token, the server needs no token but
	// Serve refuses to listen on a non-loopback address.
	Token string
	// Policy bounds the local tenant's steps (nil = policy.Strict(): no
	// network, files, variables, secrets or KV; default limits).
	Policy *policy.Policy

	// Concurrency is the steps one run executes at once (0 = the workflow's
	// setting, else the number of CPUs).
	Concurrency int
	// DefaultTimeout applies to steps that set none (0 = none).
	DefaultTimeout time.Duration
	// MaxRuns bounds runs executing at once across tenants (0 = no limit).
	MaxRuns int
	// Retention prunes finished runs hourly (zero = keep everything).
	Retention store.Retention
	// PollInterval is how often workflows folders are re-read for changes
	// and schedules (default 2s).
	PollInterval time.Duration
	// ScheduleOverlap says what a schedule does when its previous run is
	// still going: "skip" (default) or "allow".
	ScheduleOverlap string
	// ShutdownGrace is how long Serve waits for runs after cancelling them
	// on shutdown (default 10s).
	ShutdownGrace time.Duration
	// Logger receives operational messages (default slog.Default()).
	Logger *slog.Logger
}

// tenantState is a tenant with its live parts.
type tenantState struct {
	*Tenant
	catalog *catalog
	slots   chan struct{} // nil = no concurrency quota
}

// Server serves the API and the UI and runs workflows.
type Server struct {
	cfg     Config
	log     *slog.Logger
	tenants map[string]*tenantState
	order   []*tenantState
	auth    *authenticator
	runs    *runManager
	hub     *hub
	metrics *metrics
	sched   *scheduler
	handler http.Handler
	apiMux  *http.ServeMux // the /api/ routes (tests check them against openapi.json)

	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown: background loops end
	bg       sync.WaitGroup
}

// New builds a server. It marks runs left unfinished by a previous server
// on the same store as interrupted (they can be resumed).
func New(cfg Config) (*Server, error) {
	if cfg.Executor == nil {
		return nil, errors.New("server: Config.Executor is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.WorkflowsDir == "" {
		cfg.WorkflowsDir = "workflows"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	switch cfg.ScheduleOverlap {
	case "":
		cfg.ScheduleOverlap = "skip"
	case "skip", "allow":
	default:
		return nil, fmt.Errorf("server: schedule overlap %q must be skip or allow", cfg.ScheduleOverlap)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, tenants: map[string]*tenantState{}, stop: make(chan struct{})}
	s.metrics = newMetrics()
	s.hub = newHub()

	tenants := cfg.Tenants
	if len(tenants) == 0 {
		local := &Tenant{Name: LocalTenant, WorkflowsDir: cfg.WorkflowsDir, Policy: cfg.Policy}
		if cfg.Token != "" {
			local.Tokens = []Token{{Name: "token", Role: RoleAdmin, SHA256: HashToken(cfg.Token)}}
		}
		tenants = []*Tenant{local}
	}
	s.auth = &authenticator{byHash: map[string]tokenOwner{}, audit: s.auditDenied}
	for _, t := range tenants {
		ts := &tenantState{Tenant: t}
		ts.catalog = newCatalog(t.WorkflowsDir, func(file string, src []byte) (*workflow.Workflow, error) {
			return s.loadWorkflow(ts, file, src)
		})
		if t.MaxConcurrentRuns > 0 {
			ts.slots = make(chan struct{}, t.MaxConcurrentRuns)
		}
		s.tenants[t.Name] = ts
		s.order = append(s.order, ts)
		for _, tok := range t.Tokens {
			s.auth.byHash[tok.SHA256] = tokenOwner{tenant: ts, name: tok.Name, role: tok.Role}
		}
	}
	if len(cfg.Tenants) == 0 && cfg.Token == "" {
		s.auth.open = s.order[0]
	}
	s.runs = newRunManager(s)
	s.sched = newScheduler(s)

	ctx := context.Background()
	if ids, err := cfg.Store.UnfinishedRuns(ctx, originServe); err == nil {
		for _, id := range ids {
			s.log.Warn("run was in progress when the server last stopped; marking it interrupted", "run", id)
			if err := cfg.Store.Interrupt(ctx, id, interruptedCrash); err != nil {
				s.log.Error("marking run interrupted", "run", id, "err", err)
			}
		}
	} else {
		return nil, fmt.Errorf("server: reading unfinished runs: %w", err)
	}
	s.handler = s.routes(webui.Handler())
	return s, nil
}

// startTime dates the embedded documents for HTTP caching.
var startTime = time.Now()

const (
	originServe       = "serve"
	interruptedCrash  = "the server stopped while this run was in progress; retry it to finish the steps that did not succeed"
	interruptedSignal = "the server shut down while this run was in progress; retry it to finish the steps that did not succeed"
)

// loadWorkflow validates a workflow for a tenant: the loader's checks, a
// schedule cron can parse, and runners the tenant may use.
func (s *Server) loadWorkflow(t *tenantState, file string, src []byte) (*workflow.Workflow, error) {
	wf, err := workflow.LoadSource(file, src, workflow.LoadOptions{KnownLanguage: s.cfg.KnownLanguage, CheckStep: s.cfg.CheckStep})
	if err != nil {
		return nil, err
	}
	var ps workflow.Problems
	if wf.Schedule != "" {
		if _, err := parseSchedule(wf.Schedule); err != nil {
			ps = append(ps, workflow.Problem{File: file, Line: lineOf(src, "schedule"), Message: fmt.Sprintf("schedule %q: %v", wf.Schedule, err)})
		}
	}
	if len(t.Runners) > 0 {
		for _, st := range wf.Steps {
			if !api.Allows(t.Runners, st.Language) {
				ps = append(ps, workflow.Problem{File: file, Line: st.Line,
					Message: fmt.Sprintf("step %q: runner %s is not allowed for tenant %s", st.Name, st.Language, t.Name)})
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return wf, nil
}

// lineOf returns the 1-based line of the first `key =` assignment in src, or 0.
func lineOf(src []byte, key string) int {
	line := 1
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			line++
			continue
		}
		if (i == 0 || src[i-1] == '\n' || src[i-1] == ' ' || src[i-1] == '\t' || src[i-1] == '{' || src[i-1] == ',') &&
			len(src)-i > len(key) && string(src[i:i+len(key)]) == key {
			rest := src[i+len(key):]
			for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
				rest = rest[1:]
			}
			if len(rest) > 0 && rest[0] == '=' {
				return line
			}
		}
	}
	return 0
}

// Handler is the whole HTTP surface: API, legacy routes, health, metrics, UI.
func (s *Server) Handler() http.Handler { return s.handler }

// Start runs the background work: watching workflows folders (which also
// keeps schedules current), cron schedules and retention. Shutdown stops it.
func (s *Server) Start() {
	s.watchOnce()
	s.sched.start()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		tick := time.NewTicker(s.cfg.PollInterval)
		defer tick.Stop()
		prune := time.NewTicker(time.Hour)
		defer prune.Stop()
		s.prune()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				s.watchOnce()
			case <-prune.C:
				s.prune()
			}
		}
	}()
}

// watchOnce re-reads every tenant's folder, records changed files as new
// versions and updates their schedules.
func (s *Server) watchOnce() {
	for _, t := range s.order {
		for _, name := range t.catalog.scan() {
			e, err := t.catalog.get(name)
			if err != nil {
				s.sched.remove(t, name)
				continue
			}
			if _, err := s.cfg.Store.SaveVersion(context.Background(), t.Name, name, "", "disk", e.Source); err != nil {
				s.log.Error("recording workflow version", "tenant", t.Name, "workflow", name, "err", err)
			}
			s.sched.update(t, e)
		}
	}
}

func (s *Server) prune() {
	r := s.cfg.Retention
	if r.MaxAge == 0 && r.MaxRuns == 0 {
		return
	}
	n, err := s.cfg.Store.Prune(context.Background(), r)
	if err != nil {
		s.log.Error("pruning run history", "err", err)
	} else if n > 0 {
		s.log.Info("pruned run history", "runs", n)
	}
}

// Shutdown stops schedules and background work, cancels every active run
// and waits (until ctx ends) for them to record how far they got. Runs that
// were still going are recorded as interrupted, so they can be resumed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.sched.stop()
	err := s.runs.shutdown(ctx)
	s.hub.closeAll()
	s.bg.Wait()
	return err
}

// Serve listens on cfg.Addr and serves until ctx is cancelled, then shuts
// down gracefully. Without tenants and without a token it refuses a
// non-loopback address. ready, if not nil, receives the bound address.
func Serve(ctx context.Context, cfg Config, ready func(addr net.Addr)) error {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if len(cfg.Tenants) == 0 && cfg.Token == "" && !isLoopback(cfg.Addr) {
		return fmt.Errorf("refusing to serve on %s without a token: set HWE_TOKEN or --token-file, use a tenants file, or listen on 127.0.0.1", cfg.Addr)
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr())
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: event streams stay open for as long as a run lasts.
	}
	s.Start()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
		defer cancel()
		s.Shutdown(sctx)
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	runErr := s.Shutdown(sctx) // ends event streams too, so hs.Shutdown need not wait for them
	hs.Shutdown(sctx)
	return runErr
}

// auditDenied records a refused request.
func (s *Server) auditDenied(r *http.Request, id *identity, action, target, detail string) {
	s.audit(auditEntry(r, id, action, target, "denied", detail))
}

func (s *Server) auditOK(r *http.Request, id *identity, action, target, detail string) {
	s.audit(auditEntry(r, id, action, target, "ok", detail))
}

func (s *Server) audit(e store.AuditEntry) {
	if err := s.cfg.Store.Audit(context.Background(), e); err != nil {
		s.log.Error("writing audit log", "err", err)
	}
}
