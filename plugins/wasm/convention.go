package wasm

import (
	"fmt"
	"sort"
	"strings"
)

// Import namespaces a WASM step may use.
const (
	extismKernel = "extism:host/env"  // Extism's kernel: input, output, memory
	extismUser   = "extism:host/user" // host functions: hwe_v1_*
	wasiPreview1 = "wasi_snapshot_preview1"
)

// convention is how hwe calls a module's function and what it does with
// the result.
type convention int

const (
	// conventionReference is the reference engine's: the function takes no
	// data and returns a status code; the step's output is a report object
	// built by hwe. A module that imports nothing from Extism uses it.
	conventionReference convention = iota
	// conventionNative is Extism's guest ABI: the step's inputs arrive as
	// JSON, the function's output is parsed as JSON, errors set with
	// error_set become step errors. A module that imports from
	// extism:host/env or extism:host/user uses it.
	conventionNative
)

func (c convention) String() string {
	if c == conventionNative {
		return "native (Extism ABI)"
	}
	return "reference (status code)"
}

// detectConvention picks the calling convention from the module's imports,
// so workflows need no extra field: a module built against Extism's kernel
// cannot run without it, and a module that does not import it has no way
// to receive input.
func detectConvention(info *moduleInfo) convention {
	if info.importsFrom(extismKernel) || info.importsFrom(extismUser) {
		return conventionNative
	}
	return conventionReference
}

// callShape is how a function is called.
type callShape int

const (
	shapeReturnsCode callShape = iota // () -> i32
	shapeTakesCount                   // (i32) -> i32, given the number of inputs
	shapeVoid                         // () -> (), success when it returns
)

var (
	sigReturnsCode = funcSig{Results: []valType{i32}}
	sigTakesCount  = funcSig{Params: []valType{i32}, Results: []valType{i32}}
	sigVoid        = funcSig{}
)

// resolveFunction finds the function a step calls and how to call it. The
// error message follows the reference's, listing the module's exports.
func resolveFunction(info *moduleInfo, conv convention, fn, modulePath string) (callShape, error) {
	sig, ok := info.function(fn)
	if !ok {
		return 0, fmt.Errorf("Function '%s' not found in WASM module '%s'. Available exports: %s",
			fn, modulePath, quoteList(info.exportNames()))
	}
	switch {
	case sig.is(sigReturnsCode.Params, sigReturnsCode.Results):
		return shapeReturnsCode, nil
	case sig.is(sigVoid.Params, sigVoid.Results):
		return shapeVoid, nil
	case conv == conventionReference && sig.is(sigTakesCount.Params, sigTakesCount.Results):
		return shapeTakesCount, nil
	}
	usable := "() -> i32, (i32) -> i32 (called with the number of inputs) or () -> ()"
	if conv == conventionNative {
		usable = "() -> i32 or () -> () (Extism functions take their input through the kernel)"
	}
	return 0, fmt.Errorf("Function '%s' in WASM module '%s' has signature %s, which hwe cannot call; use %s",
		fn, modulePath, sig, usable)
}

// quoteList formats names like the reference's Rust Debug output: ["a", "b"].
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// kernelFuncs are the functions of Extism's kernel namespace, with their
// signatures (from the go-sdk's extism:host/env module).
var kernelFuncs = map[string]funcSig{
	"alloc":            {Params: []valType{i64}, Results: []valType{i64}},
	"free":             {Params: []valType{i64}},
	"load_u8":          {Params: []valType{i64}, Results: []valType{i32}},
	"input_load_u8":    {Params: []valType{i64}, Results: []valType{i32}},
	"store_u64":        {Params: []valType{i64, i64}},
	"store_u8":         {Params: []valType{i64, i32}},
	"input_set":        {Params: []valType{i64, i64}},
	"output_set":       {Params: []valType{i64, i64}},
	"input_length":     {Results: []valType{i64}},
	"input_offset":     {Results: []valType{i64}},
	"output_length":    {Results: []valType{i64}},
	"output_offset":    {Results: []valType{i64}},
	"length":           {Params: []valType{i64}, Results: []valType{i64}},
	"length_unsafe":    {Params: []valType{i64}, Results: []valType{i64}},
	"reset":            {},
	"error_set":        {Params: []valType{i64}},
	"error_get":        {Results: []valType{i64}},
	"memory_bytes":     {Results: []valType{i64}},
	"input_load_u64":   {Params: []valType{i64}, Results: []valType{i64}},
	"load_u64":         {Params: []valType{i64}, Results: []valType{i64}},
	"config_get":       {Params: []valType{i64}, Results: []valType{i64}},
	"var_get":          {Params: []valType{i64}, Results: []valType{i64}},
	"var_set":          {Params: []valType{i64, i64}},
	"http_request":     {Params: []valType{i64, i64}, Results: []valType{i64}},
	"http_status_code": {Results: []valType{i32}},
	"http_headers":     {Results: []valType{i64}},
	"get_log_level":    {Results: []valType{i32}},
	"log_trace":        {Params: []valType{i64}},
	"log_debug":        {Params: []valType{i64}},
	"log_info":         {Params: []valType{i64}},
	"log_warn":         {Params: []valType{i64}},
	"log_error":        {Params: []valType{i64}},
}

// checkImports lists every import hwe cannot satisfy, so `hwe validate`
// reports them instead of the step failing at instantiation.
func checkImports(info *moduleInfo) []string {
	var problems []string
	for _, imp := range info.Imports {
		where := imp.Module + "." + imp.Name
		switch imp.Module {
		case wasiPreview1:
			// wazero implements the whole of WASI preview 1.
		case extismKernel:
			sig, ok := kernelFuncs[imp.Name]
			switch {
			case !ok || imp.Kind != 0:
				problems = append(problems, fmt.Sprintf("imports %s, which Extism's kernel does not provide", where))
			case !sig.is(imp.Sig.Params, imp.Sig.Results):
				problems = append(problems, fmt.Sprintf("imports %s with signature %s; the kernel's is %s", where, imp.Sig, sig))
			}
		case extismUser:
			switch {
			case !isHostFunction(imp.Name) || imp.Kind != 0:
				problems = append(problems, fmt.Sprintf("imports %s, which is not an hwe host function (available: %s)",
					where, strings.Join(hostFunctionNames(), ", ")))
			case !imp.Sig.is(hostFuncSig.Params, hostFuncSig.Results):
				problems = append(problems, fmt.Sprintf("imports %s with signature %s; hwe host functions are %s", where, imp.Sig, hostFuncSig))
			}
		default:
			problems = append(problems, fmt.Sprintf("imports %s, which hwe does not provide (a WASM step may import only %s, %s and %s)",
				where, wasiPreview1, extismKernel, extismUser))
		}
	}
	return problems
}

func hostFunctionNames() []string {
	names := make([]string, 0, len(hostFunctions))
	for name := range hostFunctions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func isHostFunction(name string) bool {
	_, ok := hostFunctions[name]
	return ok
}
