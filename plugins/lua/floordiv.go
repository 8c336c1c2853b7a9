package lua

import (
	"math"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// Lua 5.4's floor division `a // b` does not exist in gopher-lua (Lua 5.1),
// yet workflows written for the reference use it. rewriteFloorDiv turns each
// `//` outside strings and comments into `% __hwe_floordiv %`: `%` has the
// same precedence and associativity as `//`, and __hwe_floordiv is a table
// whose __mod metamethods compute the floor division in two steps
// (a % F gives a pending value, pending % b gives floor(a / b)). Line and
// column structure is kept, so error lines still match the file.
const floorDivName = "__hwe_floordiv"

func rewriteFloorDiv(code string) string {
	if !strings.Contains(code, "//") {
		return code
	}
	var b strings.Builder
	for i := 0; i < len(code); {
		c := code[i]
		switch {
		case c == '-' && strings.HasPrefix(code[i:], "--"):
			end := skipComment(code, i)
			b.WriteString(code[i:end])
			i = end
		case c == '"' || c == '\'':
			end := skipQuoted(code, i)
			b.WriteString(code[i:end])
			i = end
		case c == '[' && longBracketLevel(code, i) >= 0:
			end := skipLong(code, i, longBracketLevel(code, i))
			b.WriteString(code[i:end])
			i = end
		case c == '/' && i+1 < len(code) && code[i+1] == '/':
			b.WriteString("% " + floorDivName + " %")
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// longBracketLevel returns n for `[` followed by n `=` and `[`, else -1.
func longBracketLevel(s string, i int) int {
	j := i + 1
	for j < len(s) && s[j] == '=' {
		j++
	}
	if j < len(s) && s[j] == '[' {
		return j - i - 1
	}
	return -1
}

func skipLong(s string, i, level int) int {
	closing := "]" + strings.Repeat("=", level) + "]"
	start := i + level + 2
	if k := strings.Index(s[start:], closing); k >= 0 {
		return start + k + len(closing)
	}
	return len(s)
}

func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q, '\n':
			return j + 1
		}
	}
	return len(s)
}

func skipComment(s string, i int) int {
	j := i + 2
	if j < len(s) && s[j] == '[' {
		if level := longBracketLevel(s, j); level >= 0 {
			return skipLong(s, j, level)
		}
	}
	if k := strings.IndexByte(s[j:], '\n'); k >= 0 {
		return j + k
	}
	return len(s)
}

// floorDivOperator builds the __hwe_floordiv value for a state.
func floorDivOperator(L *glua.LState) *glua.LTable {
	op := L.NewTable()
	pendingMeta := L.NewTable()
	pendingMeta.RawSetString("__mod", L.NewFunction(func(L *glua.LState) int {
		a := L.CheckTable(1).RawGetString("a")
		an, ok1 := a.(glua.LNumber)
		bn, ok2 := L.Get(2).(glua.LNumber)
		if !ok1 || !ok2 {
			L.RaiseError("attempt to perform arithmetic (//) on a non-number value")
		}
		L.Push(glua.LNumber(math.Floor(float64(an) / float64(bn))))
		return 1
	}))
	opMeta := L.NewTable()
	opMeta.RawSetString("__mod", L.NewFunction(func(L *glua.LState) int {
		pending := L.NewTable()
		pending.RawSetString("a", L.Get(1))
		L.SetMetatable(pending, pendingMeta)
		L.Push(pending)
		return 1
	}))
	L.SetMetatable(op, opMeta)
	return op
}
