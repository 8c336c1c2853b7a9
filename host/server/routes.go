package server

import (
	"bytes"
	_ "embed"
	"net/http"
	"net/url"
	"strings"
)

// openAPI is the API's description, kept in the repository beside the code
// (openapi.json) and served at /api/v1/openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// routes builds the HTTP surface. API routes live in their own mux so that
// an unknown path or a wrong method there gets a JSON error (404 or 405)
// instead of the web UI.
func (s *Server) routes(ui http.Handler) http.Handler {
	a := s.auth
	viewer := func(h func(http.ResponseWriter, *http.Request, *identity)) http.HandlerFunc {
		return a.require(RoleViewer, h)
	}
	operator := func(h func(http.ResponseWriter, *http.Request, *identity)) http.HandlerFunc {
		return a.require(RoleOperator, h)
	}
	admin := func(h func(http.ResponseWriter, *http.Request, *identity)) http.HandlerFunc {
		return a.require(RoleAdmin, h)
	}

	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/workflows", viewer(s.handleWorkflows))
	api.HandleFunc("GET /api/v1/workflows/{name}", viewer(s.handleWorkflow))
	api.HandleFunc("PUT /api/v1/workflows/{name}", admin(s.handleWorkflowPut))
	api.HandleFunc("DELETE /api/v1/workflows/{name}", admin(s.handleWorkflowDelete))
	api.HandleFunc("GET /api/v1/workflows/{name}/graph", viewer(s.handleWorkflowGraph))
	api.HandleFunc("GET /api/v1/workflows/{name}/versions", viewer(s.handleVersions))
	api.HandleFunc("GET /api/v1/workflows/{name}/versions/{version}", viewer(s.handleVersion))
	api.HandleFunc("POST /api/v1/workflows/{name}/runs", operator(s.handleRunStart))
	api.HandleFunc("GET /api/v1/workflows/{name}/webhook", admin(s.handleWebhookGet))
	api.HandleFunc("PUT /api/v1/workflows/{name}/webhook", admin(s.handleWebhookPut))
	api.HandleFunc("DELETE /api/v1/workflows/{name}/webhook", admin(s.handleWebhookDelete))
	api.HandleFunc("POST /api/v1/hooks/{id}", s.handleHook) // authenticated by the hook's own token
	api.HandleFunc("GET /api/v1/runs", viewer(s.handleRuns))
	api.HandleFunc("GET /api/v1/runs/{id}", viewer(s.handleRun))
	api.HandleFunc("GET /api/v1/runs/{id}/events", viewer(s.handleEvents))
	api.HandleFunc("GET /api/v1/runs/{id}/logs", viewer(s.handleLogs))
	api.HandleFunc("POST /api/v1/runs/{id}/cancel", operator(s.handleCancel))
	api.HandleFunc("POST /api/v1/runs/{id}/retry", operator(s.handleRetry))
	api.HandleFunc("POST /api/v1/validate", operator(s.handleValidate))
	api.HandleFunc("GET /api/v1/audit", admin(s.handleAudit))
	api.HandleFunc("GET /api/v1/me", viewer(s.handleMe))
	api.HandleFunc("GET /api/v1/openapi.json", s.handleOpenAPI)
	// The reference's routes, with their reference shapes.
	api.HandleFunc("GET /api/workflows", viewer(s.handleLegacyList))
	api.HandleFunc("POST /api/workflows/{name}/run", operator(s.handleLegacyRun))

	s.apiMux = api
	root := http.NewServeMux()
	root.Handle("/api/", jsonMuxErrors(api))
	root.HandleFunc("GET /healthz", s.handleHealth)
	root.HandleFunc("GET /metrics", viewer(s.handleMetrics))
	root.Handle("/", ui)
	return s.countRequests(s.guard(root))
}

// guard refuses requests a browser makes on behalf of another site. Tokens
// travel in a header, never in cookies, so a foreign page cannot use
// them; but a server that needs no token (the local tenant on a loopback
// address) must not run workflows for any page the user happens to visit:
//   - a state-changing request whose Origin is another site is refused
//     (cross-site form posts and fetches; webhooks are exempt, they carry
//     their own token);
//   - without tokens, only requests addressed to a loopback name are
//     answered, which defeats DNS rebinding.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.auth.open != nil && !isLoopback(r.Host) {
			s.auditDenied(r, nil, "origin", r.Host, "request addressed to a non-loopback host name")
			writeError(w, http.StatusForbidden, codeForbidden, "this server needs no token, so it only answers requests addressed to localhost or a loopback address")
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if strings.HasPrefix(r.URL.Path, "/api/v1/hooks/") {
				break
			}
			if origin := r.Header.Get("Origin"); origin != "" {
				if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
					s.auditDenied(r, nil, "origin", origin, "cross-origin "+r.Method+" "+r.URL.Path)
					writeError(w, http.StatusForbidden, codeForbidden, "cross-origin request refused")
					return
				}
			} else if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
				writeError(w, http.StatusForbidden, codeForbidden, "cross-site request refused")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// jsonMuxErrors turns the mux's own plain-text 404 and 405 answers into
// JSON errors; handlers' responses pass through untouched.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w}, r)
	})
}

type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (m *muxErrorWriter) WriteHeader(code int) {
	switch code {
	case http.StatusNotFound:
		m.replaced = true
		writeError(m.ResponseWriter, code, codeNotFound, "no such API route")
	case http.StatusMethodNotAllowed:
		m.replaced = true
		writeError(m.ResponseWriter, code, codeMethod, "method not allowed; allowed: "+m.Header().Get("Allow"))
	default:
		m.ResponseWriter.WriteHeader(code)
	}
}

func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil
	}
	return m.ResponseWriter.Write(b)
}

// countRequests counts responses by status class for /metrics.
func (s *Server) countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.metrics.request(sw.code)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush for event streams.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	http.ServeContent(w, r, "openapi.json", startTime, bytes.NewReader(openAPI))
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	if s.runs.isClosing() {
		status, code = "shutting_down", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "runs_active": s.runs.count(), "runs_queued": s.metrics.queued.Load()})
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, id *identity) {
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant": id.tenant.Name, "actor": id.actor, "role": id.role.String(), "auth": s.auth.open == nil,
	})
}
