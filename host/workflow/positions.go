package workflow

import (
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// positions records where things are written in the file, found by walking
// the parsed AST of `workflow = { ... }`. Workflows built with loops or
// helper functions have no literal position for some steps; those fall back
// to the line of the nearest enclosing literal (the steps table or the
// workflow assignment).
type positions struct {
	workflowLine int
	fieldLines   map[string]int // workflow-level field -> line
	stepsLine    int
	steps        map[string]*stepPos
}

type stepPos struct {
	line       int
	fieldLines map[string]int // step field -> line of its key
	codeLine   int            // line of the code string's opening quote/bracket
	codeLong   bool           // code is a [[long string]]
}

func findPositions(chunk []ast.Stmt) *positions {
	p := &positions{fieldLines: map[string]int{}, steps: map[string]*stepPos{}}
	for _, st := range chunk {
		as, ok := st.(*ast.AssignStmt)
		if !ok {
			continue
		}
		for i, lhs := range as.Lhs {
			id, ok := lhs.(*ast.IdentExpr)
			if !ok || id.Value != "workflow" || i >= len(as.Rhs) {
				continue
			}
			p.workflowLine = as.Line()
			if tbl, ok := as.Rhs[i].(*ast.TableExpr); ok {
				p.readWorkflowTable(tbl)
			}
		}
	}
	return p
}

func (p *positions) readWorkflowTable(tbl *ast.TableExpr) {
	for _, f := range tbl.Fields {
		key, ok := stringKey(f.Key)
		if !ok {
			continue
		}
		p.fieldLines[key] = keyLine(f)
		if key != "steps" {
			continue
		}
		p.stepsLine = keyLine(f)
		steps, ok := f.Value.(*ast.TableExpr)
		if !ok {
			continue
		}
		arrayIndex := 0
		for _, sf := range steps.Fields {
			st, ok := sf.Value.(*ast.TableExpr)
			if !ok {
				continue
			}
			name, named := stringKey(sf.Key)
			if sf.Key == nil { // array-style step: named by its `name` field or its index
				arrayIndex++
				name = itoa(arrayIndex)
				named = true
				for _, ff := range st.Fields {
					if k, ok := stringKey(ff.Key); ok && k == "name" {
						if s, ok := ff.Value.(*ast.StringExpr); ok {
							name = s.Value
						}
					}
				}
			}
			if !named {
				continue
			}
			sp := &stepPos{line: st.Line(), fieldLines: map[string]int{}}
			if sf.Key != nil && sf.Key.Line() > 0 {
				sp.line = sf.Key.Line()
			}
			for _, ff := range st.Fields {
				k, ok := stringKey(ff.Key)
				if !ok {
					continue
				}
				sp.fieldLines[k] = keyLine(ff)
				if k == "code" {
					if s, ok := ff.Value.(*ast.StringExpr); ok {
						sp.codeLine = s.Line()
					}
				}
			}
			p.steps[name] = sp
		}
	}
}

func stringKey(e ast.Expr) (string, bool) {
	s, ok := e.(*ast.StringExpr)
	if !ok {
		return "", false
	}
	return s.Value, true
}

func keyLine(f *ast.Field) int {
	if f.Key != nil && f.Key.Line() > 0 {
		return f.Key.Line()
	}
	if f.Value != nil {
		return f.Value.Line()
	}
	return 0
}

// stepLine is the best line to report a problem with step name.
func (p *positions) stepLine(name string) int {
	if sp, ok := p.steps[name]; ok && sp.line > 0 {
		return sp.line
	}
	if p.stepsLine > 0 {
		return p.stepsLine
	}
	return p.workflowLine
}

// stepFieldLine is the line of a field of a step, else the step's line.
func (p *positions) stepFieldLine(name, field string) int {
	if sp, ok := p.steps[name]; ok {
		if l := sp.fieldLines[field]; l > 0 {
			return l
		}
	}
	return p.stepLine(name)
}

// workflowFieldLine is the line of a workflow-level field.
func (p *positions) workflowFieldLine(field string) int {
	if l := p.fieldLines[field]; l > 0 {
		return l
	}
	return p.workflowLine
}

// codeLine returns the file line holding the first line of the step's code.
// The lexer drops a newline right after `[[`, so when the opening bracket ends
// its line the code starts on the next one.
func (p *positions) codeLine(name string, src []string) int {
	sp, ok := p.steps[name]
	if !ok || sp.codeLine <= 0 || sp.codeLine > len(src) {
		return 0
	}
	line := src[sp.codeLine-1]
	if i := strings.LastIndex(line, "["); i >= 0 && strings.TrimSpace(line[i+1:]) == "" {
		return sp.codeLine + 1
	}
	return sp.codeLine
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
