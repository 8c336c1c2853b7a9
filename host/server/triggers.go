package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/store"
	"github.com/robfig/cron/v3"
)

// parseSchedule accepts the workflow `schedule` field: five cron fields or
// a descriptor (@hourly, @daily, @every 5m, ...).
func parseSchedule(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// scheduler runs workflows that declare a schedule. The set of jobs follows
// the workflows folders: the watcher calls update for every changed file.
type scheduler struct {
	s    *Server
	cron *cron.Cron

	mu   sync.Mutex
	jobs map[string]scheduled // tenant + "/" + workflow
}

type scheduled struct {
	id   cron.EntryID
	spec string
}

func newScheduler(s *Server) *scheduler {
	return &scheduler{s: s, cron: cron.New(), jobs: map[string]scheduled{}}
}

func (sc *scheduler) start() { sc.cron.Start() }

func (sc *scheduler) stop() { <-sc.cron.Stop().Done() }

// update adds, changes or removes the schedule of one workflow.
func (sc *scheduler) update(t *tenantState, e *entry) {
	spec := ""
	if e.Workflow != nil {
		spec = e.Workflow.Schedule
	}
	key := t.Name + "/" + e.Name
	sc.mu.Lock()
	defer sc.mu.Unlock()
	old, had := sc.jobs[key]
	if had && old.spec == spec {
		return
	}
	if had {
		sc.cron.Remove(old.id)
		delete(sc.jobs, key)
	}
	if spec == "" {
		return
	}
	sched, err := parseSchedule(spec)
	if err != nil {
		return // the loader already reported it as a problem
	}
	name := e.Name
	id := sc.cron.Schedule(sched, cron.FuncJob(func() { sc.fire(t, name) }))
	sc.jobs[key] = scheduled{id: id, spec: spec}
	sc.s.log.Info("scheduled workflow", "tenant", t.Name, "workflow", name, "schedule", spec)
}

func (sc *scheduler) remove(t *tenantState, name string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	key := t.Name + "/" + name
	if old, ok := sc.jobs[key]; ok {
		sc.cron.Remove(old.id)
		delete(sc.jobs, key)
	}
}

// next reports when a workflow's schedule fires next ("" when unscheduled).
func (sc *scheduler) next(t *tenantState, name string) string {
	sc.mu.Lock()
	j, ok := sc.jobs[t.Name+"/"+name]
	sc.mu.Unlock()
	if !ok {
		return ""
	}
	n := sc.cron.Entry(j.id).Next
	if n.IsZero() {
		return ""
	}
	return n.UTC().Format("2006-01-02T15:04:05Z")
}

// fire starts a scheduled run; with the "skip" overlap policy it does
// nothing while an earlier run of the workflow is still going.
func (sc *scheduler) fire(t *tenantState, name string) {
	s := sc.s
	ctx := context.Background()
	entry := store.AuditEntry{Tenant: t.Name, Actor: "schedule", Action: "run.start", Target: name}
	if s.cfg.ScheduleOverlap == "skip" && s.runs.activeFor(t, name) > 0 {
		entry.Outcome, entry.Detail = "skipped", "the previous scheduled run is still going"
		s.audit(entry)
		return
	}
	e, err := t.catalog.get(name)
	if err == nil && e.Workflow == nil {
		err = e.Problems
	}
	if err != nil {
		entry.Outcome, entry.Detail = "failed", err.Error()
		s.audit(entry)
		return
	}
	id, err := s.runs.start(ctx, startRequest{tenant: t, entry: e, trigger: "schedule", actor: "schedule"})
	if err != nil {
		entry.Outcome, entry.Detail = "failed", err.Error()
	} else {
		entry.Outcome, entry.Detail = "ok", "run "+id
	}
	s.audit(entry)
}

// maxInputSize bounds a run's input (a webhook body or a run request).
const maxInputSize = 1 << 20

// handleWebhookPut creates or rotates a workflow's webhook and returns its
// token once.
func (s *Server) handleWebhookPut(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	if _, err := id.tenant.catalog.get(name); err != nil {
		s.workflowError(w, err)
		return
	}
	token := NewToken()
	h := store.Webhook{ID: store.NewID(), Tenant: id.tenant.Name, Workflow: name, TokenHash: HashToken(token)}
	if err := s.cfg.Store.PutWebhook(r.Context(), h); err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	s.auditOK(r, id, "webhook.put", name, "webhook "+h.ID)
	writeJSON(w, http.StatusCreated, map[string]string{
		"id": h.ID, "workflow": name, "url": "/api/v1/hooks/" + h.ID, "token": token,
	})
}

func (s *Server) handleWebhookGet(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	h, err := s.cfg.Store.WorkflowWebhook(r.Context(), id.tenant.Name, name)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeNotFound, "workflow "+name+" has no webhook")
		return
	} else if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": h.ID, "workflow": name, "url": "/api/v1/hooks/" + h.ID, "created_at": h.CreatedAt})
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	if err := s.cfg.Store.DeleteWebhook(r.Context(), id.tenant.Name, name); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeNotFound, "workflow "+name+" has no webhook")
		return
	} else if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	s.auditOK(r, id, "webhook.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
}

// handleHook starts a run from a webhook call: POST /api/v1/hooks/{id}
// with the hook's token as a bearer token (or ?token=). The request body is
// the run's input: JSON as it is, anything else as a JSON string.
func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	hookID := r.PathValue("id")
	tok := bearer(r)
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	var h store.Webhook
	var err error
	if store.ValidID(hookID) {
		h, err = s.cfg.Store.Webhook(r.Context(), hookID)
	} else {
		err = store.ErrNotFound
	}
	if err != nil || tok == "" || HashToken(tok) != h.TokenHash {
		s.audit(store.AuditEntry{Tenant: h.Tenant, Actor: "webhook", Action: "webhook.call", Target: hookID,
			Outcome: "denied", Detail: "unknown webhook or wrong token", Remote: remoteAddr(r)})
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "unknown webhook or wrong token")
		return
	}
	t := s.tenants[h.Tenant]
	if t == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "the webhook's tenant no longer exists")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInputSize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the body is larger than 1 MiB")
		return
	}
	input, err := api.Canonicalize(body)
	if err != nil { // not JSON: pass the text as a JSON string
		input, _ = json.Marshal(string(body))
	}
	id := &identity{tenant: t, actor: "webhook:" + h.ID, role: RoleOperator}
	s.startRun(w, r, id, h.Workflow, "webhook", input)
}
