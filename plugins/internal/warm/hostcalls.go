package warm

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/hostcall"
)

// callPrefix starts every host API call a worker sends, so a step's reply
// (which starts {"ok":...} or similar) is told apart without decoding it.
var callPrefix = []byte(`{"call":`)

func isHostCall(line []byte) bool { return bytes.HasPrefix(line, callPrefix) }

// callServer serves the host API calls of one step.
type callServer struct {
	ctx    context.Context
	cancel context.CancelFunc
	out    *outbox
	host   api.Host
	token  string // the step's host_token: calls without it are not this step's

	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup // calls served in the background
}

func newCallServer(ctx context.Context, out *outbox, host api.Host, token string) *callServer {
	ctx, cancel := context.WithCancel(ctx)
	return &callServer{ctx: ctx, cancel: cancel, out: out, host: host, token: token}
}

// handle serves line if it is a host API call and reports whether it was
// one. Log and progress are served at once, in order; the others (which
// may wait on the network or a store) in the background, so a step can
// have several in flight.
func (c *callServer) handle(line []byte) bool {
	if !isHostCall(line) {
		return false
	}
	var call struct {
		Call  string          `json:"call"`
		ID    json.RawMessage `json:"id"`
		Token string          `json:"token"`
		Args  json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(line, &call); err != nil || call.Token != c.token || len(call.ID) == 0 {
		return true // not this step's, or not answerable: ignore it
	}
	if hostcall.Quick(call.Call) {
		c.answer(call.ID, hostcall.Serve(c.ctx, c.host, call.Call, call.Args))
		return true
	}
	c.running.Add(1)
	go func() {
		defer c.running.Done()
		c.answer(call.ID, hostcall.Serve(c.ctx, c.host, call.Call, call.Args))
	}()
	return true
}

func (c *callServer) answer(id json.RawMessage, result map[string]any) {
	result["reply_to"] = id
	line, err := marshalLine(result)
	if err != nil {
		ans := hostcall.ErrorAnswer("answer", err)
		ans["reply_to"] = id
		line, _ = marshalLine(ans)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.out.push(line)
	}
}

// stop ends the step's calls: calls still running are cancelled and no
// answer is written from now on. It reports false if they did not end
// within wait.
func (c *callServer) stop(wait time.Duration) bool {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	finished := make(chan struct{})
	go func() { c.running.Wait(); close(finished) }()
	select {
	case <-finished:
		return true
	case <-time.After(wait):
		return false
	}
}

// outbox is the queue of lines for a worker's fd 3 (requests and answers
// to host calls), written in order by one goroutine. Pushing never blocks,
// so the goroutine reading the worker's messages never waits on the
// worker reading ours: a step that sends many calls without reading the
// answers cannot deadlock the two.
type outbox struct {
	mu     sync.Mutex
	ready  *sync.Cond
	queue  []*outLine
	closed bool
}

// outLine is one line waiting to be written.
type outLine struct {
	data []byte
	done chan struct{} // closed once written (or given up)
	err  error         // set before done is closed
}

// failed reports whether the line is known not to have been written.
func (l *outLine) failed() bool {
	select {
	case <-l.done:
		return l.err != nil
	default:
		return false
	}
}

func newOutbox() *outbox {
	o := &outbox{}
	o.ready = sync.NewCond(&o.mu)
	return o
}

func (o *outbox) push(data []byte) *outLine {
	l := &outLine{data: data, done: make(chan struct{})}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		l.err = ErrClosed
		close(l.done)
		return l
	}
	o.queue = append(o.queue, l)
	o.ready.Signal()
	return l
}

// drain writes queued lines to f until the outbox is closed.
func (o *outbox) drain(f *os.File) {
	for {
		o.mu.Lock()
		for len(o.queue) == 0 && !o.closed {
			o.ready.Wait()
		}
		if o.closed {
			rest := o.queue
			o.queue = nil
			o.mu.Unlock()
			for _, l := range rest {
				l.err = ErrClosed
				close(l.done)
			}
			return
		}
		l := o.queue[0]
		o.queue[0] = nil
		o.queue = o.queue[1:]
		o.mu.Unlock()
		_, l.err = f.Write(l.data)
		close(l.done)
	}
}

// close stops drain; lines not yet written are dropped.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.ready.Broadcast()
	o.mu.Unlock()
}
