package server

import (
	"encoding/json"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIDocumentsEveryRoute keeps openapi.json, the router and the
// auth tests' route list in step: each route is registered, documented with
// its role, and covered by TestAuthOnEveryRoute.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]Role{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				Role      string `json:"x-hwe-role"`
				Responses map[string]json.RawMessage
			}
			json.Unmarshal(raw, &op)
			role := Role(0)
			if op.Role != "" {
				var err error
				if role, err = ParseRole(op.Role); err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s documents no responses", method, path)
			}
			documented[strings.ToUpper(method)+" "+path] = role
		}
	}
	e := newEnv(t)
	tested := map[string]bool{}
	for _, r := range apiRoutes("R1") {
		key := r.method + " " + r.pattern
		tested[key] = true
		role, ok := documented[key]
		if !ok {
			t.Errorf("%s is not in openapi.json", key)
		} else if role != r.min {
			t.Errorf("%s: openapi.json says role %s, the route needs %s", key, role, r.min)
		}
		if strings.HasPrefix(r.pattern, "/api/") {
			_, pattern := e.srv.apiMux.Handler(httptest.NewRequest(r.method, r.path, nil))
			if pattern != key {
				t.Errorf("%s is routed to %q", key, pattern)
			}
		}
	}
	var extra []string
	for key := range documented {
		if !tested[key] {
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("documented but not in the route list: %v", extra)
	}
}
