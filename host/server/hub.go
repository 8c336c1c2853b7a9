package server

import (
	"sync"

	"github.com/hwe-run/hwe/host/store"
)

// hub fans stored events out to the live event streams of their run.
// Publishing never blocks the run: a subscriber that falls behind loses
// live events and is woken to re-read them from the store instead, so
// streams are complete while memory stays bounded.
type hub struct {
	mu     sync.Mutex
	subs   map[string]map[*subscription]struct{}
	closed bool
}

type subscription struct {
	ch   chan store.Event
	wake chan struct{} // a send to ch was dropped: re-read from the store
	done chan struct{} // the server is shutting down
}

func newHub() *hub { return &hub{subs: map[string]map[*subscription]struct{}{}} }

// subscribeBuffer is how many events a slow stream may lag before it falls
// back to reading the store.
const subscribeBuffer = 256

func (h *hub) subscribe(runID string) *subscription {
	sub := &subscription{ch: make(chan store.Event, subscribeBuffer), wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.done)
		return sub
	}
	if h.subs[runID] == nil {
		h.subs[runID] = map[*subscription]struct{}{}
	}
	h.subs[runID][sub] = struct{}{}
	return sub
}

func (h *hub) unsubscribe(runID string, sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[runID], sub)
	if len(h.subs[runID]) == 0 {
		delete(h.subs, runID)
	}
}

func (h *hub) publish(ev store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs[ev.RunID] {
		select {
		case sub.ch <- ev:
		default:
			select {
			case sub.wake <- struct{}{}:
			default:
			}
		}
	}
}

// closeAll ends every stream (server shutdown).
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, subs := range h.subs {
		for sub := range subs {
			close(sub.done)
		}
	}
	h.subs = map[string]map[*subscription]struct{}{}
}
