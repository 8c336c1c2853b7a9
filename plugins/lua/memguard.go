package lua

import (
	"context"
	"fmt"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// memoryGuard stops Lua steps when the Go heap grows past a limit while they
// run. gopher-lua allocates on the Go heap with no per-state accounting (and
// its own SetMx calls os.Exit), so the guard samples the heap every few
// milliseconds while any Lua step is active and cancels the active steps,
// newest first is not knowable, so all of them, with a memory LimitError.
type memoryGuard struct {
	limit  int64
	mu     sync.Mutex
	active map[int]context.CancelCauseFunc
	nextID int
	base   uint64
	stop   chan struct{}
}

func newMemoryGuard(limit int64) *memoryGuard {
	return &memoryGuard{limit: limit, active: map[int]context.CancelCauseFunc{}}
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

// track registers a running step; the returned func unregisters it.
func (g *memoryGuard) track(cancel context.CancelCauseFunc) func() {
	g.mu.Lock()
	id := g.nextID
	g.nextID++
	g.active[id] = cancel
	if len(g.active) == 1 {
		g.base = heapBytes()
		g.stop = make(chan struct{})
		go g.watch(g.stop, g.base)
	}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.active, id)
		if len(g.active) == 0 {
			close(g.stop)
		}
		g.mu.Unlock()
	}
}

func (g *memoryGuard) watch(stop <-chan struct{}, base uint64) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if h := heapBytes(); h > base && int64(h-base) > g.limit {
				err := &api.LimitError{Limit: "memory", Detail: fmt.Sprintf("Lua steps grew the heap by %d MiB (limit %d MiB)", (h-base)>>20, g.limit>>20)}
				g.mu.Lock()
				for _, cancel := range g.active {
					cancel(err)
				}
				g.mu.Unlock()
			}
		}
	}
}
