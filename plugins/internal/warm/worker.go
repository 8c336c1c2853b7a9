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
// Workers run one step at a time and belong to one pool key (tenant and
// grant), see Pool.
package warm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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

	toWorker  *os.File    // our end of the worker's fd 3 (written only by the outbox)
	outbox    *outbox     // lines waiting to be written to fd 3
	replies   chan []byte // lines from the worker's fd 4
	fromPipes []*os.File  // our read ends of fd 1, fd 2 and fd 4

	exited     chan struct{} // closed once the process has been reaped
	exitReason string        // set before exited is closed

	readers sync.WaitGroup // stdout and stderr readers

	mu      sync.Mutex
	current *stepOutput  // the step whose output the readers deliver, or nil
	startup bytes.Buffer // stderr printed before the worker was ready

	// Pool bookkeeping (guarded by the pool's lock).
	used      bool        // has run at least one step
	broken    atomic.Bool // must not run another step
	idleSince time.Time   // when it was last returned to the pool
}

// stepOutput routes one step's stdout and stderr lines.
type stepOutput struct {
	sentinel   string
	log        func(stream, line string)
	stdout     *proc.Capture // nil unless the runner parses stdout
	stdoutDone chan struct{}
	stderrDone chan struct{}
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
		replies:   make(chan []byte, 1),
		fromPipes: []*os.File{outR, errR, repR},
		exited:    make(chan struct{}),
	}
	info.Purpose = proc.PurposeWorker
	w.info = info
	cmd.Dir = info.Workdir
	w.release, err = proc.Start(spawn, cmd, info)
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
		if !bytes.Contains(line, []byte(`"ready"`)) {
			return fmt.Errorf("%s worker: unexpected first message %q", w.runner, line)
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
	proc.ReadLines(r, func(line string, complete bool) {
		if complete {
			w.replies <- []byte(line)
		}
	})
}

func (w *Worker) readStream(r io.Reader, stream string) {
	defer w.readers.Done()
	proc.ReadLines(r, func(line string, complete bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		out := w.current
		if out == nil {
			if stream == "stderr" && w.startup.Len() < 64<<10 {
				w.startup.WriteString(line + "\n")
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
		if i := strings.Index(line, out.sentinel); i >= 0 {
			// The step's last line may have had no newline: the sentinel
			// then shares its line.
			if i > 0 {
				out.deliver(stream, line[:i], false)
			}
			close(done)
			return
		}
		out.deliver(stream, line, complete)
	})
}

func (o *stepOutput) deliver(stream, line string, complete bool) {
	if stream == "stdout" && o.stdout != nil {
		o.stdout.Add(line, complete)
	}
	o.log(stream, line)
}

// Exchange is one step on this worker. request is the runner's request
// object; Exchange adds the "sentinel" and "host_token" fields. host gets
// every line the step prints and serves its host API calls (nil: lines go
// nowhere and calls are refused). If captureStdout is set, stdout is also
// returned whole.
//
// The error is a *api.RunnerExitedError if the worker died, or wraps
// ctx.Err() if ctx ended first (the worker is then killed). Either way the
// worker must not be reused, and Broken reports true.
func (w *Worker) Exchange(ctx context.Context, request map[string]any, host api.Host, captureStdout bool) (reply []byte, stdout string, err error) {
	if host == nil {
		host = api.NopHost{}
	}
	out := &stepOutput{
		sentinel:   "\x1ehwe-step-end-" + randomHex(12) + "\x1e",
		log:        host.Log,
		stdoutDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	if captureStdout {
		out.stdout = &proc.Capture{}
	}
	calls := newCallServer(ctx, w.outbox, host, randomHex(12))
	request["sentinel"] = out.sentinel
	request["host_token"] = calls.token
	line, err := marshalLine(request)
	if err != nil {
		return nil, "", err
	}

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

	reply, stopped := w.awaitReply(ctx, calls)
	// No answer is written after the step's reply: the next line the
	// worker reads must be its next request.
	if !calls.stop(drainTimeout) {
		w.broken.Store(true)
	}
	if stopped != nil {
		return nil, "", stopped
	}
	if reply == nil {
		// The reply channel closed or the process ended mid-step.
		w.broken.Store(true)
		w.Kill()
		<-w.exited
		return nil, "", &api.RunnerExitedError{Runner: w.runner, Reason: w.exitReason}
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
	w.mu.Lock()
	if out.stdout != nil {
		stdout = out.stdout.String()
	}
	w.mu.Unlock()
	return reply, stdout, nil
}

// awaitReply serves the step's host API calls until its reply arrives. It
// returns a nil reply if the worker died first, and an error if ctx ended
// first (the worker is then killed).
func (w *Worker) awaitReply(ctx context.Context, calls *callServer) (reply []byte, stopped error) {
	for {
		select {
		case line, ok := <-w.replies:
			if !ok {
				return nil, nil
			}
			if calls.handle(line) {
				continue
			}
			return line, nil
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
					if isHostCall(line) {
						continue // too late to answer
					}
					return line, nil
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
