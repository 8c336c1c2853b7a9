package api

import (
	"slices"
	"time"
)

// Grant is a set of capabilities. Nothing is granted by default: the zero
// Grant allows no network, no files beyond the run's scratch folder, no host
// environment variables and no secrets. Zero limits mean "the policy default".
//
// A step asks for a Grant with `allow = {...}` in the workflow; a Policy bounds
// it; the effective grant is their intersection (see Intersect).
type Grant struct {
	Net       []string      `json:"net,omitempty"`      // "host:port" or "host" (any port), "*.example.com:443", or an address/CIDR
	FSRead    []string      `json:"fs_read,omitempty"`  // paths readable
	FSWrite   []string      `json:"fs_write,omitempty"` // paths writable
	Env       []string      `json:"env,omitempty"`      // host environment variables passed through
	Secrets   []string      `json:"secrets,omitempty"`  // secret names readable
	KV        bool          `json:"kv,omitempty"`       // KV store access (scoped to tenant and workflow)
	Memory    int64         `json:"memory,omitempty"`   // bytes
	CPU       time.Duration `json:"cpu,omitempty"`      // CPU time
	Processes int           `json:"processes,omitempty"`
	MaxOutput int64         `json:"max_output,omitempty"` // bytes of step output
}

// Intersect returns the part of the requested grant g that the ceiling allows.
// Lists keep only entries the ceiling also lists ("*" in the ceiling allows any);
// limits take the smaller non-zero value.
func (g Grant) Intersect(ceiling Grant) Grant {
	return Grant{
		Net:       intersectList(g.Net, ceiling.Net),
		FSRead:    intersectList(g.FSRead, ceiling.FSRead),
		FSWrite:   intersectList(g.FSWrite, ceiling.FSWrite),
		Env:       intersectList(g.Env, ceiling.Env),
		Secrets:   intersectList(g.Secrets, ceiling.Secrets),
		KV:        g.KV && ceiling.KV,
		Memory:    minLimit(g.Memory, ceiling.Memory),
		CPU:       minLimit(g.CPU, ceiling.CPU),
		Processes: minLimit(g.Processes, ceiling.Processes),
		MaxOutput: minLimit(g.MaxOutput, ceiling.MaxOutput),
	}
}

// Allows reports whether name is in list ("*" allows everything).
func Allows(list []string, name string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, name)
}

func intersectList(want, ceiling []string) []string {
	var out []string
	for _, w := range want {
		if Allows(ceiling, w) {
			out = append(out, w)
		}
	}
	return out
}

func minLimit[T int | int64 | time.Duration](a, b T) T {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case a < b:
		return a
	default:
		return b
	}
}
