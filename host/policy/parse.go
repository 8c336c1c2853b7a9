package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// A policy is written as a section of a TOML or JSON file:
//
//	[policy]
//	require = ["namespaces", "landlock", "seccomp"]
//
//	[policy.allow]
//	net        = ["api.example.com:443", "*.github.com"]
//	fs_read    = ["/srv/data"]
//	fs_write   = []
//	env        = ["LANG", "AWS_*"]
//	secrets    = ["*"]
//	kv         = true
//	memory     = "512MiB"   # or a number of bytes
//	cpu        = "30s"      # or a number of seconds
//	processes  = 64
//	max_output = "16MiB"
//
// (JSON: {"policy": {"require": [...], "allow": {...}}}.) The fs lists may
// also be written as `fs = { read = [...], write = [...] }`, as steps do.

// Parse reads a policy from a TOML (format "toml") or JSON ("json")
// document. A document with a top-level "policy" key is read from there;
// otherwise the whole document is the policy section.
func Parse(data []byte, format string) (Policy, error) {
	var doc map[string]any
	switch strings.ToLower(format) {
	case "toml":
		if err := toml.Unmarshal(data, &doc); err != nil {
			return Policy{}, fmt.Errorf("policy: %w", err)
		}
	case "json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return Policy{}, fmt.Errorf("policy: %w", err)
		}
	default:
		return Policy{}, fmt.Errorf("policy: unknown format %q (toml or json)", format)
	}
	if section, ok := doc["policy"]; ok {
		m, ok := section.(map[string]any)
		if !ok {
			return Policy{}, fmt.Errorf("policy: the policy section must be a table")
		}
		doc = m
	}
	return FromMap(doc)
}

// FromMap builds a policy from an already decoded section (for a config
// loader that reads the whole file itself). Unknown keys are errors.
func FromMap(section map[string]any) (Policy, error) {
	var p Policy
	for _, key := range sortedKeys(section) {
		v := section[key]
		switch key {
		case "require":
			list, err := stringList("require", v)
			if err != nil {
				return Policy{}, err
			}
			p.Require = list
		case "allow":
			m, ok := v.(map[string]any)
			if !ok {
				return Policy{}, fmt.Errorf("policy: allow must be a table")
			}
			if err := parseAllow(&p, m); err != nil {
				return Policy{}, err
			}
		default:
			return Policy{}, fmt.Errorf("policy: unknown key %q (known: require, allow)", key)
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

func parseAllow(p *Policy, m map[string]any) error {
	g := &p.Ceiling
	var err error
	for _, key := range sortedKeys(m) {
		v := m[key]
		name := "allow." + key
		switch key {
		case "net":
			g.Net, err = stringList(name, v)
		case "fs_read":
			g.FSRead, err = stringList(name, v)
		case "fs_write":
			g.FSWrite, err = stringList(name, v)
		case "fs":
			fs, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("policy: %s must be a table with read and write", name)
			}
			for _, k := range sortedKeys(fs) {
				switch k {
				case "read":
					g.FSRead, err = stringList(name+".read", fs[k])
				case "write":
					g.FSWrite, err = stringList(name+".write", fs[k])
				default:
					return fmt.Errorf("policy: unknown key %s.%s (read or write)", name, k)
				}
				if err != nil {
					return err
				}
			}
		case "env":
			g.Env, err = stringList(name, v)
		case "secrets":
			g.Secrets, err = stringList(name, v)
		case "kv":
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("policy: %s must be true or false", name)
			}
			g.KV = b
		case "memory":
			g.Memory, err = bytesValue(name, v)
		case "max_output":
			g.MaxOutput, err = bytesValue(name, v)
		case "cpu":
			g.CPU, err = durationValue(name, v)
		case "processes":
			var n int64
			n, err = intValue(name, v)
			g.Processes = int(n)
		default:
			return fmt.Errorf("policy: unknown key %s (known: net, fs_read, fs_write, fs, env, secrets, kv, memory, cpu, processes, max_output)", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func stringList(name string, v any) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		if s, isString := v.(string); isString {
			return []string{s}, nil
		}
		return nil, fmt.Errorf("policy: %s must be a list of strings", name)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("policy: %s must be a list of strings, found %v", name, it)
		}
		out = append(out, s)
	}
	return out, nil
}

func intValue(name string, v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case float64:
		if n == math.Trunc(n) {
			return int64(n), nil
		}
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("policy: %s must be a whole number, not %v", name, v)
}

func bytesValue(name string, v any) (int64, error) {
	if s, ok := v.(string); ok {
		n, err := ParseBytes(s)
		if err != nil {
			return 0, fmt.Errorf("policy: %s: %w", name, err)
		}
		return n, nil
	}
	return intValue(name, v)
}

func durationValue(name string, v any) (time.Duration, error) {
	if s, ok := v.(string); ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("policy: %s: %w", name, err)
		}
		return d, nil
	}
	n, err := intValue(name, v)
	return time.Duration(n) * time.Second, err
}

var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1000, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1000 * 1000, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1000 * 1000 * 1000, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000, "tib": 1 << 40,
}

// ParseBytes reads a size like "512MiB", "1.5 GB", "64k" or "1048576".
// K, M, G and T alone are binary (1024-based); KB, MB, GB, TB are decimal.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("bad size %q (use e.g. 512MiB, 1GB, 1048576)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(f * float64(mult)), nil
}

// FormatBytes writes a size the way ParseBytes reads it.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}
