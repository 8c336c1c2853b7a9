// Package wasm runs WebAssembly steps in-process on Extism's go-sdk over
// wazero, the safest way hwe runs third-party code.
//
// A module is called in one of two conventions, chosen by its imports:
//
//   - reference (no Extism imports): the reference engine's. The function,
//     () -> i32, (i32) -> i32 (given the number of inputs) or () -> (), gets
//     no data; its status code decides the step (0 success, 1..10 warning,
//     anything else failure) and the output is a report object.
//   - native (imports from extism:host/env or extism:host/user): Extism's
//     guest ABI. The step's inputs arrive as JSON, the output is parsed as
//     JSON, an error set by the guest fails the step with its message, and
//     the hwe_v1_* host functions reach hwe's host API.
//
// Limits always hold: a timeout on every call (a spinning guest is stopped),
// a memory cap per instance, input and output sizes checked by hwe, no file
// system unless granted (and then only os.Root-backed mounts), no network
// but the host API, a real clock and a real random source.
package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"

	"github.com/hwe-run/hwe/host/api"
)

// Version is the runner's version as `hwe plugins list` shows it.
const Version = "1.0.0 (extism go-sdk v1.7.1, wazero v1.12.0)"

// Options configure a Runner. Zero values mean the documented defaults.
type Options struct {
	// CacheDir holds compiled native code across processes, so a large
	// module compiles once per machine rather than once per process.
	// Default: os.UserCacheDir()/hwe/wasm. It is created 0700 and must be
	// owned by this user: code loaded from it runs in-process. If it cannot
	// be used, compiled code is cached in memory only (see CacheDir()).
	CacheDir string
	// NoDiskCache keeps compiled code in memory only.
	NoDiskCache bool
	// MemoryLimit is the memory cap of one instance in bytes when the
	// step's grant sets none. Default 256 MiB.
	MemoryLimit int64
	// Timeout bounds every call when the step sets no timeout. Default 5m.
	Timeout time.Duration
	// MaxInputBytes caps the JSON input of a native step. Default 16 MiB.
	MaxInputBytes int64
	// MaxOutputBytes caps a step's output when its grant sets no
	// MaxOutput, and each host-function request and response. Default 16 MiB.
	MaxOutputBytes int64
	// MaxIdleInstances is how many idle instances of one native module
	// are kept for reuse. Default 2 × GOMAXPROCS; negative keeps none.
	MaxIdleInstances int
	// MaxModules is how many compiled modules are kept in memory. Default 64.
	MaxModules int
	// WorkDir is the working directory relative module paths fall back to.
	// Default: the process's working directory at call time.
	WorkDir string
}

func (o Options) withDefaults() Options {
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = 256 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = 16 << 20
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = 16 << 20
	}
	switch {
	case o.MaxIdleInstances == 0:
		o.MaxIdleInstances = 2 * runtime.GOMAXPROCS(0)
	case o.MaxIdleInstances < 0:
		o.MaxIdleInstances = 0
	}
	if o.MaxModules <= 0 {
		o.MaxModules = 64
	}
	return o
}

// DefaultCacheDir is where compiled modules are cached when Options.CacheDir
// is empty.
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "hwe", "wasm"), nil
}

// Runner runs wasm steps. It implements api.Runner, api.StepChecker and
// api.Closer, and is safe for concurrent use.
type Runner struct {
	opts       Options
	cache      wazero.CompilationCache
	cacheDir   string // "" when the cache is in memory only
	cacheIssue string // why the disk cache is not used, if it is not

	mu       sync.Mutex
	modules  map[moduleKey]*module
	hashes   map[string]hashedFile
	useTick  uint64
	closed   bool
	inflight int // Run and CheckStep calls in progress
	released sync.Once

	rtMu  sync.Mutex
	plain wazero.Runtime // for reference-convention modules, made on first use
}

var (
	_ api.Runner      = (*Runner)(nil)
	_ api.StepChecker = (*Runner)(nil)
	_ api.Closer      = (*Runner)(nil)
)

var extismLogLevel sync.Once

// New returns a Runner. It never fails: problems with the cache directory
// fall back to an in-memory cache, reported by CacheDir.
func New(opts Options) *Runner {
	opts = opts.withDefaults()
	// Extism drops guest log calls below a process-wide level that is "off"
	// until set; hwe wants guest logs at info and above in the step's log.
	extismLogLevel.Do(func() { extism.SetLogLevel(extism.LogLevelInfo) })
	r := &Runner{
		opts:    opts,
		modules: map[moduleKey]*module{},
		hashes:  map[string]hashedFile{},
	}
	if !opts.NoDiskCache {
		dir, err := privateCacheDir(opts.CacheDir)
		if err == nil {
			var cache wazero.CompilationCache
			cache, err = wazero.NewCompilationCacheWithDir(dir)
			if err == nil {
				r.cache, r.cacheDir = cache, dir
			}
		}
		if err != nil {
			r.cacheIssue = err.Error()
		}
	}
	if r.cache == nil {
		r.cache = wazero.NewCompilationCache()
	}
	return r
}

// CacheDir returns the directory compiled code is cached in, or "" and the
// reason when compiled code is cached in memory only.
func (r *Runner) CacheDir() (dir, issue string) { return r.cacheDir, r.cacheIssue }

// Info describes the runner.
func (r *Runner) Info() api.RunnerInfo {
	return api.RunnerInfo{Name: "wasm", Languages: []string{api.LangWasm}, Version: Version, Kind: "builtin"}
}

// limits are the limits in force for one step.
type limits struct {
	pages     uint32
	timeout   time.Duration
	maxInput  int64
	maxOutput int64
	maxHost   int64 // host-function request or response
}

func (r *Runner) limitsFor(req *api.StepRequest) limits {
	mem := r.opts.MemoryLimit
	if req.Grant.Memory > 0 {
		mem = req.Grant.Memory
	}
	l := limits{
		pages:     pagesFor(mem),
		timeout:   r.opts.Timeout,
		maxInput:  r.opts.MaxInputBytes,
		maxOutput: r.opts.MaxOutputBytes,
		maxHost:   r.opts.MaxOutputBytes,
	}
	if req.Timeout > 0 {
		l.timeout = req.Timeout
	}
	if req.Grant.MaxOutput > 0 {
		l.maxOutput = req.Grant.MaxOutput
	}
	// Input goes through Extism's kernel memory, which is under the same
	// cap and also holds the output; Extism drops input that does not fit
	// without telling anyone, so hwe refuses it first.
	l.maxInput = min(l.maxInput, int64(l.pages)*pageSize/2)
	l.maxHost = min(l.maxHost, int64(l.pages)*pageSize/4)
	return l
}

func (l limits) memoryBytes() int64 { return int64(l.pages) * pageSize }

// Run executes one wasm step.
func (r *Runner) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	if err := r.begin(); err != nil {
		return nil, err
	}
	defer r.end()
	if host == nil {
		host = api.NopHost{}
	}
	if req.Module == "" {
		return nil, &api.StepError{Message: fmt.Sprintf("WASM step '%s' missing 'module' field", req.Step)}
	}
	fn := functionName(req)
	path, fi, err := r.resolveModule(req)
	if err != nil {
		return nil, err
	}
	lim := r.limitsFor(req)
	m, err := r.acquireModule(ctx, path, fi, req.Module)
	if err != nil {
		return nil, err
	}
	defer r.releaseModule(m)
	shape, err := resolveFunction(m.info, m.conv, fn, req.Module)
	if err != nil {
		return nil, &api.StepError{Message: err.Error()}
	}
	if m.info.MinMemoryPages > uint64(lim.pages) {
		return nil, memoryError(fn, lim, fmt.Errorf("the module starts with %s of memory",
			formatBytes(int64(m.info.MinMemoryPages)*pageSize)))
	}
	if m.conv == conventionNative {
		return r.runNative(ctx, req, host, m, fn, lim)
	}
	return r.runReference(ctx, req, host, m, fn, shape, lim)
}

func functionName(req *api.StepRequest) string {
	if req.Function == "" {
		return "run"
	}
	return req.Function
}

// CheckStep reports, without running anything, whether the step's module
// exists, compiles, imports only what hwe provides and exports the function
// with a signature hwe can call. Compiling here also warms the caches.
func (r *Runner) CheckStep(ctx context.Context, req *api.StepRequest) []string {
	if err := r.begin(); err != nil {
		return []string{err.Error()}
	}
	defer r.end()
	if req.Module == "" {
		return []string{fmt.Sprintf("WASM step '%s' missing 'module' field", req.Step)}
	}
	path, fi, err := r.resolveModule(req)
	if err != nil {
		return []string{err.Error()}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("Failed to load WASM module '%s': %v", req.Module, err)}
	}
	info, err := readModuleInfo(data)
	if err != nil {
		return []string{fmt.Sprintf("Failed to load WASM module '%s': %v", req.Module, err)}
	}
	var problems []string
	for _, p := range checkImports(info) {
		problems = append(problems, fmt.Sprintf("WASM module '%s' %s", req.Module, p))
	}
	if _, err := resolveFunction(info, detectConvention(info), functionName(req), req.Module); err != nil {
		problems = append(problems, err.Error())
	}
	if lim := r.limitsFor(req); info.MinMemoryPages > uint64(lim.pages) {
		problems = append(problems, fmt.Sprintf("WASM module '%s' starts with %s of memory, more than the step's memory limit of %s",
			req.Module, formatBytes(int64(info.MinMemoryPages)*pageSize), formatBytes(lim.memoryBytes())))
	}
	if len(problems) > 0 {
		return problems
	}
	m, err := r.acquireModule(ctx, path, fi, req.Module)
	if err != nil {
		return []string{err.Error()}
	}
	r.releaseModule(m)
	return nil
}

// begin and end bracket every Run and CheckStep, so Close can release
// everything once the last one is done.
func (r *Runner) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("wasm runner is closed")
	}
	r.inflight++
	return nil
}

func (r *Runner) end() {
	r.mu.Lock()
	r.inflight--
	last := r.closed && r.inflight == 0
	r.mu.Unlock()
	if last {
		r.release()
	}
}

// Close refuses new steps and releases every compiled module, instance and
// runtime. Steps still running keep what they use until they return (their
// contexts bound how long); the last one releases it.
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	idle := r.inflight == 0
	r.mu.Unlock()
	if idle {
		r.release()
	}
	return nil
}

func (r *Runner) release() {
	r.released.Do(func() {
		r.mu.Lock()
		modules := r.modules
		r.modules = map[moduleKey]*module{}
		r.mu.Unlock()
		for _, m := range modules {
			<-m.ready
			m.close()
		}
		ctx := context.Background()
		r.rtMu.Lock()
		if r.plain != nil {
			_ = r.plain.Close(ctx)
			r.plain = nil
		}
		r.rtMu.Unlock()
		_ = r.cache.Close(ctx)
	})
}
