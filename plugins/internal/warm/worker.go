// Package warm keeps interpreter worker processes ready so a step costs a
// message over a pipe instead of an interpreter start.
//
// A worker is an interpreter running a small loop script. It talks to the
// host over two extra file descriptors, so the step's own stdout and stderr
// stay free for what the step prints:
//
//	fd 3  host → worker   one JSON request per line; during a step also
//	                      the answers to its host API calls
//	fd 4  worker → host   one JSON message per line: first {"ready":...},
//	                      then one reply per request; during a step also
//	                      its host API calls
//	fd 1  the step's stdout   (streamed to the step's log)
//	fd 2  the step's stderr   (streamed to the step's log)
//
// Host API calls (the `hwe` module of Python and JavaScript steps) travel
// on the same pipes while a step runs. The request carries a random
// "host_token"; a call is
//
//	{"call": "kv_get", "id": 7, "token": "<host_token>", "args": {"key": "k"}}
//
// and its answer, on fd 3, is the hostcall answer plus "reply_to":
//
//	{"found": true, "reply_to": 7, "value": "v"}
//
// Calls with another step's token are ignored, answers are never written
// after the step's reply, and log and progress calls are served in the
// order they arrive (see hostcall.Quick), so a step's log lines keep their
// order. Workers must ignore answers nobody waits for.
//
// After each step the worker prints a per-step random sentinel on fd 1 and
// fd 2 before it replies; the host waits for both sentinels, so every line a
// step printed is attributed to that step and no other.
//
// Every request carries "max_output", the step's output limit in bytes: a
// worker refuses a larger result itself (replying {"ok": false, "limit":
// "output", "size": N}) instead of sending it. The host does not rely on
// that: it keeps no line of fd 4 longer than a few times the limit, and a
// worker that sends one is ended and its step fails with an output limit.
//
// After each step, before its reply, a worker ends every process the step
// left behind. If something is left that it could not end, it sends
// {"retire": "<why>"} first: the host then ends the worker after the step
// instead of reusing it.
//
// Workers run one step at a time and belong to one pool key (tenant and
// grant), see Pool.
package warm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/proc"
)

// drainTimeout bounds how long the host waits, after a reply, for the
// sentinels that close a step's stdout and stderr. A worker that misses it
// (its step closed or replaced fd 1) is not reused.
const drainTimeout = 2 * time.Second

// Worker is one running interpreter. Its methods are not safe for
// concurrent use: the pool hands a worker to one step at a time.
type Worker struct {
	runner  string
	cmd     *exec.Cmd
	info    proc.SpawnInfo // how it was started (Workdir: its private folder, removed when it ends)
	release func()         // the SpawnFunc's clean-up, after the process is reaped

	toWorker  *os.File       // our end of the worker's fd 3 (written only by the outbox)
	outbox    *outbox        // lines waiting to be written to fd 3
	replies   chan replyLine // lines from the worker's fd 4
	fromPipes []*os.File     // our read ends of fd 1, fd 2 and fd 4

	exited     chan struct{} // closed once the process has been reaped
	exitReason string        // set before exited is closed
	exitErr    error         // the wait error, explained by the SpawnFunc (a limit it recognised); set before exited is closed
	explain    func(waitErr error) error

	replyLimit atomic.Int64 // longest line kept from fd 4, set for each step

	readers sync.WaitGroup // stdout and stderr readers

	mu      sync.Mutex
	current *stepOutput  // the step whose output the readers deliver, or nil
	startup bytes.Buffer // stderr printed before the worker was ready

	// Pool bookkeeping (guarded by the pool's lock).
	used      bool        // has run at least one step
	broken    atomic.Bool // must not run another step
	idleSince time.Time   // when it was last returned to the pool
}

// replyLine is one line from fd 4; dropped > 0 means it was longer than
// the reply limit and only its start is in data.
type replyLine struct {
	data    []byte
	dropped int64
}

// stepOutput routes one step's stdout and stderr lines.
type stepOutput struct {
	sentinel   string
	log        func(stream, line string)
	stdout     *proc.Capture // nil unless the runner parses stdout
	stdoutDone chan struct{}
	stderrDone chan struct{}
}

// minReplyLimit is the least a line from fd 4 may hold, whatever the output
// limit: host calls (a KV value of up to 1 MiB, an HTTP body) travel there
// too.
const minReplyLimit = 8 << 20

// replyLimitFor is the longest fd 4 line kept for a step whose output may
// have maxOutput bytes: its reply holds the output encoded as JSON inside a
// JSON string, which may take a few times its size.
func replyLimitFor(maxOutput int64) int64 {
	return max(3*maxOutput+1<<20, minReplyLimit)
}

// Start launches a worker from cmd (Path, Args and Env set by the caller)
// and waits until it reports ready or ctx ends. info.Workdir is the worker's
// private folder: it becomes cmd.Dir and is removed when the worker ends.
func Start(ctx context.Context, runner string, spawn proc.SpawnFunc, cmd *exec.Cmd, info proc.SpawnInfo) (*Worker, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		closeAll(reqR, reqW)
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(reqR, reqW, repR, repW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(reqR, reqW, repR, repW, outR, outW)
		return nil, err
	}
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{reqR, repW} // fd 3, fd 4
	w := &Worker{
		runner:    runner,
		cmd:       cmd,
		info:      info,
		toWorker:  reqW,
		outbox:    newOutbox(),
		replies:   make(chan replyLine, 1),
		fromPipes: []*os.File{outR, errR, repR},
		exited:    make(chan struct{}),
	}
	info.Purpose = proc.PurposeWorker
	w.info = info
	cmd.Dir = info.Workdir
	w.replyLimit.Store(replyLimitFor(proc.DefaultMaxOutput))
	w.release, w.explain, err = proc.Start(spawn, cmd, info)
	closeAll(reqR, repW, outW, errW) // the child's ends
	if err != nil {
		closeAll(reqW, repR, outR, errR)
		return nil, fmt.Errorf("start %s worker: %w", runner, err)
	}

	w.readers.Add(2)
	go w.readStream(outR, "stdout")
	go w.readStream(errR, "stderr")
	go w.readReplies(repR)
	go w.outbox.drain(reqW)
	go w.wait()

	if err := w.awaitReady(ctx); err != nil {
		w.Kill()
		return nil, err
	}
	return w, nil
}

func (w *Worker) awaitReady(ctx context.Context) error {
	select {
	case line, ok := <-w.replies:
		if !ok {
			<-w.exited
			return w.startFailure()
		}
		if line.dropped > 0 || !bytes.Contains(line.data, []byte(`"ready"`)) {
			return fmt.Errorf("%s worker: unexpected first message %.200q", w.runner, line.data)
		}
		return nil
	case <-w.exited:
		return w.startFailure()
	case <-ctx.Done():
		return fmt.Errorf("%s worker did not start: %w", w.runner, ctx.Err())
	}
}

func (w *Worker) startFailure() error {
	w.readers.Wait()
	w.mu.Lock()
	msg := strings.TrimSpace(w.startup.String())
	w.mu.Unlock()
	if msg != "" {
		return fmt.Errorf("%s worker exited while starting (%s): %s", w.runner, w.exitReason, msg)
	}
	return fmt.Errorf("%s worker exited while starting: %s", w.runner, w.exitReason)
}

// wait reaps the process, then kills whatever it left in its process group
// and lets the readers finish.
func (w *Worker) wait() {
	err := w.cmd.Wait()
	w.exitReason = proc.ExitReason(w.cmd.ProcessState, err)
	w.exitErr = w.explain(err) // before release: a sandbox explains from what release removes
	proc.KillGroup(w.cmd)
	w.release()
	if w.info.Workdir != "" {
		_ = os.RemoveAll(w.info.Workdir)
	}
	close(w.exited)
	// A process that left the group may still hold the pipes open; do not
	// let it keep our readers (and this worker's memory) alive.
	time.AfterFunc(time.Second, func() { closeAll(w.fromPipes...) })
	w.outbox.close()
	closeAll(w.toWorker)
}

func (w *Worker) readReplies(r io.Reader) {
	defer close(w.replies)
	limit := func([]byte) int { return int(w.replyLimit.Load()) }
	proc.ReadLinesMax(r, limit, func(l proc.Line) {
		if l.Complete || l.Cut() {
			w.replies <- replyLine{data: []byte(l.Text), dropped: l.Dropped}
		}
	})
}

func (w *Worker) readStream(r io.Reader, stream string) {
	defer w.readers.Done()
	var limit func([]byte) int // nil: a log line's
	if stream == "stdout" {
		// More than a log line if the step's runner parses its stdout.
		limit = func(start []byte) int {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.current == nil || w.current.stdout == nil {
				return proc.MaxLineBytes
			}
			return w.current.stdout.LineLimit(start)
		}
	}
	proc.ReadLinesMax(r, limit, func(l proc.Line) {
		w.mu.Lock()
		defer w.mu.Unlock()
		out := w.current
		if out == nil {
			if stream == "stderr" && w.startup.Len() < 64<<10 {
				w.startup.WriteString(l.LogText() + "\n")
			}
			return // printed between steps (a leftover thread or timer): nobody's
		}
		done := out.stdoutDone
		if stream == "stderr" {
			done = out.stderrDone
		}
		if isClosed(done) {
			return
		}
		if i := strings.Index(l.Text, out.sentinel); i >= 0 {
			// The step's last line may have had no newline: the sentinel
			// then shares its line.
			if i > 0 {
				out.deliver(stream, proc.Line{Text: l.Text[:i]})
			}
			close(done)
			return
		}
		if l.Cut() && strings.HasSuffix(l.Tail, out.sentinel) {
			// The same, for a last line too long to keep: what was kept
			// is the step's, the sentinel is in the part dropped.
			text, dropped := l.Text, l.Dropped-int64(len(out.sentinel))
			if dropped < 0 { // the sentinel began in the part kept
				text, dropped = text[:len(text)+int(dropped)], 0
			}
			out.deliver(stream, proc.Line{Text: text, Dropped: dropped})
			close(done)
			return
		}
		out.deliver(stream, l)
	})
}

func (o *stepOutput) deliver(stream string, l proc.Line) {
	if stream == "stdout" && o.stdout != nil {
		o.stdout.AddLine(l)
	}
	o.log(stream, l.LogText())
}

// Exchange is one step on this worker. request is the runner's request
// object; Exchange adds the "sentinel", "host_token" and "max_output"
// fields. host gets every line the step prints and serves its host API
// calls (nil: lines go nowhere and calls are refused). stdout, if not nil,
// also collects what the step prints on stdout, for runners that parse
// their output from it. maxOutput is the step's output limit in bytes.
//
// The error is an *api.LimitError if the step went over a limit the worker
// or its sandbox enforces (the worker was killed for its memory or CPU
// time, or it sent a reply far larger than maxOutput), a
// *api.RunnerExitedError if the worker died otherwise, or wraps ctx.Err()
// if ctx ended first (the worker is then killed). In all these cases the
// worker must not be reused, and Broken reports true.
func (w *Worker) Exchange(ctx context.Context, request map[string]any, host api.Host, stdout *proc.Capture, maxOutput int64) (reply []byte, err error) {
	if host == nil {
		host = api.NopHost{}
	}
	if maxOutput <= 0 {
		maxOutput = proc.DefaultMaxOutput
	}
	out := &stepOutput{
		sentinel:   "\x1ehwe-step-end-" + randomHex(12) + "\x1e",
		log:        host.Log,
		stdout:     stdout,
		stdoutDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	calls := newCallServer(ctx, w.outbox, host, randomHex(12))
	request["sentinel"] = out.sentinel
	request["host_token"] = calls.token
	request["max_output"] = maxOutput
	line, err := marshalLine(request)
	if err != nil {
		return nil, err
	}
	w.replyLimit.Store(replyLimitFor(maxOutput))

	w.mu.Lock()
	w.current = out
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.current = nil
		w.mu.Unlock()
	}()

	// The outbox writes in the background: a worker that is not reading
	// must not stall a cancelled step.
	sent := w.outbox.push(line)

	rl, stopped := w.awaitReply(ctx, calls, host)
	// No answer is written after the step's reply: the next line the
	// worker reads must be its next request.
	if !calls.stop(drainTimeout) {
		w.broken.Store(true)
	}
	if stopped != nil {
		return nil, stopped
	}
	if rl == nil {
		// The reply channel closed or the process ended mid-step.
		w.broken.Store(true)
		w.Kill()
		<-w.exited
		var limit *api.LimitError
		if errors.As(w.exitErr, &limit) {
			return nil, limit
		}
		return nil, &api.RunnerExitedError{Runner: w.runner, Reason: w.exitReason}
	}
	if rl.dropped > 0 {
		// Far more than any output the step may return (or a host call
		// larger than any the host accepts): the worker is not keeping to
		// the protocol, or the step tampered with it. Ending it stops the
		// flood at once.
		w.Kill()
		return nil, proc.OutputLimitError(int64(len(rl.data))+rl.dropped, maxOutput, true)
	}

	// The reply is in; collect the step's last lines.
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for _, done := range []chan struct{}{out.stdoutDone, out.stderrDone} {
		select {
		case <-done:
		case <-w.exited:
			w.broken.Store(true)
		case <-timer.C:
			w.broken.Store(true)
		case <-ctx.Done():
			w.broken.Store(true)
		}
		if w.broken.Load() {
			break
		}
	}
	if sent.failed() {
		w.broken.Store(true)
	}
	// Once Exchange has returned (w.current is reset first, under the
	// lock), the readers no longer touch stdout: the runner may read it.
	return rl.data, nil
}

// awaitReply serves the step's host API calls until its reply arrives. It
// returns a nil reply if the worker died first, and an error if ctx ended
// first (the worker is then killed). A worker's request to be retired
// marks it broken and goes to the step's log.
func (w *Worker) awaitReply(ctx context.Context, calls *callServer, host api.Host) (reply *replyLine, stopped error) {
	for {
		select {
		case line, ok := <-w.replies:
			if !ok {
				return nil, nil
			}
			if line.dropped == 0 && calls.handle(line.data) {
				continue
			}
			if line.dropped == 0 && w.retireRequest(line.data, host) {
				continue
			}
			return &line, nil
		case <-w.exited:
			// It may have replied just before it ended: take the reply if
			// the reader has it (the pipe reaches EOF once the group is gone).
			deadline := time.After(time.Second)
			for {
				select {
				case line, ok := <-w.replies:
					if !ok {
						return nil, nil
					}
					if line.dropped == 0 && (isHostCall(line.data) || w.retireRequest(line.data, host)) {
						continue // too late to answer
					}
					return &line, nil
				case <-deadline:
					return nil, nil
				}
			}
		case <-ctx.Done():
			w.Kill()
			// SIGKILL ends the group at once; wait (briefly) so that
			// everything the step started is gone when Run returns.
			select {
			case <-w.exited:
			case <-time.After(time.Second):
			}
			return nil, fmt.Errorf("%s step stopped: %w", w.runner, ctx.Err())
		}
	}
}

// retirePrefix starts a worker's request to be retired after this step.
var retirePrefix = []byte(`{"retire":`)

// retireRequest handles line if it is a request to be retired and reports
// whether it was one.
func (w *Worker) retireRequest(line []byte, host api.Host) bool {
	if !bytes.HasPrefix(line, retirePrefix) {
		return false
	}
	w.broken.Store(true)
	var msg struct {
		Retire string `json:"retire"`
	}
	_ = json.Unmarshal(line, &msg)
	host.Log("log", fmt.Sprintf("hwe: the %s worker is not reused after this step: %.300s", w.runner, msg.Retire))
	return true
}

// Broken reports whether the worker must be discarded.
func (w *Worker) Broken() bool {
	if w.broken.Load() {
		return true
	}
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

// Pid is the worker's process id (tests kill workers by it).
func (w *Worker) Pid() int { return w.cmd.Process.Pid }

// Kill ends the worker and its whole process group.
func (w *Worker) Kill() {
	w.broken.Store(true)
	proc.KillGroup(w.cmd)
}

// Exited is closed once the worker process is gone.
func (w *Worker) Exited() <-chan struct{} { return w.exited }

func marshalLine(v any) ([]byte, error) {
	b, err := api.MarshalCanonical(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}

// ErrClosed is returned by a pool that has been closed.
var ErrClosed = errors.New("runner closed")
