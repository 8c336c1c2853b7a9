package server

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/hwe-run/hwe/host/store"
)

// identity is who a request comes from, once authenticated.
type identity struct {
	tenant *tenantState
	actor  string // token name ("local" without tokens)
	role   Role
}

type identityKey struct{}

// tokenOwner is a token's owner, looked up by the token's hash.
type tokenOwner struct {
	tenant *tenantState
	name   string
	role   Role
}

// authenticator maps bearer tokens to identities.
type authenticator struct {
	byHash map[string]tokenOwner
	// open is set when there are no tokens at all: the single local tenant
	// on a loopback address, where every request acts as its admin.
	open  *tenantState
	audit func(r *http.Request, id *identity, action, target, detail string)
}

// bearer extracts the token from "Authorization: Bearer <token>".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// identify returns the request's identity, or nil if its token is missing
// or unknown.
func (a *authenticator) identify(r *http.Request) *identity {
	if a.open != nil {
		return &identity{tenant: a.open, actor: LocalTenant, role: RoleAdmin}
	}
	tok := bearer(r)
	if tok == "" {
		return nil
	}
	// Looking up the token's hash (not the token) means how long the
	// lookup takes says nothing useful about the secret.
	owner, ok := a.byHash[HashToken(tok)]
	if !ok {
		return nil
	}
	return &identity{tenant: owner.tenant, actor: owner.name, role: owner.role}
}

// require wraps a handler so it runs only for a token with at least role min.
// A missing or unknown token gets 401, a weaker role 403; both are audited.
func (a *authenticator) require(min Role, h func(http.ResponseWriter, *http.Request, *identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := a.identify(r)
		if id == nil {
			a.audit(r, nil, "auth", r.Method+" "+r.URL.Path, "missing or unknown token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="hwe"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "a valid bearer token is required")
			return
		}
		if id.role < min {
			a.audit(r, id, "auth", r.Method+" "+r.URL.Path, "role "+id.role.String()+" lacks "+min.String())
			writeError(w, http.StatusForbidden, codeForbidden, "this needs the "+min.String()+" role; the token has "+id.role.String())
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)), id)
	}
}

// isLoopback reports whether a listen address only accepts local
// connections ("127.0.0.1:8080", "[::1]:0", "localhost:8080").
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// remoteAddr is the client address for the audit log.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditEntry builds an audit entry for a request.
func auditEntry(r *http.Request, id *identity, action, target, outcome, detail string) store.AuditEntry {
	e := store.AuditEntry{Action: action, Target: target, Outcome: outcome, Detail: detail}
	if r != nil {
		e.Remote = remoteAddr(r)
	}
	if id != nil {
		e.Tenant, e.Actor = id.tenant.Name, id.actor
	}
	return e
}
