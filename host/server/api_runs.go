package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/workflow"
)

// handleRunStart starts a run: 202 {"id"} as soon as it is recorded. An
// optional JSON body {"input": ...} becomes the run's input ($HWE_INPUT).
func (s *Server) handleRunStart(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInputSize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the body is larger than 1 MiB")
		return
	}
	var input json.RawMessage
	if len(bytes.TrimSpace(body)) > 0 {
		var req struct {
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, `the body must be empty or {"input": <JSON>}`)
			return
		}
		if len(req.Input) > 0 {
			if input, err = api.Canonicalize(req.Input); err != nil {
				writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
				return
			}
		}
	}
	s.startRun(w, r, id, name, "api", input)
}

// startRun starts a run of a tenant's workflow and answers 202 {"id"}.
func (s *Server) startRun(w http.ResponseWriter, r *http.Request, id *identity, name, trigger string, input json.RawMessage) {
	e, err := id.tenant.catalog.get(name)
	if err != nil {
		s.workflowError(w, err)
		return
	}
	if e.Workflow == nil {
		writeProblems(w, http.StatusUnprocessableEntity, "the workflow is invalid", e.Problems)
		return
	}
	runID, err := s.runs.start(r.Context(), startRequest{tenant: id.tenant, entry: e, trigger: trigger, actor: id.actor, input: input})
	if err != nil {
		var ps workflow.Problems
		switch {
		case errors.Is(err, errShutdown):
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		case errors.As(err, &ps):
			writeProblems(w, http.StatusUnprocessableEntity, "the workflow is invalid", ps)
		default:
			writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		}
		return
	}
	s.auditOK(r, id, "run.start", name, "run "+runID+" ("+trigger+")")
	w.Header().Set("Location", "/api/v1/runs/"+runID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": runID})
}

// lookupRun loads the {id} run of the caller's tenant. Another tenant's run
// answers 404, exactly like a missing one, and is audited as a denial.
func (s *Server) lookupRun(w http.ResponseWriter, r *http.Request, id *identity) (*store.Run, bool) {
	runID := r.PathValue("id")
	if !store.ValidID(runID) {
		writeError(w, http.StatusBadRequest, codeBadRequest, "invalid run id")
		return nil, false
	}
	run, err := s.cfg.Store.GetRun(r.Context(), runID)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such run")
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return nil, false
	}
	if run.Tenant != id.tenant.Name {
		s.auditDenied(r, id, "run.read", runID, "run belongs to another tenant")
		writeError(w, http.StatusNotFound, codeNotFound, "no such run")
		return nil, false
	}
	return run, true
}

// runSummary is a run in the history list (no steps).
type runSummary struct {
	ID         string    `json:"id"`
	Workflow   string    `json:"workflow"`
	WorkflowID string    `json:"workflow_id"`
	File       string    `json:"file"`
	Status     string    `json:"status"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	Attempt    int       `json:"attempt"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request, id *identity) {
	q := r.URL.Query()
	limit, offset := 50, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, codeBadRequest, "limit must be 1 to 500")
			return
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, "offset must be 0 or more")
			return
		}
		offset = n
	}
	runs, total, err := s.cfg.Store.ListRuns(r.Context(), store.RunFilter{
		Tenant: id.tenant.Name, Workflow: q.Get("workflow"), Status: q.Get("status"), Limit: limit, Offset: offset,
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	out := make([]runSummary, len(runs))
	for i, run := range runs {
		out[i] = runSummary{ID: run.ID, Workflow: run.Workflow, WorkflowID: run.WorkflowID, File: run.File, Status: run.Status,
			DurationMS: run.DurationMS, Error: run.Error, Trigger: run.Trigger, Actor: run.Actor, Attempt: run.Attempt,
			CreatedAt: run.CreatedAt, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out, "total": total, "limit": limit, "offset": offset})
}

// handleRun answers one run in the `hwe run --json` shape plus its id.
func (s *Server) handleRun(w http.ResponseWriter, r *http.Request, id *identity) {
	run, ok := s.lookupRun(w, r, id)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// handleLogs lists a run's log lines (optionally of one step, after a
// sequence number).
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request, id *identity) {
	run, ok := s.lookupRun(w, r, id)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	logs, err := s.cfg.Store.Events(r.Context(), run.ID, store.EventFilter{
		After: after, Types: []string{store.EventStepLog}, Step: r.URL.Query().Get("step"),
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	if logs == nil {
		logs = []store.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run.ID, "logs": logs})
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, id *identity) {
	run, ok := s.lookupRun(w, r, id)
	if !ok {
		return
	}
	if !s.runs.cancel(id.tenant, run.ID) {
		writeError(w, http.StatusConflict, codeConflict, fmt.Sprintf("run %s is %s; only a queued or running run can be cancelled", run.ID, run.Status))
		return
	}
	s.auditOK(r, id, "run.cancel", run.ID, run.WorkflowID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": run.ID, "status": "cancelling"})
}

// handleRetry re-runs what did not succeed in a finished run, reusing the
// stored outputs of the steps that did; the run keeps its id.
func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request, id *identity) {
	run, ok := s.lookupRun(w, r, id)
	if !ok {
		return
	}
	err := s.runs.retry(r.Context(), id.tenant, run.ID, id.actor)
	var se *store.StateError
	var ps workflow.Problems
	switch {
	case err == nil:
	case errors.As(err, &se):
		writeError(w, http.StatusConflict, codeConflict, fmt.Sprintf("run %s is %s; only a failed, cancelled or interrupted run can be retried", run.ID, se.Status))
		return
	case errors.Is(err, errShutdown):
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	case errors.As(err, &ps):
		writeProblems(w, http.StatusUnprocessableEntity, "the run's workflow no longer validates", ps)
		return
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	s.auditOK(r, id, "run.retry", run.ID, run.WorkflowID)
	w.Header().Set("Location", "/api/v1/runs/"+run.ID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": run.ID})
}

// handleAudit lists the audit log: the caller's tenant only when there are
// several tenants; everything on a single-tenant server.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, id *identity) {
	q := r.URL.Query()
	f := store.AuditFilter{Outcome: q.Get("outcome")}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	if len(s.cfg.Tenants) > 0 {
		f.Tenant = id.tenant.Name
	}
	entries, err := s.cfg.Store.AuditLog(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
