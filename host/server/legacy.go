package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/hwe-run/hwe/host/store"
)

// The reference server's two routes keep their exact response shapes, so
// its web UI and scripts written against it keep working. Unlike the
// reference, names cannot leave the workflows folder, the routes need a
// token when the server does, runs are recorded in the history, and a
// failed run reports the steps that ran instead of an empty list.

// legacyWorkflowInfo is the reference's WorkflowInfo.
type legacyWorkflowInfo struct {
	Name        string  `json:"name"`
	DisplayName string  `json:"display_name"`
	Description *string `json:"description"`
	Path        string  `json:"path"`
}

// legacyExecution is the reference's WorkflowExecution (fields in its order).
type legacyExecution struct {
	WorkflowName    string       `json:"workflow_name"`
	Status          string       `json:"status"` // "completed" | "failed"
	Steps           []legacyStep `json:"steps"`
	TotalDurationMS int64        `json:"total_duration_ms"`
	Error           *string      `json:"error"`
}

type legacyStep struct {
	StepNumber int    `json:"step_number"`
	Name       string `json:"name"`
	Language   string `json:"language"`
	Output     string `json:"output"` // the step's compact JSON, as a string
	Status     string `json:"status"` // "success" | "failed"
	DurationMS int64  `json:"duration_ms"`
}

// handleLegacyList is GET /api/workflows: every workflow, sorted by display name.
func (s *Server) handleLegacyList(w http.ResponseWriter, r *http.Request, id *identity) {
	out := []legacyWorkflowInfo{}
	for _, e := range id.tenant.catalog.list() {
		info := legacyWorkflowInfo{Name: e.Name, DisplayName: e.Name, Path: e.Path}
		if e.Workflow != nil {
			if e.Workflow.Name != "" {
				info.DisplayName = e.Workflow.Name
			}
			if d := e.Workflow.Description; d != "" {
				info.Description = &d
			}
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DisplayName < out[j].DisplayName })
	writeJSON(w, http.StatusOK, out)
}

// handleLegacyRun is POST /api/workflows/{name}/run: it runs the workflow to
// the end and answers 200 with the execution, even when the run failed; a
// missing (or unacceptable) name is a 404 with an empty body.
func (s *Server) handleLegacyRun(w http.ResponseWriter, r *http.Request, id *identity) {
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		s.auditDenied(r, id, "path", name, err.Error())
		w.WriteHeader(http.StatusNotFound)
		return
	}
	e, err := id.tenant.catalog.get(name)
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	failed := func(msg string) {
		writeJSON(w, http.StatusOK, legacyExecution{WorkflowName: name, Status: "failed", Steps: []legacyStep{}, Error: &msg})
	}
	if e.Workflow == nil {
		failed(e.Problems.Error())
		return
	}
	runID, err := s.runs.start(r.Context(), startRequest{tenant: id.tenant, entry: e, trigger: "legacy", actor: id.actor})
	if err != nil {
		failed(err.Error())
		return
	}
	s.auditOK(r, id, "run.start", name, "run "+runID+" (legacy)")
	if err := s.waitRun(r.Context(), runID); err != nil {
		// The client went away; the run goes on and stays in the history.
		return
	}
	run, err := s.cfg.Store.GetRun(context.Background(), runID)
	if err != nil {
		failed(err.Error())
		return
	}
	writeJSON(w, http.StatusOK, legacyFromRun(name, run))
}

func legacyFromRun(name string, run *store.Run) legacyExecution {
	ex := legacyExecution{WorkflowName: name, Status: "completed", Steps: []legacyStep{}, TotalDurationMS: run.DurationMS}
	if run.Status != store.StatusSucceeded {
		ex.Status = "failed"
		msg := run.Error
		ex.Error = &msg
	}
	for _, st := range run.Steps {
		var status, output string
		switch st.Status {
		case store.StatusSucceeded:
			status, output = "success", string(st.Output)
			if st.Output == nil {
				output = "null"
			}
		case store.StatusFailed:
			b, _ := json.Marshal(st.Error)
			status, output = "failed", string(b)
		default:
			continue // skipped or cancelled: it never ran
		}
		ex.Steps = append(ex.Steps, legacyStep{StepNumber: len(ex.Steps) + 1, Name: st.Name, Language: st.Language,
			Output: output, Status: status, DurationMS: st.DurationMS})
	}
	return ex
}

// waitRun blocks until the run is no longer active or ctx ends.
func (s *Server) waitRun(ctx context.Context, runID string) error {
	sub := s.hub.subscribe(runID)
	defer s.hub.unsubscribe(runID, sub)
	for s.runs.isActive(runID) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.done:
			return nil
		case ev := <-sub.ch:
			if ev.Type == store.EventRunFinished {
				return nil
			}
		case <-sub.wake:
		case <-time.After(250 * time.Millisecond): // re-check, in case the last event was missed
		}
	}
	return nil
}
