package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/workflow"
)

// workflowSummary is a workflow in the list.
type workflowSummary struct {
	Name        string        `json:"name"`               // the API name: the file stem
	Workflow    string        `json:"workflow,omitempty"` // the name the file declares
	Description string        `json:"description,omitempty"`
	File        string        `json:"file"`
	Valid       bool          `json:"valid"`
	Problems    []problemJSON `json:"problems,omitempty"`
	Schedule    string        `json:"schedule,omitempty"`
	NextRun     string        `json:"next_run,omitempty"`
	Steps       int           `json:"steps"`
	Languages   []string      `json:"languages"`
	ModifiedAt  time.Time     `json:"modified_at"`
}

// workflowDetail is one workflow with its source and graph.
type workflowDetail struct {
	workflowSummary
	Source  string              `json:"source"`
	Graph   *workflow.GraphData `json:"graph,omitempty"`
	Version int                 `json:"version,omitempty"` // set by PUT: the version just stored
}

func (s *Server) summary(t *tenantState, e *entry) workflowSummary {
	ws := workflowSummary{Name: e.Name, File: e.Path, Valid: e.Workflow != nil, ModifiedAt: e.ModTime.UTC(), Languages: []string{}}
	if e.Workflow == nil {
		ws.Problems = problemsJSON(e.Problems)
		return ws
	}
	wf := e.Workflow
	ws.Workflow, ws.Description, ws.Schedule, ws.Steps = wf.Name, wf.Description, wf.Schedule, len(wf.Steps)
	ws.NextRun = s.sched.next(t, e.Name)
	for _, st := range wf.Steps {
		if !slices.Contains(ws.Languages, st.LanguageAsWritten) {
			ws.Languages = append(ws.Languages, st.LanguageAsWritten)
		}
	}
	sort.Strings(ws.Languages)
	return ws
}

func (s *Server) detail(t *tenantState, e *entry) workflowDetail {
	d := workflowDetail{workflowSummary: s.summary(t, e), Source: string(e.Source)}
	if e.Workflow != nil {
		g := workflow.GraphOf(e.Workflow)
		d.Graph = &g
	}
	return d
}

// workflowName reads and checks the {name} path value. A name that could
// leave the workflows folder is refused (400) and audited.
func (s *Server) workflowName(w http.ResponseWriter, r *http.Request, id *identity) (string, bool) {
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		s.auditDenied(r, id, "path", name, err.Error())
		writeError(w, http.StatusBadRequest, codeInvalidName, err.Error())
		return "", false
	}
	return name, true
}

func (s *Server) workflowError(w http.ResponseWriter, err error) {
	if errors.Is(err, errNoWorkflow) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such workflow")
		return
	}
	writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
}

func (s *Server) handleWorkflows(w http.ResponseWriter, r *http.Request, id *identity) {
	list := []workflowSummary{}
	for _, e := range id.tenant.catalog.list() {
		list = append(list, s.summary(id.tenant, e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflows": list})
}

func (s *Server) handleWorkflow(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	e, err := id.tenant.catalog.get(name)
	if err != nil {
		s.workflowError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.detail(id.tenant, e))
}

func (s *Server) handleWorkflowGraph(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	e, err := id.tenant.catalog.get(name)
	if err != nil {
		s.workflowError(w, err)
		return
	}
	if e.Workflow == nil {
		writeProblems(w, http.StatusUnprocessableEntity, "the workflow is invalid", e.Problems)
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	out, err := workflow.Graph(e.Workflow, format)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	ct := "text/plain; charset=utf-8"
	if format == "json" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(out)
}

// readSource reads a workflow source from a request body: the raw Lua
// text, or {"source": "..."} when the body is JSON.
func readSource(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSourceSize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("a workflow source is at most %d bytes", maxSourceSize))
		return nil, false
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		var req struct {
			Source *string `json:"source"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Source == nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, `a JSON body must be {"source": "<lua>"}`)
			return nil, false
		}
		body = []byte(*req.Source)
	}
	return body, true
}

// handleWorkflowPut creates or replaces a workflow. The source is validated
// first (422 with the problems and their lines if invalid); the content it
// replaces stays available as an earlier version.
func (s *Server) handleWorkflowPut(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	src, ok := readSource(w, r)
	if !ok {
		return
	}
	t := id.tenant
	if _, err := s.loadWorkflow(t, t.catalog.path(name), src); err != nil {
		var ps workflow.Problems
		if !errors.As(err, &ps) {
			ps = workflow.Problems{{File: t.catalog.path(name), Message: err.Error()}}
		}
		writeProblems(w, http.StatusUnprocessableEntity, "the workflow is invalid; nothing was saved", ps)
		return
	}
	ctx := r.Context()
	// Keep what is on disk now (perhaps edited by hand) as a version first.
	if old, err := t.catalog.get(name); err == nil {
		s.cfg.Store.SaveVersion(ctx, t.Name, name, "", "disk", old.Source)
	}
	existed, err := t.catalog.write(name, src)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	v, err := s.cfg.Store.SaveVersion(ctx, t.Name, name, id.actor, "put", src)
	if err != nil {
		s.log.Error("recording workflow version", "err", err)
	}
	e, err := t.catalog.get(name)
	if err != nil {
		s.workflowError(w, err)
		return
	}
	s.sched.update(t, e)
	s.auditOK(r, id, "workflow.put", name, fmt.Sprintf("version %d", v.Version))
	d := s.detail(t, e)
	d.Version = v.Version
	code := http.StatusOK
	if !existed {
		code = http.StatusCreated
	}
	writeJSON(w, code, d)
}

func (s *Server) handleWorkflowDelete(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	t := id.tenant
	e, err := t.catalog.get(name)
	if err != nil {
		s.workflowError(w, err)
		return
	}
	// The deleted content stays available as the last version.
	if _, err := s.cfg.Store.SaveVersion(r.Context(), t.Name, name, id.actor, "delete", e.Source); err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	if err := t.catalog.remove(name); err != nil {
		s.workflowError(w, err)
		return
	}
	s.sched.remove(t, name)
	s.auditOK(r, id, "workflow.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	vs, err := s.cfg.Store.Versions(r.Context(), id.tenant.Name, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflow": name, "versions": vs})
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request, id *identity) {
	name, ok := s.workflowName(w, r, id)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "version must be a positive number")
		return
	}
	v, err := s.cfg.Store.GetVersion(r.Context(), id.tenant.Name, name, n)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such version")
		return
	} else if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		store.Version
		Source string `json:"source"`
	}{v, string(v.Source)})
}

// handleValidate checks a workflow source sent as the body (Lua text, or
// {"source"} JSON) exactly as PUT would, without saving it. Problems are
// data here, so the answer is 200 either way.
func (s *Server) handleValidate(w http.ResponseWriter, r *http.Request, id *identity) {
	src, ok := readSource(w, r)
	if !ok {
		return
	}
	file := "workflow.lua"
	if n := r.URL.Query().Get("name"); n != "" {
		if checkName(n) != nil {
			writeError(w, http.StatusBadRequest, codeInvalidName, "invalid workflow name")
			return
		}
		file = n + ".lua"
	}
	wf, err := s.loadWorkflow(id.tenant, id.tenant.catalog.path(file[:len(file)-4]), src)
	out := map[string]any{"valid": err == nil, "problems": []problemJSON{}}
	if err != nil {
		var ps workflow.Problems
		if !errors.As(err, &ps) {
			ps = workflow.Problems{{File: file, Message: err.Error()}}
		}
		out["problems"] = problemsJSON(ps)
	} else {
		g := workflow.GraphOf(wf)
		out["workflow"] = map[string]any{"name": wf.Name, "description": wf.Description, "schedule": wf.Schedule, "graph": g}
	}
	writeJSON(w, http.StatusOK, out)
}
