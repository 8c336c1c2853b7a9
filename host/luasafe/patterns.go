package luasafe

import (
	"math"

	lua "github.com/yuin/gopher-lua"
)

// MaxPatternSteps bounds the worst-case backtracking of one pattern call.
//
// gopher-lua's pattern matcher is a backtracking VM that never looks at the
// context deadline, so a pattern like ".-.-.-.-.-.-b" on 80 bytes can run for
// minutes past a step's timeout. Before each find/match/gmatch/gsub we
// estimate the worst case from the subject length n and the number k of
// repetition operators (*, +, -): an unanchored pattern may try about
// C(n+k, k) ways, an anchored one C(n+k-1, k-1). Calls whose bound exceeds
// MaxPatternSteps are refused with an error instead of run. Patterns with one
// or two repetitions (splitting, key=value) are always allowed; an anchored
// trim like "^%s*(.-)%s*$" is allowed on subjects up to about 60 KB.
const MaxPatternSteps = 2e9

var patternFuncs = []string{"find", "match", "gmatch", "gsub"}

// guardPatterns wraps the string library's pattern functions with the bound.
func guardPatterns(L *lua.LState, str *lua.LTable) {
	for _, name := range patternFuncs {
		orig, ok := str.RawGetString(name).(*lua.LFunction)
		if !ok || orig.GFunction == nil {
			continue
		}
		name, inner := name, orig.GFunction
		upvalues := make([]lua.LValue, len(orig.Upvalues))
		for i, uv := range orig.Upvalues {
			upvalues[i] = uv.Value()
		}
		// NewClosure keeps the original's upvalues (gmatch keeps its iterator in one).
		str.RawSetString(name, L.NewClosure(func(L *lua.LState) int {
			subject := L.CheckString(1)
			pattern := L.CheckString(2)
			plain := name == "find" && L.ToBool(4)
			if !plain {
				if k, anchored := repetitions(pattern); k >= 3 && patternCost(len(subject), k, anchored) > MaxPatternSteps {
					L.RaiseError("string.%s: pattern %q with %d repetitions on %d bytes could backtrack too long; use fewer '.-'/'.*' or a shorter subject", name, shorten(pattern), k, len(subject))
					return 0
				}
			}
			return inner(L)
		}, upvalues...))
	}
}

// repetitions counts the repetition operators of a Lua pattern and whether
// it is anchored with a leading ^.
func repetitions(p string) (k int, anchored bool) {
	i := 0
	if len(p) > 0 && p[0] == '^' {
		anchored, i = true, 1
	}
	for i < len(p) {
		switch p[i] {
		case '%':
			i += 2 // an escape or class like %d, %b xy (over-counting is safe)
			continue
		case '[':
			i++
			if i < len(p) && p[i] == '^' {
				i++
			}
			if i < len(p) && p[i] == ']' {
				i++
			}
			for i < len(p) && p[i] != ']' {
				if p[i] == '%' {
					i++
				}
				i++
			}
			i++
			continue
		case '*', '+', '-':
			k++
		}
		i++
	}
	return k, anchored
}

// patternCost is the binomial bound C(n+k, k) (or C(n+k-1, k-1) anchored),
// computed in floating point.
func patternCost(n, k int, anchored bool) float64 {
	if anchored {
		k--
		if k <= 0 {
			return float64(n)
		}
	}
	if k <= 0 {
		return float64(n)
	}
	lg, _ := math.Lgamma(float64(n + k + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	ln, _ := math.Lgamma(float64(n + 1))
	return math.Exp(lg - lk - ln)
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
