// Package luasafe builds gopher-lua states with a restricted standard library,
// used both to evaluate workflow files and to run Lua steps.
//
// What is left out, and why: io, package/require, debug and the os functions
// other than time/clock/date reach the host; load/loadstring/dofile/loadfile
// compile code that escapes the step's environment; collectgarbage,
// getfenv/setfenv and newproxy let code reach other functions' environments or
// the collector. string.rep is capped because it multiplies memory in one call.
package luasafe

import (
	"fmt"
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// MaxStringBytes caps the result of memory-multiplying string functions.
const MaxStringBytes = 16 << 20

// removedBase are base-library globals a sandboxed state must not have.
var removedBase = []string{
	"dofile", "loadfile", "load", "loadstring", "require", "module",
	"collectgarbage", "getfenv", "setfenv", "newproxy", "_printregs",
}

// LibraryNames are the library tables a sandboxed state exposes.
var LibraryNames = []string{"string", "table", "math", "os"}

// registryMax bounds a state's value stack. Vararg tail recursion copies
// its growing arguments on every call, so the bound also bounds how long such
// a step can spin before failing (about 0.3 s at this size).
const registryMax = 32 * 1024

// NewState returns a state with only the safe libraries open. Call stack and
// registry are bounded so runaway recursion fails with an error instead of
// exhausting memory.
func NewState() *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       4000, // Lua-to-Lua recursion a few thousand deep, as real code needs
		MinimizeStackMemory: true, // grow the call stack on demand instead of allocating it all
		RegistrySize:        1024,
		RegistryMaxSize:     registryMax,
		RegistryGrowStep:    1024,
		IncludeGoStackTrace: false,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	globals := L.G.Global
	for _, name := range removedBase {
		globals.RawSetString(name, lua.LNil)
	}
	// os: only the clock and calendar functions.
	os := L.NewTable()
	if full, ok := globals.RawGetString("os").(*lua.LTable); ok {
		for _, name := range []string{"time", "clock", "date", "difftime"} {
			os.RawSetString(name, full.RawGetString(name))
		}
	}
	globals.RawSetString("os", os)

	// gopher-lua's math.huge is the largest float; Lua's is infinity (and
	// the reference turns it into null in JSON).
	if m, ok := globals.RawGetString("math").(*lua.LTable); ok {
		m.RawSetString("huge", lua.LNumber(math.Inf(1)))
	}

	str := globals.RawGetString("string").(*lua.LTable)
	str.RawSetString("rep", L.NewFunction(safeRep))
	str.RawSetString("dump", lua.LNil)
	guardPatterns(L, str)
	// Lua 5.4 names that workflows written for the reference use.
	tbl := globals.RawGetString("table").(*lua.LTable)
	if tbl.RawGetString("unpack") == lua.LNil {
		tbl.RawSetString("unpack", globals.RawGetString("unpack"))
	}
	// The string metatable's __index is the shared string table; hide the
	// metatable so step code cannot reach and modify it through getmetatable("").
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		mt.RawSetString("__metatable", lua.LFalse)
	}
	return L
}

// safeRep is string.rep with a cap on the result size.
func safeRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	sep := L.OptString(3, "")
	if n <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	size := int64(len(s))*int64(n) + int64(len(sep))*int64(n-1)
	if size > MaxStringBytes {
		L.RaiseError("string.rep: result of %d bytes exceeds the %d byte limit", size, MaxStringBytes)
		return 0
	}
	out := make([]byte, 0, size)
	for i := 0; i < n; i++ {
		if i > 0 {
			out = append(out, sep...)
		}
		out = append(out, s...)
	}
	L.Push(lua.LString(out))
	return 1
}

// NewEnv returns a fresh global environment for one step. Reads fall through
// to the state's globals and library tables; writes land in tables private
// to the step, so a step that redefines string.upper or a global changes only
// its own view. The shared tables behind the views are hidden from
// getmetatable, so a step cannot reach and modify them.
//
// Views cost a few small tables per step instead of copying every library
// (about 100 map inserts), which keeps a no-op step cheap.
func NewEnv(L *lua.LState) *lua.LTable {
	meta := viewMetatables(L)
	env := L.CreateTable(0, 4)
	L.SetMetatable(env, meta["_G"])
	for _, name := range LibraryNames {
		view := L.CreateTable(0, 0)
		L.SetMetatable(view, meta[name])
		env.RawSetString(name, view)
	}
	env.RawSetString("_G", env)
	return env
}

// viewMetatables returns, per state, the metatables that make a table a
// read-through view of the globals ("_G") or of a library.
func viewMetatables(L *lua.LState) map[string]*lua.LTable {
	if mt, ok := L.G.Registry.RawGetString(viewsKey).(*lua.LUserData); ok {
		return mt.Value.(map[string]*lua.LTable)
	}
	meta := map[string]*lua.LTable{}
	for _, name := range append([]string{"_G"}, LibraryNames...) {
		target := L.G.Global
		if name != "_G" {
			target = L.G.Global.RawGetString(name).(*lua.LTable)
		}
		mt := L.CreateTable(0, 2)
		mt.RawSetString("__index", target)
		mt.RawSetString("__metatable", lua.LFalse)
		meta[name] = mt
	}
	ud := L.NewUserData()
	ud.Value = meta
	L.G.Registry.RawSetString(viewsKey, ud)
	return meta
}

const viewsKey = "hwe.luasafe.views"

func isLibrary(k lua.LValue) bool {
	s, ok := k.(lua.LString)
	if !ok {
		return false
	}
	for _, name := range LibraryNames {
		if string(s) == name {
			return true
		}
	}
	return false
}

// Protect runs f and turns a panic inside gopher-lua (its own error handler
// can panic on deep vararg recursion) into an error. After such a panic the
// state must be thrown away: broken reports that.
func Protect(f func() error) (err error, broken bool) {
	defer func() {
		if r := recover(); r != nil {
			broken = true
			if s := fmt.Sprint(r); strings.Contains(s, "index out of range") || strings.Contains(s, "registry") {
				// gopher-lua indexes past its bounded value stack instead of
				// raising "stack overflow" when (tail) recursion fills it.
				err = fmt.Errorf("stack overflow: the Lua value stack limit (%d slots) was reached", registryMax)
				return
			}
			err = fmt.Errorf("lua VM failure: %v", r)
		}
	}()
	return f(), false
}
