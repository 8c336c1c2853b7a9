package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hwe-run/hwe/host/luasafe"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// LoadOptions tune loading. The zero value accepts the built-in languages.
type LoadOptions struct {
	// KnownLanguage reports whether a runner serves a canonical language that
	// is not built in (a third-party plugin). nil = built-ins only.
	KnownLanguage func(canonical string) bool
	// EvalTimeout bounds evaluating the file's Lua (default 2s).
	EvalTimeout time.Duration
	// CheckStep, when set, is asked about every step after the structural
	// checks pass (a wasm module exists and exports its function, ...).
	// Each message returned is reported at the step's line.
	CheckStep func(s *Step, w *Workflow) []string
	// Dir is the workflow's folder when it is not the folder of the file
	// name as given (a relative name read from another working directory).
	Dir string
}

// LoadFile reads and validates a workflow file. When the file is invalid the
// error is a Problems listing every problem found.
func LoadFile(path string, opts LoadOptions) (*Workflow, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Message: readError(err)}}
	}
	return LoadSource(path, src, opts)
}

func readError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// LoadSource validates a workflow given as source; file names it in messages
// and anchors relative module paths (it need not exist).
func LoadSource(file string, src []byte, opts LoadOptions) (*Workflow, error) {
	l := &loader{file: file, src: src, opts: opts, lines: strings.Split(string(src), "\n")}
	w := l.load()
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool {
			a, b := l.problems[i], l.problems[j]
			return a.Line < b.Line || a.Line == b.Line && a.Message < b.Message
		})
		return nil, l.problems
	}
	return w, nil
}

type loader struct {
	file     string
	src      []byte
	lines    []string
	opts     LoadOptions
	pos      *positions
	problems Problems
}

func (l *loader) addf(line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: l.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

var luaErrLine = regexp.MustCompile(`^(?:<string>|[^:\s]*):(\d+):\s*`)
var syntaxErrLine = regexp.MustCompile(`line:(\d+)\(column:\d+\) near '(.*)':\s+(.*)`)

func (l *loader) load() *Workflow {
	chunk, err := parse.Parse(bytes.NewReader(l.src), "<workflow>")
	if err != nil {
		l.syntaxError(err)
		return nil
	}
	l.pos = findPositions(chunk)

	value, ok := l.evaluate()
	if !ok {
		return nil
	}
	w := &Workflow{File: l.file, Source: l.src, FailFast: true}
	if l.opts.Dir != "" {
		w.Dir = l.opts.Dir
	} else if l.file != "" {
		if abs, err := filepath.Abs(l.file); err == nil {
			w.Dir = filepath.Dir(abs)
		}
	}
	l.readWorkflow(value, w)
	l.checkGraph(w)
	if len(l.problems) == 0 && l.opts.CheckStep != nil {
		for _, s := range w.Steps {
			for _, msg := range l.opts.CheckStep(s, w) {
				line := s.Line
				// A runner that located the problem in the file says "FILE:LINE: ...".
				if rest, ok := strings.CutPrefix(msg, l.file+":"); ok {
					if i := strings.Index(rest, ": "); i > 0 {
						if n, err := strconv.Atoi(rest[:i]); err == nil {
							line, msg = n, rest[i+2:]
						}
					}
				}
				l.addf(line, "step %q: %s", s.Name, msg)
			}
		}
	}
	return w
}

func (l *loader) syntaxError(err error) {
	msg := strings.TrimSpace(err.Error())
	if m := syntaxErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.addf(line, "Lua syntax error near '%s': %s", m[2], m[3])
		return
	}
	if strings.Contains(msg, "at EOF") {
		l.addf(len(l.lines), "Lua syntax error at end of file: %s (an unclosed table, string or block?)", strings.TrimSpace(msg[strings.Index(msg, "at EOF")+len("at EOF:"):]))
		return
	}
	l.addf(1, "Lua syntax error: %s", msg)
}

// evaluate runs the file in a sandboxed state and returns the `workflow` global.
func (l *loader) evaluate() (*lua.LTable, bool) {
	L := luasafe.NewState()
	defer L.Close()
	timeout := l.opts.EvalTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	L.SetContext(ctx)
	L.G.Global.RawSetString("print", L.NewFunction(func(*lua.LState) int { return 0 }))

	err, _ := luasafe.Protect(func() error {
		fn, err := L.Load(bytes.NewReader(l.src), "<workflow>")
		if err != nil {
			return err
		}
		L.Push(fn)
		return L.PCall(0, 0, nil)
	})
	if err != nil {
		msg := err.Error()
		if ctx.Err() != nil {
			l.addf(max(l.pos.workflowLine, 1), "evaluating the workflow file took longer than %s (an endless loop?)", timeout)
			return nil, false
		}
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) {
			msg = apiErr.Object.String()
		}
		line := max(l.pos.workflowLine, 1)
		if m := luaErrLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		l.addf(line, "Lua error while evaluating the workflow file: %s", firstLine(msg))
		return nil, false
	}
	v := L.G.Global.RawGetString("workflow")
	tbl, ok := v.(*lua.LTable)
	if !ok {
		if v == lua.LNil {
			l.addf(1, "the file does not set a global `workflow` table")
		} else {
			l.addf(l.pos.workflowLine, "`workflow` must be a table, not a %s", v.Type())
		}
		return nil, false
	}
	return tbl, true
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "\nstack traceback:"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

var workflowFields = map[string]bool{
	"name": true, "description": true, "steps": true, "concurrency": true,
	"fail_fast": true, "schedule": true,
	// harmless metadata some workflows carry
	"version": true, "author": true, "tags": true,
}

var stepFields = map[string]bool{
	"language": true, "code": true, "depends_on": true, "module": true,
	"func": true, "function": true, "timeout": true, "retries": true,
	"env": true, "allow": true, "isolation": true, "description": true,
	"name": true,
}

func (l *loader) readWorkflow(t *lua.LTable, w *Workflow) {
	t.ForEach(func(k, v lua.LValue) {
		key, ok := k.(lua.LString)
		if !ok {
			l.addf(l.pos.workflowLine, "workflow has a non-string key %s", k.String())
			return
		}
		if !workflowFields[string(key)] {
			l.addf(l.pos.workflowFieldLine(string(key)), "unknown workflow field %q (known: concurrency, description, fail_fast, name, schedule, steps)", string(key))
		}
	})
	w.Name = l.optString(t, "name", l.pos.workflowFieldLine("name"))
	w.Description = l.optString(t, "description", l.pos.workflowFieldLine("description"))
	if w.Name == "" && l.file != "" {
		w.Name = strings.TrimSuffix(filepath.Base(l.file), filepath.Ext(l.file))
	}
	if v := t.RawGetString("concurrency"); v != lua.LNil {
		n, ok := v.(lua.LNumber)
		if !ok || float64(n) != float64(int(n)) || n < 1 {
			l.addf(l.pos.workflowFieldLine("concurrency"), "concurrency must be a whole number of at least 1")
		} else {
			w.Concurrency = int(n)
		}
	}
	if v := t.RawGetString("fail_fast"); v != lua.LNil {
		b, ok := v.(lua.LBool)
		if !ok {
			l.addf(l.pos.workflowFieldLine("fail_fast"), "fail_fast must be true or false")
		} else {
			w.FailFast = bool(b)
		}
	}
	w.Schedule = l.optString(t, "schedule", l.pos.workflowFieldLine("schedule"))
	if w.Schedule != "" && len(strings.Fields(w.Schedule)) != 5 && !strings.HasPrefix(w.Schedule, "@") {
		l.addf(l.pos.workflowFieldLine("schedule"), "schedule %q must be a cron expression with 5 fields or a @descriptor", w.Schedule)
	}

	steps, ok := t.RawGetString("steps").(*lua.LTable)
	if !ok {
		if t.RawGetString("steps") == lua.LNil {
			l.addf(l.pos.workflowLine, "workflow has no `steps` table")
		} else {
			l.addf(l.pos.workflowFieldLine("steps"), "`steps` must be a table of steps keyed by name")
		}
		return
	}
	arrayIndex := 0
	steps.ForEach(func(k, v lua.LValue) {
		var name string
		switch key := k.(type) {
		case lua.LString:
			name = string(key)
		case lua.LNumber:
			arrayIndex++
			name = lua.LVAsString(key)
			if st, ok := v.(*lua.LTable); ok {
				if n, ok := st.RawGetString("name").(lua.LString); ok && n != "" {
					name = string(n)
				}
			}
		default:
			l.addf(l.pos.stepsLine, "step key %s must be a string (the step name)", k.String())
			return
		}
		st, ok := v.(*lua.LTable)
		if !ok {
			l.addf(l.pos.stepLine(name), "step %q must be a table, not a %s", name, v.Type())
			return
		}
		if w.Step(name) != nil {
			l.addf(l.pos.stepLine(name), "step %q is defined twice", name)
			return
		}
		w.Steps = append(w.Steps, l.readStep(name, st))
	})
	if len(w.Steps) == 0 && len(l.problems) == 0 {
		l.addf(l.pos.workflowFieldLine("steps"), "workflow has no steps")
	}
}

func (l *loader) optString(t *lua.LTable, key string, line int) string {
	v := t.RawGetString(key)
	switch s := v.(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(s)
	case lua.LNumber:
		return lua.LVAsString(s)
	}
	l.addf(line, "%s must be a string, not a %s", key, v.Type())
	return ""
}

// PeekName returns the name an invalid workflow file gives itself, when
// evaluating it gets that far, so a failure can still be reported under the
// workflow's own name. It returns "" otherwise.
func PeekName(src []byte) string {
	L := luasafe.NewState()
	defer L.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	L.SetContext(ctx)
	err, _ := luasafe.Protect(func() error { return L.DoString(string(src)) })
	if err != nil {
		return ""
	}
	if t, ok := L.G.Global.RawGetString("workflow").(*lua.LTable); ok {
		if s, ok := t.RawGetString("name").(lua.LString); ok {
			return string(s)
		}
	}
	return ""
}
