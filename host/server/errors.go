package server

import (
	"encoding/json"
	"net/http"

	"github.com/hwe-run/hwe/host/workflow"
)

// apiError is the body of every error response: {"error": {"code", "message"}}.
// Validation failures also list the problems with their lines.
type apiError struct {
	Code     string        `json:"code"`
	Message  string        `json:"message"`
	Problems []problemJSON `json:"problems,omitempty"`
}

type problemJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func problemsJSON(ps workflow.Problems) []problemJSON {
	out := make([]problemJSON, len(ps))
	for i, p := range ps {
		out[i] = problemJSON{File: p.File, Line: p.Line, Message: p.Message}
	}
	return out
}

// Error codes, stable for clients.
const (
	codeBadRequest      = "bad_request"
	codeUnauthorized    = "unauthorized"
	codeForbidden       = "forbidden"
	codeNotFound        = "not_found"
	codeMethod          = "method_not_allowed"
	codeConflict        = "conflict"
	codeInvalidName     = "invalid_name"
	codeInvalidWorkflow = "invalid_workflow"
	codeTooLarge        = "payload_too_large"
	codeUnavailable     = "unavailable"
	codeInternal        = "internal"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Step outputs stay byte for byte as the step produced them (no \u003c
	// for "<"); nosniff and the JSON content type keep browsers from
	// treating a body as HTML.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: message}})
}

func writeProblems(w http.ResponseWriter, status int, message string, ps workflow.Problems) {
	writeJSON(w, status, map[string]apiError{"error": {Code: codeInvalidWorkflow, Message: message, Problems: problemsJSON(ps)}})
}
