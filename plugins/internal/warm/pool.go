package warm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/proc"
)

// Config describes one kind of worker and how many to keep.
type Config struct {
	Runner string // "python", "javascript"

	// NewCmd builds the command that starts one worker (Path, Args, Env,
	// Dir). It is called for every worker; resolve interpreters once
	// outside it.
	NewCmd func() (*exec.Cmd, error)

	Spawn proc.SpawnFunc // nil = start directly

	// Key adds to the tenant what a worker must share with every step it
	// runs (nil = proc.Profile of the grant). A sandbox that fixes more at
	// start (the run's TempDir) includes that too.
	Key func(req *api.StepRequest) string

	// Inside maps host folders to the paths workers see them at (nil = the
	// same paths).
	Inside proc.InsideFunc

	// Scratch makes each worker's private folder, which steps run in when
	// the engine gives them no folder (emptied after every step). nil = a
	// scratch area of the pool's own under the system temp folder.
	Scratch *proc.Scratch

	// MaxWorkers is how many workers one key keeps alive (busy plus idle)
	// before a released worker is ended instead of kept. Default: the
	// number of CPUs, at least 2. Steps beyond it still run, on extra
	// workers that end after their step.
	MaxWorkers int

	// Spares is how many never-used workers each key keeps started ahead
	// of need (for isolation="process" steps and the next burst).
	// Default 1; negative = none.
	Spares int

	// IdleTimeout ends workers that have been idle this long. Default 5
	// minutes.
	IdleTimeout time.Duration

	// StartTimeout bounds a worker's start-up. Default 30 seconds.
	StartTimeout time.Duration
}

// ConfigFor is the pool configuration of a runner from its WorkerOptions.
func ConfigFor(runner string, newCmd func() (*exec.Cmd, error), scratch *proc.Scratch, o proc.WorkerOptions) Config {
	return Config{
		Runner: runner, NewCmd: newCmd, Scratch: scratch,
		Key: o.WorkerKey, Inside: o.Inside, Spawn: o.Spawn,
		MaxWorkers: o.PoolSize, Spares: o.Spares, IdleTimeout: o.IdleTimeout,
	}
}

// Key separates workers that must never be shared: one tenant's worker
// never runs another tenant's step, and a worker only runs steps with the
// grant it was started for (a sandbox confines it at start).
type Key struct {
	Tenant  string
	Profile string // Config.Key of the step
}

// Pool hands out workers by key. It is safe for concurrent use.
type Pool struct {
	cfg Config

	mu      sync.Mutex
	buckets map[Key]*bucket
	closed  bool

	background sync.WaitGroup
	stop       chan struct{}
	janitor    sync.Once
	ownScratch bool
}

type bucket struct {
	info     proc.SpawnInfo
	idle     []*Worker // most recently released last
	busy     int
	starting int
	spawnErr error // last background start failure (not retried until a step asks)
}

func (b *bucket) total() int { return b.busy + len(b.idle) + b.starting }

func (b *bucket) spares() int {
	n := b.starting
	for _, w := range b.idle {
		if !w.used {
			n++
		}
	}
	return n
}

// NewPool returns an empty pool; workers start when steps ask for them.
func NewPool(cfg Config) *Pool {
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = max(2, runtime.NumCPU())
	}
	if cfg.Spares == 0 {
		cfg.Spares = 1
	} else if cfg.Spares < 0 {
		cfg.Spares = 0
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	p := &Pool{cfg: cfg, buckets: make(map[Key]*bucket), stop: make(chan struct{})}
	if p.cfg.Scratch == nil {
		p.cfg.Scratch, p.ownScratch = &proc.Scratch{}, true
	}
	return p
}

// Acquire returns a worker for key, started for info. With fresh set it
// returns a worker that has never run a step (a spare if one is ready) and
// the caller must Release it with reuse=false.
func (p *Pool) Acquire(ctx context.Context, key Key, info proc.SpawnInfo, fresh bool) (*Worker, error) {
	p.janitor.Do(func() { go p.sweep() })
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	b := p.buckets[key]
	if b == nil {
		b = &bucket{info: info}
		p.buckets[key] = b
	}
	var dead []*Worker
	var w *Worker
	for i := len(b.idle) - 1; i >= 0; i-- {
		c := b.idle[i]
		if c.Broken() {
			dead = append(dead, c)
			b.idle = append(b.idle[:i], b.idle[i+1:]...)
			continue
		}
		if fresh && c.used {
			continue
		}
		w = c
		b.idle = append(b.idle[:i], b.idle[i+1:]...)
		break
	}
	b.busy++
	if w != nil {
		p.refill(key, b)
	}
	p.mu.Unlock()
	for _, d := range dead {
		d.Kill()
	}
	if w != nil {
		return w, nil
	}

	// Nothing ready: start one now (and spares behind it).
	w, err := p.start(ctx, b.info)
	p.mu.Lock()
	if err != nil {
		b.busy--
		p.mu.Unlock()
		return nil, err
	}
	if p.closed {
		b.busy--
		p.mu.Unlock()
		w.Kill()
		return nil, ErrClosed
	}
	b.spawnErr = nil
	p.refill(key, b)
	p.mu.Unlock()
	return w, nil
}

// Release gives a worker back after a step. reuse=false (isolation =
// "process", or a step that went wrong) ends it.
func (p *Pool) Release(key Key, w *Worker, reuse bool) {
	p.mu.Lock()
	b := p.buckets[key]
	keep := reuse && !p.closed && b != nil && !w.Broken() && b.total()-1 < p.cfg.MaxWorkers
	if b != nil {
		b.busy--
		if keep {
			w.used = true
			w.idleSince = time.Now()
			b.idle = append(b.idle, w)
		}
		if !p.closed {
			p.refill(key, b)
		}
	}
	p.mu.Unlock()
	if !keep {
		w.Kill()
	}
}

// refill starts spares in the background. Called with p.mu held.
func (p *Pool) refill(key Key, b *bucket) {
	if b.spawnErr != nil {
		return // do not spin on a broken interpreter; the next cold start retries
	}
	for b.spares() < p.cfg.Spares && b.total() < p.cfg.MaxWorkers {
		b.starting++
		p.background.Add(1)
		go func() {
			defer p.background.Done()
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
			defer cancel()
			w, err := p.start(ctx, b.info)
			p.mu.Lock()
			b.starting--
			if err != nil {
				b.spawnErr = err
				p.mu.Unlock()
				return
			}
			if p.closed {
				p.mu.Unlock()
				w.Kill()
				return
			}
			w.idleSince = time.Now()
			b.idle = append([]*Worker{w}, b.idle...) // spares at the front: warm ones are taken first
			p.mu.Unlock()
		}()
	}
}

func (p *Pool) start(ctx context.Context, info proc.SpawnInfo) (*Worker, error) {
	cmd, err := p.cfg.NewCmd()
	if err != nil {
		return nil, err
	}
	dir, err := p.cfg.Scratch.MakeDir(p.cfg.Runner + "-worker-")
	if err != nil {
		return nil, err
	}
	info.Workdir = dir
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	w, err := Start(ctx, p.cfg.Runner, p.cfg.Spawn, cmd, info)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("runner %s: %w", p.cfg.Runner, err)
	}
	return w, nil
}

// sweep ends workers idle longer than IdleTimeout.
func (p *Pool) sweep() {
	every := min(max(p.cfg.IdleTimeout/4, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			var expired []*Worker
			p.mu.Lock()
			for key, b := range p.buckets {
				kept := b.idle[:0]
				for _, w := range b.idle {
					if w.Broken() || now.Sub(w.idleSince) >= p.cfg.IdleTimeout {
						expired = append(expired, w)
					} else {
						kept = append(kept, w)
					}
				}
				b.idle = kept
				if b.total() == 0 {
					delete(p.buckets, key)
				}
			}
			p.mu.Unlock()
			for _, w := range expired {
				w.Kill()
			}
		}
	}
}

// Idle reports how many idle workers key has (tests and metrics).
func (p *Pool) Idle(key Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.buckets[key]; b != nil {
		return len(b.idle)
	}
	return 0
}

// Close ends every idle worker and every spare still starting. Busy
// workers end when their step releases them.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	var all []*Worker
	for _, b := range p.buckets {
		all = append(all, b.idle...)
		b.idle = nil
	}
	p.mu.Unlock()
	for _, w := range all {
		w.Kill()
	}
	p.background.Wait()
	for _, w := range all {
		<-w.Exited()
	}
	if p.ownScratch {
		return p.cfg.Scratch.Close()
	}
	return nil
}

// Do runs one step on a worker of req's tenant and grant: a warm one, or a
// fresh one that is ended afterwards when req.Isolation is "process".
// build makes the request given the folder the step runs in (as the worker
// sees it): req.TempDir, or else the worker's private folder (emptied after
// the step). host gets the step's output lines and serves its host API
// calls (nil: none). Do returns the worker's reply line and, with
// captureStdout, what the step printed on stdout (up to the step's output
// limit; see DoCapture for more control).
func (p *Pool) Do(ctx context.Context, req *api.StepRequest, build func(dir string) map[string]any, host api.Host, captureStdout bool) (reply []byte, stdout string, err error) {
	var c *proc.Capture
	if captureStdout {
		c = &proc.Capture{Limit: int(proc.MaxOutput(req.Grant)) + 1}
	}
	reply, err = p.DoCapture(ctx, req, build, host, c)
	if c != nil {
		stdout = c.String()
	}
	return reply, stdout, err
}

// DoCapture is Do with the step's stdout collected into stdout (nil: not
// collected). The step's output limit is proc.MaxOutput(req.Grant).
func (p *Pool) DoCapture(ctx context.Context, req *api.StepRequest, build func(dir string) map[string]any, host api.Host, stdout *proc.Capture) (reply []byte, err error) {
	profile := proc.Profile(req.Grant)
	if p.cfg.Key != nil {
		profile = p.cfg.Key(req)
	}
	key := Key{Tenant: req.Tenant, Profile: profile}
	info := proc.SpawnInfo{Runner: p.cfg.Runner, Tenant: req.Tenant, Grant: req.Grant, TempDir: req.TempDir}
	fresh := req.Isolation == IsolationProcess
	w, err := p.Acquire(ctx, key, info, fresh)
	if err != nil {
		return nil, err
	}
	dir := req.TempDir
	if dir == "" {
		dir = w.info.Workdir
	}
	reply, err = w.Exchange(ctx, build(p.cfg.Inside.Inside(w.info, dir)), host, stdout, proc.MaxOutput(req.Grant))
	reuse := err == nil && !fresh
	if reuse && dir == w.info.Workdir {
		if proc.EmptyDir(dir) != nil {
			reuse = false
		}
	}
	p.Release(key, w, reuse)
	return reply, err
}

// IsolationProcess is the StepRequest.Isolation value that asks for a fresh
// worker used for one step only.
const IsolationProcess = "process"
