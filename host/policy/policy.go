// Package policy bounds what steps may be granted. A step asks for
// capabilities with `allow = {...}`; a Policy's ceiling caps every request,
// and the effective grant is the part of the request the ceiling covers
// (Effective). Nothing is granted that the step did not ask for, and nothing
// a step asks for is granted unless the ceiling covers it. Explain lists
// what a policy refuses, for `hwe validate`.
//
// A policy can also require OS sandbox layers (see package sandbox): steps
// of subprocess runners then refuse to run on a machine that lacks them.
package policy

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/host/sandbox"
)

// Policy bounds the grants of one tenant's steps (or of `hwe run`).
type Policy struct {
	// Ceiling is the most any step may be granted. Its limits are also the
	// limits of steps that ask for none.
	Ceiling api.Grant
	// Require lists sandbox layers that must be active for subprocess
	// steps ("namespaces" stands for all five namespaces).
	Require []string
}

// Local is the built-in policy of `hwe run`: the workflow's author runs it on
// their own machine, so a step may be granted whatever its `allow` asks for
// (any host, loopback and private addresses, any path, variable or secret)
// except cloud metadata and other link-local addresses, within default
// limits. The sandbox still applies, and a step still gets only what it
// asks for.
func Local() Policy {
	return Policy{Ceiling: api.Grant{
		Net:       []string{"*", "127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"},
		FSRead:    []string{"*"},
		FSWrite:   []string{"*"},
		Env:       []string{"*"},
		Secrets:   []string{"*"},
		KV:        true,
		Memory:    sandbox.DefaultMemory,
		Processes: sandbox.DefaultProcesses,
		MaxOutput: 16 << 20,
	}}
}

// Strict is the policy of a server tenant that has none configured: no
// network, files, variables, secrets or KV for any step, default limits.
func Strict() Policy {
	return Policy{Ceiling: api.Grant{
		Memory:    sandbox.DefaultMemory,
		Processes: sandbox.DefaultProcesses,
		MaxOutput: 16 << 20,
	}}
}

// Validate checks the policy's own entries.
func (p Policy) Validate() error {
	for _, n := range p.Ceiling.Net {
		if n != "*" {
			if err := capability.ParseNetRule(n); err != nil {
				return fmt.Errorf("policy: net: %w", err)
			}
		}
	}
	if _, err := sandbox.ExpandLayers(p.Require); err != nil {
		return fmt.Errorf("policy: require: %w", err)
	}
	if p.Ceiling.Memory < 0 || p.Ceiling.CPU < 0 || p.Ceiling.Processes < 0 || p.Ceiling.MaxOutput < 0 {
		return fmt.Errorf("policy: limits cannot be negative")
	}
	return nil
}

// Effective is the grant a step gets: each entry of request that the
// ceiling covers, and for each limit the request capped by the ceiling (or
// the ceiling's value when the step asks for none).
func (p Policy) Effective(request api.Grant) api.Grant {
	c := p.Ceiling
	return api.Grant{
		Net:       keep(request.Net, c.Net, netCovers),
		FSRead:    keep(request.FSRead, c.FSRead, pathCovers),
		FSWrite:   keep(request.FSWrite, c.FSWrite, pathCovers),
		Env:       keep(request.Env, c.Env, nameCovers),
		Secrets:   keep(request.Secrets, c.Secrets, nameCovers),
		KV:        request.KV && c.KV,
		Memory:    capLimit(request.Memory, c.Memory),
		CPU:       capLimit(request.CPU, c.CPU),
		Processes: capLimit(request.Processes, c.Processes),
		MaxOutput: capLimit(request.MaxOutput, c.MaxOutput),
	}
}

// Explain lists, one sentence each, what the policy refuses of a request:
// entries it does not cover and limits above its own. Empty means the
// request is granted in full.
func (p Policy) Explain(request api.Grant) []string { return Explain(request, p.Ceiling) }

// Explain is Policy.Explain for a bare ceiling.
func Explain(request, ceiling api.Grant) []string {
	var out []string
	lists := []struct {
		name        string
		want, allow []string
		covers      func(c, r string) bool
	}{
		{"net", request.Net, ceiling.Net, netCovers},
		{"fs.read", request.FSRead, ceiling.FSRead, pathCovers},
		{"fs.write", request.FSWrite, ceiling.FSWrite, pathCovers},
		{"env", request.Env, ceiling.Env, nameCovers},
		{"secrets", request.Secrets, ceiling.Secrets, nameCovers},
	}
	for _, l := range lists {
		for _, w := range l.want {
			if l.name == "net" && w != "*" {
				if err := capability.ParseNetRule(w); err != nil {
					out = append(out, fmt.Sprintf("allow.net: %v", err))
					continue
				}
			}
			if !covered(w, l.allow, l.covers) {
				out = append(out, fmt.Sprintf("allow.%s: %q is not allowed by the policy%s", l.name, w, allowedList(l.allow)))
			}
		}
	}
	if request.KV && !ceiling.KV {
		out = append(out, "allow.kv: the policy does not allow KV access")
	}
	limit := func(name string, want, max int64, show func(int64) string) {
		if want > 0 && max > 0 && want > max {
			out = append(out, fmt.Sprintf("allow.%s: %s is more than the policy's %s", name, show(want), show(max)))
		}
	}
	limit("memory", request.Memory, ceiling.Memory, FormatBytes)
	limit("cpu", int64(request.CPU), int64(ceiling.CPU), func(n int64) string { return time.Duration(n).String() })
	limit("processes", int64(request.Processes), int64(ceiling.Processes), func(n int64) string { return fmt.Sprint(n) })
	limit("max_output", request.MaxOutput, ceiling.MaxOutput, FormatBytes)
	return out
}

func allowedList(allow []string) string {
	if len(allow) == 0 {
		return " (it allows none)"
	}
	return " (it allows " + strings.Join(quoteAll(allow), ", ") + ")"
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func keep(want, allow []string, covers func(c, r string) bool) []string {
	var out []string
	for _, w := range want {
		if covered(w, allow, covers) {
			out = append(out, w)
		}
	}
	return out
}

func covered(w string, allow []string, covers func(c, r string) bool) bool {
	for _, a := range allow {
		if covers(a, w) {
			return true
		}
	}
	return false
}

// netCovers uses the net grammar of the host API.
func netCovers(c, r string) bool { return capability.NetRuleCovers(c, r) }

// pathCovers: "*" covers every path; a folder covers itself and what is
// under it.
func pathCovers(c, r string) bool {
	if c == "*" {
		return true
	}
	if r == "*" || c == "" || r == "" {
		return false
	}
	c, r = filepath.Clean(c), filepath.Clean(r)
	return r == c || c == "/" || strings.HasPrefix(r, c+"/")
}

// nameCovers: "*" covers every name, "PREFIX*" every name starting with
// PREFIX (and any narrower pattern), otherwise names must be equal.
func nameCovers(c, r string) bool {
	if c == "*" || c == r {
		return true
	}
	if prefix, ok := strings.CutSuffix(c, "*"); ok {
		return strings.HasPrefix(r, prefix)
	}
	return false
}

func capLimit[T int | int64 | time.Duration](want, max T) T {
	switch {
	case want <= 0:
		return max
	case max <= 0 || want < max:
		return want
	default:
		return max
	}
}
