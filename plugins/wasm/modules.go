package wasm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/hwe-run/hwe/host/api"
)

// A module is compiled once per content hash and kept, so a step pays for
// compilation only the first time a module is seen by this process, and
// only a disk-cache load the first time after that in any process. Memory
// caps are per instance (see memoryWatch), so one compiled module serves
// steps with any cap.
type moduleKey [32]byte

// module is one compiled module. Fields below ready are set once, before
// ready is closed; refs, lastUse and evicted are guarded by Runner.mu.
type module struct {
	key   moduleKey
	ready chan struct{}
	err   error

	info *moduleInfo
	conv convention

	compiled wazero.CompiledModule  // reference convention, in a shared plain runtime
	plugin   *extism.CompiledPlugin // native convention, with its own runtime
	pool     instancePool           // native convention

	refs    int
	lastUse uint64
	evicted bool
}

// close releases the compiled code. Only called when no step uses it.
func (m *module) close() {
	ctx := context.Background()
	m.pool.closeAll()
	if m.compiled != nil {
		_ = m.compiled.Close(ctx)
	}
	if m.plugin != nil {
		_ = m.plugin.Close(ctx)
	}
}

// fileStamp identifies a file's content cheaply: if none of these changed,
// the content hash computed last time still holds, and a step of a module
// that is already compiled costs one stat instead of reading and hashing
// megabytes.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	ctime syscall.Timespec
}

func stampOf(fi fs.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
		s.ctime = st.Ctim
	}
	return s
}

// maxHashedFiles bounds the path → hash memo.
const maxHashedFiles = 4096

type hashedFile struct {
	stamp fileStamp
	hash  moduleKey
}

// resolveModule finds a step's module file: an absolute path as is, a
// relative one against the workflow's folder first, then the working
// directory (the reference resolved only against the working directory, so
// its workflows say "workflows/x.wasm").
func (r *Runner) resolveModule(req *api.StepRequest) (string, fs.FileInfo, error) {
	p := req.Module
	var candidates []string
	if filepath.IsAbs(p) {
		candidates = []string{p}
	} else {
		if req.WorkflowDir != "" {
			candidates = append(candidates, filepath.Join(req.WorkflowDir, p))
		}
		wd := r.opts.WorkDir
		if wd == "" {
			wd, _ = os.Getwd()
		}
		if wd != "" {
			candidates = append(candidates, filepath.Join(wd, p))
		}
	}
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err == nil && fi.Mode().IsRegular() {
			return c, fi, nil
		}
	}
	return "", nil, &api.StepError{Message: fmt.Sprintf("WASM module file not found: %s. Please ensure the .wasm file exists.", p)}
}

// acquireModule returns the compiled module for the file at path (as found
// by resolveModule), compiling it if needed.
// Concurrent steps asking for the same module wait for one compilation.
// The caller must releaseModule it.
func (r *Runner) acquireModule(ctx context.Context, path string, fi fs.FileInfo, written string) (*module, error) {
	stamp := stampOf(fi)
	r.mu.Lock()
	if hf, ok := r.hashes[path]; ok && hf.stamp == stamp {
		if m, ok := r.modules[hf.hash]; ok {
			m.refs++
			r.mu.Unlock()
			return r.awaitModule(m)
		}
	}
	r.mu.Unlock()

	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &api.StepError{Message: fmt.Sprintf("Failed to load WASM module '%s': %v", written, err)}
	}
	key := moduleKey(sha256.Sum256(data))

	r.mu.Lock()
	if len(r.hashes) >= maxHashedFiles {
		clear(r.hashes) // a long-running server seeing many paths: start over
	}
	r.hashes[path] = hashedFile{stamp: stamp, hash: key}
	if m, ok := r.modules[key]; ok {
		m.refs++
		r.mu.Unlock()
		return r.awaitModule(m)
	}
	m := &module{key: key, ready: make(chan struct{}), refs: 1}
	r.modules[key] = m
	r.mu.Unlock()

	m.err = r.compile(ctx, m, data, written)
	if m.err != nil {
		// Forget the failure so a fixed file (or a retry after a
		// cancelled compile) is compiled afresh.
		r.mu.Lock()
		if r.modules[key] == m {
			delete(r.modules, key)
		}
		r.mu.Unlock()
	}
	close(m.ready)
	r.evictIdleModules()
	return r.awaitModule(m)
}

func (r *Runner) awaitModule(m *module) (*module, error) {
	<-m.ready
	if m.err != nil {
		r.releaseModule(m)
		return nil, m.err
	}
	return m, nil
}

func (r *Runner) releaseModule(m *module) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.refs--
	r.useTick++
	m.lastUse = r.useTick
	if m.evicted && m.refs == 0 {
		m.close()
	}
}

// evictIdleModules keeps at most MaxModules compiled modules in memory,
// dropping the least recently used that no step is using. Their compiled
// code stays in the disk cache.
func (r *Runner) evictIdleModules() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.modules) > r.opts.MaxModules {
		var victim *module
		for _, m := range r.modules {
			select {
			case <-m.ready:
			default:
				continue // still compiling
			}
			if m.refs == 0 && (victim == nil || m.lastUse < victim.lastUse) {
				victim = m
			}
		}
		if victim == nil {
			return // every module is in use; shrink later
		}
		delete(r.modules, victim.key)
		victim.evicted = true
		victim.close()
	}
}

// compile reads the module's headers, decides its calling convention and
// compiles it for that convention.
func (r *Runner) compile(ctx context.Context, m *module, data []byte, written string) error {
	loadErr := func(err error) error {
		return &api.StepError{Message: fmt.Sprintf("Failed to load WASM module '%s': %v", written, err)}
	}
	info, err := readModuleInfo(data)
	if err != nil {
		return loadErr(err)
	}
	if problems := checkImports(info); len(problems) > 0 {
		return loadErr(errors.New(problems[0]))
	}
	m.info = info
	m.conv = detectConvention(info)
	if m.conv == conventionReference {
		rt, err := r.plainRuntime(ctx)
		if err != nil {
			return err
		}
		m.compiled, err = rt.CompileModule(ctx, data)
		if err != nil {
			return loadErr(err)
		}
		return nil
	}
	m.plugin, err = extism.NewCompiledPlugin(ctx,
		extism.Manifest{
			Wasm: []extism.Wasm{extism.WasmData{Data: data}},
			// Extism's own HTTP is off: no allowed hosts. Guests reach the
			// network only through hwe_v1_http_fetch, which the host checks.
			AllowedHosts: nil,
		},
		extism.PluginConfig{
			RuntimeConfig: r.runtimeConfig(),
			EnableWasi:    true,
		},
		extismHostFunctions())
	if err != nil {
		return loadErr(err)
	}
	m.pool.maxIdle = r.opts.MaxIdleInstances
	return nil
}

// runtimeConfig is the wazero configuration every runtime shares: the
// compilation cache, and cancellation when a call's context ends (without
// it a spinning guest ignores its deadline and stalls the whole process at
// the next garbage collection). Memory caps are per instance: memoryWatch.
func (r *Runner) runtimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithCloseOnContextDone(true)
}

// plainRuntime returns the runtime shared by reference-convention modules;
// it provides WASI (with nothing granted) and nothing else.
func (r *Runner) plainRuntime(ctx context.Context) (wazero.Runtime, error) {
	r.rtMu.Lock()
	defer r.rtMu.Unlock()
	if r.plain != nil {
		return r.plain, nil
	}
	rt := wazero.NewRuntimeWithConfig(ctx, r.runtimeConfig())
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiating WASI: %w", err)
	}
	r.plain = rt
	return rt, nil
}

// instancePool keeps idle instances of a native module for reuse. An
// instance is only reused by a step of the same scope (see scopeOf) and is
// held by one step at a time, never shared between goroutines.
type instancePool struct {
	mu      sync.Mutex
	idle    []*instance
	maxIdle int
	closed  bool
}

// get returns an idle instance of the scope, or nil.
func (p *instancePool) get(scope string) *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		if inst := p.idle[i]; inst.scope == scope {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return inst
		}
	}
	return nil
}

// put returns an instance for reuse, closing the oldest idle one if the
// pool is full.
func (p *instancePool) put(inst *instance) {
	p.mu.Lock()
	if p.closed || p.maxIdle <= 0 {
		p.mu.Unlock()
		inst.close()
		return
	}
	p.idle = append(p.idle, inst)
	var evict *instance
	if len(p.idle) > p.maxIdle {
		evict = p.idle[0]
		p.idle = p.idle[1:]
	}
	p.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

func (p *instancePool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, inst := range idle {
		inst.close()
	}
}
