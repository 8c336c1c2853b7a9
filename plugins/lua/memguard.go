package lua

import (
	"context"
	"fmt"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// memoryGuard stops Lua steps whose memory use passes their limit.
//
// gopher-lua allocates on the Go heap with no per-state accounting (and its
// own SetMx calls os.Exit), so the guard samples the heap every few
// milliseconds while any Lua step is active and compares, for each step, how
// far the heap grew since that step started with that step's limit (its
// grant's memory, else the runner's default). The step with the smallest
// limit is stopped first; a neighbour with a larger limit keeps running
// unless the heap keeps growing past its own limit too.
type memoryGuard struct {
	defaultLimit int64
	mu           sync.Mutex
	active       map[int]*guarded
	nextID       int
	stop         chan struct{}
}

type guarded struct {
	cancel context.CancelCauseFunc
	base   uint64 // heap when the step started
	limit  int64
}

func newMemoryGuard(limit int64) *memoryGuard {
	return &memoryGuard{defaultLimit: limit, active: map[int]*guarded{}}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// track registers a running step with its limit (0 = the default); the
// returned func unregisters it.
func (g *memoryGuard) track(cancel context.CancelCauseFunc, limit int64) func() {
	if limit <= 0 {
		limit = g.defaultLimit
	}
	g.mu.Lock()
	id := g.nextID
	g.nextID++
	g.active[id] = &guarded{cancel: cancel, base: heapBytes(), limit: limit}
	if g.stop == nil {
		g.stop = make(chan struct{})
		go g.watch(g.stop)
	}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.active, id)
		g.stopIfIdle()
		g.mu.Unlock()
	}
}

func (g *memoryGuard) watch(stop <-chan struct{}) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			g.check(heapBytes())
		}
	}
}

// check stops every step whose heap growth passed its limit.
func (g *memoryGuard) check(heap uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, s := range g.active {
		if heap <= s.base || int64(heap-s.base) <= s.limit {
			continue
		}
		s.cancel(&api.LimitError{Limit: "memory", Detail: fmt.Sprintf("the heap grew by %d MiB while the Lua step ran (limit %d MiB)", (heap-s.base)>>20, s.limit>>20)})
		delete(g.active, id) // cancelled once; its release func finds it gone
	}
	g.stopIfIdle()
}

// stopIfIdle ends the watcher when no step is left. Called with g.mu held.
func (g *memoryGuard) stopIfIdle() {
	if len(g.active) == 0 && g.stop != nil {
		close(g.stop)
		g.stop = nil
	}
}
