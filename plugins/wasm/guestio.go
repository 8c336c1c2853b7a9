package wasm

import (
	"bytes"
	"context"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// maxLineBytes is where a guest's unterminated output line is cut, so a
// guest writing without newlines cannot grow the buffer without bound.
const maxLineBytes = 64 << 10

// lineWriter turns a guest's stdout or stderr (WASI fd_write) into lines on
// the step's host log. One instance owns one lineWriter per stream; the
// instance is used by one step at a time, which sets host before calling
// and calls finish after, so output never reaches another step's log.
type lineWriter struct {
	stream string
	host   api.Host // nil between steps: output is dropped
	buf    []byte
	// watch, for stderr, sees every line, so a guest that reports running
	// out of memory there and then traps fails with a memory error.
	watch *memoryWatch
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) >= maxLineBytes {
				w.emit()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) emit() {
	if w.watch != nil {
		w.watch.noteGuestOutput(w.buf)
	}
	if w.host != nil {
		w.host.Log(w.stream, string(w.buf))
	}
	w.buf = w.buf[:0]
}

// start directs output to host until finish.
func (w *lineWriter) start(host api.Host) {
	w.host = host
	w.buf = w.buf[:0]
}

// finish logs a final unterminated line and detaches the host.
func (w *lineWriter) finish() {
	if len(w.buf) > 0 {
		w.emit()
	}
	w.host = nil
}

// guestSleeper serves a guest's sleeps (WASI poll_oneoff on a clock). A
// plain time.Sleep would keep a guest that asks for an hour asleep past its
// step's timeout, since wazero stops guests only while they run code; this
// sleep ends when the call's context does, and the guest is then stopped.
// Like lineWriter it is bound to one call at a time.
type guestSleeper struct {
	ctx context.Context // the current call's; nil between calls
}

func (s *guestSleeper) sleep(ns int64) {
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
