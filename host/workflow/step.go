package workflow

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hwe-run/hwe/host/api"
	lua "github.com/yuin/gopher-lua"
)

func (l *loader) readStep(name string, t *lua.LTable) *Step {
	s := &Step{Name: name, Line: l.pos.stepLine(name), Function: "run"}
	line := func(field string) int { return l.pos.stepFieldLine(name, field) }

	var fields []string
	t.ForEach(func(k, _ lua.LValue) {
		key, ok := k.(lua.LString)
		if !ok {
			l.addf(s.Line, "step %q has a non-string field key %s", name, k.String())
			return
		}
		fields = append(fields, string(key))
	})
	sort.Strings(fields)
	legacyRun := false
	for _, f := range fields {
		if f == "run" {
			legacyRun = true
			continue
		}
		if !stepFields[f] {
			l.addf(line(f), "step %q: unknown field %q", name, f)
		}
	}

	// language: absent (or not a string) means lua, as in the reference.
	s.LanguageAsWritten = "lua"
	if v, ok := t.RawGetString("language").(lua.LString); ok {
		s.LanguageAsWritten = string(v)
	}
	canonical, builtin := api.NormalizeLanguage(s.LanguageAsWritten)
	s.Language = canonical
	if !builtin && (l.opts.KnownLanguage == nil || !l.opts.KnownLanguage(canonical)) {
		l.addf(line("language"), "step %q: unknown language %q (supported: %s; other languages need a runner plugin hwe-runner-%s)",
			name, s.LanguageAsWritten, api.BuiltinLanguageAliases(), s.LanguageAsWritten)
	}

	switch code := t.RawGetString("code").(type) {
	case lua.LString:
		s.Code = string(code)
	case lua.LNumber:
		s.Code = lua.LVAsString(code)
	case *lua.LNilType:
		switch {
		case s.Language == api.LangWasm:
		case legacyRun:
			l.addf(line("run"), "Legacy Lua workflow format detected in step '%s'. Please use the new format with 'language = \"lua\"' and 'code = [[...]]' instead of 'run = function()'.", name)
		case s.Language == api.LangLua:
			l.addf(s.Line, "Lua step '%s' is missing required 'code' field", name)
		default:
			l.addf(s.Line, "step %q is missing required 'code' field", name)
		}
	default:
		l.addf(line("code"), "step %q: code must be a string, not a %s", name, code.Type())
	}
	if legacyRun && t.RawGetString("code") != lua.LNil {
		l.addf(line("run"), "step %q: unknown field \"run\" (step code goes in `code`)", name)
	}
	s.CodeLine = l.pos.codeLine(name, l.lines)

	s.DependsOn = l.stringList(t.RawGetString("depends_on"), line("depends_on"), name, "depends_on")

	if s.Language == api.LangWasm {
		s.Module = l.stepString(t, "module", name, line)
		if s.Module == "" {
			l.addf(s.Line, "WASM step '%s' missing 'module' field", name)
		}
		if fn := l.stepString(t, "func", name, line); fn != "" {
			s.Function = fn
		} else if fn := l.stepString(t, "function", name, line); fn != "" {
			s.Function = fn
		}
	} else {
		for _, f := range []string{"module", "func", "function"} {
			if t.RawGetString(f) != lua.LNil {
				l.addf(line(f), "step %q: field %q is only for wasm steps", name, f)
			}
		}
	}

	if v := t.RawGetString("timeout"); v != lua.LNil {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			l.addf(line("timeout"), "step %q: timeout must be a positive duration like \"30s\" or a number of seconds", name)
		}
		s.Timeout = d
	}
	l.readRetries(s, t.RawGetString("retries"), line("retries"))

	if v := t.RawGetString("env"); v != lua.LNil {
		s.Env = l.stringMap(v, line("env"), name)
	}
	if v := t.RawGetString("allow"); v != lua.LNil {
		s.Allow = l.readAllow(v, line("allow"), name)
	}
	if v := t.RawGetString("isolation"); v != lua.LNil {
		iso, _ := v.(lua.LString)
		switch iso {
		case "process", "worker":
			if iso == "process" {
				s.Isolation = "process"
			}
		default:
			l.addf(line("isolation"), "step %q: isolation must be \"worker\" or \"process\"", name)
		}
	}
	return s
}

func (l *loader) stepString(t *lua.LTable, key, name string, line func(string) int) string {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(v)
	default:
		l.addf(line(key), "step %q: %s must be a string, not a %s", name, key, v.Type())
		return ""
	}
}

// stringList reads a Lua sequence of strings.
func (l *loader) stringList(v lua.LValue, line int, step, field string) []string {
	if v == lua.LNil {
		return nil
	}
	t, ok := v.(*lua.LTable)
	if !ok {
		what := "strings"
		if field == "depends_on" {
			what = "step names"
		}
		l.addf(line, "step %q: %s must be a list of %s like { \"a\", \"b\" }, not a %s", step, field, what, v.Type())
		return nil
	}
	var out []string
	n := t.Len()
	count := 0
	t.ForEach(func(k, _ lua.LValue) { count++ })
	if count != n {
		l.addf(line, "step %q: %s must be a list of strings, not a table with named keys", step, field)
		return nil
	}
	for i := 1; i <= n; i++ {
		s, ok := t.RawGetInt(i).(lua.LString)
		if !ok {
			l.addf(line, "step %q: %s[%d] must be a string, not a %s", step, field, i, t.RawGetInt(i).Type())
			continue
		}
		out = append(out, string(s))
	}
	return out
}

func (l *loader) stringMap(v lua.LValue, line int, step string) map[string]string {
	t, ok := v.(*lua.LTable)
	if !ok {
		l.addf(line, "step %q: env must be a table of NAME = \"value\"", step)
		return nil
	}
	out := map[string]string{}
	t.ForEach(func(k, val lua.LValue) {
		key, ok := k.(lua.LString)
		if !ok || !validEnvName(string(key)) {
			l.addf(line, "step %q: env key %s is not a valid variable name", step, k.String())
			return
		}
		switch val.(type) {
		case lua.LString, lua.LNumber, lua.LBool:
			out[string(key)] = lua.LVAsString(val)
			if _, isBool := val.(lua.LBool); isBool {
				out[string(key)] = val.String()
			}
		default:
			l.addf(line, "step %q: env %s must be a string, not a %s", step, key, val.Type())
		}
	})
	return out
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func (l *loader) readRetries(s *Step, v lua.LValue, line int) {
	switch r := v.(type) {
	case *lua.LNilType:
		return
	case lua.LNumber:
		if r < 0 || float64(r) != float64(int(r)) {
			l.addf(line, "step %q: retries must be a whole number >= 0", s.Name)
			return
		}
		s.Retries = RetryPolicy{Max: int(r), Backoff: time.Second, Factor: 2}
	case *lua.LTable:
		s.Retries = RetryPolicy{Backoff: time.Second, Factor: 2}
		r.ForEach(func(k, val lua.LValue) {
			switch k.String() {
			case "max":
				n, ok := val.(lua.LNumber)
				if !ok || n < 0 || float64(n) != float64(int(n)) {
					l.addf(line, "step %q: retries.max must be a whole number >= 0", s.Name)
					return
				}
				s.Retries.Max = int(n)
			case "backoff":
				d, err := parseDuration(val)
				if err != nil || d < 0 {
					l.addf(line, "step %q: retries.backoff must be a duration like \"1s\"", s.Name)
					return
				}
				s.Retries.Backoff = d
			case "factor":
				n, ok := val.(lua.LNumber)
				if !ok || n < 1 {
					l.addf(line, "step %q: retries.factor must be a number >= 1", s.Name)
					return
				}
				s.Retries.Factor = float64(n)
			default:
				l.addf(line, "step %q: unknown retries field %q (known: max, backoff, factor)", s.Name, k.String())
			}
		})
	default:
		l.addf(line, "step %q: retries must be a number or { max = 3, backoff = \"1s\", factor = 2 }", s.Name)
	}
}

// parseDuration accepts "30s"-style strings and plain numbers of seconds.
func parseDuration(v lua.LValue) (time.Duration, error) {
	switch d := v.(type) {
	case lua.LNumber:
		return time.Duration(float64(d) * float64(time.Second)), nil
	case lua.LString:
		return time.ParseDuration(strings.TrimSpace(string(d)))
	}
	return 0, fmt.Errorf("not a duration")
}

// parseSize accepts "256MiB", "1GB", "512k" and plain byte counts.
func parseSize(v lua.LValue) (int64, error) {
	if n, ok := v.(lua.LNumber); ok {
		if n < 0 {
			return 0, fmt.Errorf("negative size")
		}
		return int64(n), nil
	}
	s, ok := v.(lua.LString)
	if !ok {
		return 0, fmt.Errorf("not a size")
	}
	str := strings.TrimSpace(string(s))
	i := 0
	for i < len(str) && (str[i] >= '0' && str[i] <= '9' || str[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(str[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", str)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1e3, "kib": 1 << 10, "m": 1 << 20, "mb": 1e6, "mib": 1 << 20, "g": 1 << 30, "gb": 1e9, "gib": 1 << 30}
	m, ok := mult[strings.ToLower(strings.TrimSpace(str[i:]))]
	if !ok {
		return 0, fmt.Errorf("bad size unit in %q", str)
	}
	return int64(num * m), nil
}

// readAllow parses a step's capability request. Its shape is checked here;
// the policy decides later what is actually granted.
func (l *loader) readAllow(v lua.LValue, line int, step string) *api.Grant {
	t, ok := v.(*lua.LTable)
	if !ok {
		l.addf(line, "step %q: allow must be a table like { net = { \"api.example.com:443\" } }", step)
		return nil
	}
	g := &api.Grant{}
	list := func(val lua.LValue, field string) []string {
		return l.stringList(val, line, step, "allow."+field)
	}
	t.ForEach(func(k, val lua.LValue) {
		switch k.String() {
		case "net":
			g.Net = list(val, "net")
		case "env":
			g.Env = list(val, "env")
		case "secrets":
			g.Secrets = list(val, "secrets")
		case "kv":
			b, ok := val.(lua.LBool)
			if !ok {
				l.addf(line, "step %q: allow.kv must be true or false", step)
			}
			g.KV = bool(b)
		case "fs":
			fs, ok := val.(*lua.LTable)
			if !ok {
				l.addf(line, "step %q: allow.fs must be { read = { ... }, write = { ... } }", step)
				return
			}
			fs.ForEach(func(fk, fv lua.LValue) {
				switch fk.String() {
				case "read":
					g.FSRead = list(fv, "fs.read")
				case "write":
					g.FSWrite = list(fv, "fs.write")
				default:
					l.addf(line, "step %q: unknown allow.fs field %q (known: read, write)", step, fk.String())
				}
			})
		case "memory", "output":
			n, err := parseSize(val)
			if err != nil || n <= 0 {
				l.addf(line, "step %q: allow.%s must be a size like \"256MiB\"", step, k.String())
			}
			if k.String() == "memory" {
				g.Memory = n
			} else {
				g.MaxOutput = n
			}
		case "cpu":
			d, err := parseDuration(val)
			if err != nil || d <= 0 {
				l.addf(line, "step %q: allow.cpu must be a duration like \"10s\"", step)
			}
			g.CPU = d
		case "processes":
			n, ok := val.(lua.LNumber)
			if !ok || n < 1 || float64(n) != float64(int(n)) {
				l.addf(line, "step %q: allow.processes must be a whole number >= 1", step)
			}
			g.Processes = int(n)
		default:
			l.addf(line, "step %q: unknown allow field %q (known: net, fs, env, secrets, kv, memory, cpu, processes, output)", step, k.String())
		}
	})
	for _, h := range g.Net {
		if strings.Contains(h, "/") && !strings.Contains(h, "://") && !isCIDR(h) || strings.TrimSpace(h) == "" {
			l.addf(line, "step %q: allow.net entry %q must be host, host:port or an address range", step, h)
		}
	}
	return g
}

func isCIDR(s string) bool {
	i := strings.IndexByte(s, '/')
	_, err := strconv.Atoi(s[i+1:])
	return err == nil
}

// checkGraph reports unknown dependencies and cycles, then orders the steps.
func (l *loader) checkGraph(w *Workflow) {
	byName := map[string]*Step{}
	for _, s := range w.Steps {
		byName[s.Name] = s
	}
	ok := true
	for _, s := range w.Steps {
		seen := map[string]bool{}
		for _, d := range s.DependsOn {
			switch {
			case d == s.Name:
				l.addf(l.pos.stepFieldLine(s.Name, "depends_on"), "step %q depends on itself (a cycle: %s -> %s)", s.Name, s.Name, s.Name)
				ok = false
			case byName[d] == nil:
				l.addf(l.pos.stepFieldLine(s.Name, "depends_on"), "step %q depends on unknown step %q", s.Name, d)
				ok = false
			case seen[d]:
				l.addf(l.pos.stepFieldLine(s.Name, "depends_on"), "step %q lists dependency %q twice", s.Name, d)
				ok = false
			}
			seen[d] = true
		}
	}
	if !ok || len(l.problems) > 0 {
		return
	}
	order, cycle := topoOrder(w.Steps)
	if cycle != nil {
		first := byName[cycle[0]]
		l.addf(l.pos.stepFieldLine(first.Name, "depends_on"), "dependency cycle: %s", strings.Join(cycle, " -> "))
		return
	}
	w.Steps = order
}

// topoOrder orders steps so each comes after its dependencies, breaking ties
// by name so the order is the same on every run. If there is a cycle it
// returns the steps on one cycle, first step repeated at the end.
func topoOrder(steps []*Step) ([]*Step, []string) {
	byName := map[string]*Step{}
	indegree := map[string]int{}
	dependents := map[string][]string{}
	for _, s := range steps {
		byName[s.Name] = s
		indegree[s.Name] = len(s.DependsOn)
		for _, d := range s.DependsOn {
			dependents[d] = append(dependents[d], s.Name)
		}
	}
	var ready []string
	for _, s := range steps {
		if indegree[s.Name] == 0 {
			ready = append(ready, s.Name)
		}
	}
	sort.Strings(ready)
	var order []*Step
	for len(ready) > 0 {
		name := ready[0]
		ready = ready[1:]
		order = append(order, byName[name])
		for _, dep := range dependents[name] {
			indegree[dep]--
			if indegree[dep] == 0 {
				i := sort.SearchStrings(ready, dep)
				ready = append(ready, "")
				copy(ready[i+1:], ready[i:])
				ready[i] = dep
			}
		}
	}
	if len(order) == len(steps) {
		return order, nil
	}
	return nil, findCycle(steps, indegree)
}

// findCycle walks from a step still blocked after the topological sort along
// blocked dependencies until a step repeats.
func findCycle(steps []*Step, indegree map[string]int) []string {
	byName := map[string]*Step{}
	var start string
	names := make([]string, 0, len(steps))
	for _, s := range steps {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		if indegree[n] > 0 {
			start = n
			break
		}
	}
	index := map[string]int{}
	var path []string
	cur := start
	for {
		if i, seen := index[cur]; seen {
			cyc := append([]string{}, path[i:]...)
			// path follows dependencies (a depends on b); show it the same way.
			return append(cyc, cur)
		}
		index[cur] = len(path)
		path = append(path, cur)
		deps := append([]string{}, byName[cur].DependsOn...)
		sort.Strings(deps)
		for _, d := range deps {
			if indegree[d] > 0 {
				cur = d
				break
			}
		}
	}
}
