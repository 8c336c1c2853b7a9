package wasm

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

const pageSize = 64 << 10 // bytes in a WebAssembly memory page

// pagesFor returns the number of whole pages that fit in limit bytes
// (at least 1, at most the 4 GiB of a 32-bit memory).
func pagesFor(limit int64) uint32 {
	pages := limit / pageSize
	switch {
	case pages < 1:
		return 1
	case pages > 65536:
		return 65536
	}
	return uint32(pages)
}

// memoryWatch enforces the memory cap of one instance and notices when the
// guest hits it. It backs every linear memory of the instance (the guest's
// and, for native modules, the Extism kernel's, which holds input and
// output), and the cap bounds their sum. A memory.grow past the cap is
// refused (the guest sees -1, as at any limit) and recorded, so a guest that
// then fails is reported as out of memory rather than as a mysterious trap.
//
// A guest's own allocator may give up before the cap is reached: Go's
// runtime refuses a block larger than a 32-bit memory without asking for a
// single page, prints "fatal error: out of memory" and traps. The watch
// also keeps the first such report of a call (from the guest's stderr, its
// Extism log or the error it set before trapping), so that failure is
// reported as out of memory too rather than as "unreachable".
//
// The cap is enforced here rather than with wazero's runtime-wide page
// limit because wazero refuses grows past its limit before asking the
// allocator (a failed grow would go unnoticed), because the limit would be
// per memory rather than per instance, and because a per-instance cap lets
// one compiled module serve steps with different caps.
type memoryWatch struct {
	capBytes uint64
	used     atomic.Uint64 // bytes of all the instance's memories
	hit      atomic.Bool
	report   atomic.Pointer[string] // the guest's own out-of-memory report
}

func newMemoryWatch(pages uint32) *memoryWatch {
	return &memoryWatch{capBytes: uint64(pages) * pageSize}
}

// context returns ctx carrying the allocator; wazero reads it when a module
// is instantiated.
func (w *memoryWatch) context(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(
		func(_, _ uint64) experimental.LinearMemory { return &watchedMemory{watch: w} }))
}

func (w *memoryWatch) exceeded() bool { return w.hit.Load() }

// reset forgets a hit or report from an earlier call of a reused instance.
func (w *memoryWatch) reset() {
	w.hit.Store(false)
	w.report.Store(nil)
}

// noteGuestOutput looks at one line the guest wrote to stderr or logged,
// and keeps it if it is the first of the call to say the guest ran out of
// memory.
func (w *memoryWatch) noteGuestOutput(line []byte) {
	if w.report.Load() != nil || !saysOutOfMemory(line) {
		return
	}
	s := string(bytes.TrimSpace(line[:min(len(line), maxReportBytes)]))
	w.report.CompareAndSwap(nil, &s)
}

// guestReport returns the guest's out-of-memory report of this call, or "".
func (w *memoryWatch) guestReport() string {
	if p := w.report.Load(); p != nil {
		return *p
	}
	return ""
}

// maxReportBytes is how much of a line is searched and quoted: the reports
// looked for are short, and a guest flooding stderr with long lines costs
// no more than this per line.
const maxReportBytes = 256

// saysOutOfMemory reports whether a guest's line is its language runtime
// saying it ran out of memory: Go's "fatal error: out of memory" (and the
// "runtime: out of memory: cannot allocate …" before it), C and most
// others' "out of memory", Rust's "memory allocation of N bytes failed".
func saysOutOfMemory(line []byte) bool {
	var buf [maxReportBytes]byte
	n := copy(buf[:], line)
	lower := buf[:n]
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + ('a' - 'A')
		}
	}
	if bytes.Contains(lower, []byte("out of memory")) {
		return true
	}
	i := bytes.Index(lower, []byte("memory allocation of "))
	return i >= 0 && bytes.Contains(lower[i:], []byte(" failed"))
}

type watchedMemory struct {
	watch *memoryWatch
	buf   []byte
}

func (m *watchedMemory) Reallocate(size uint64) []byte {
	w := m.watch
	cur := uint64(len(m.buf))
	if size <= cur {
		m.buf = m.buf[:size]
		return m.buf
	}
	grow := size - cur
	if w.used.Load()+grow > w.capBytes {
		w.hit.Store(true)
		if cur != 0 {
			return nil
		}
		// An initial memory past the cap: wazero cannot fail an
		// instantiation from here and needs the buffer. hwe checks a
		// guest's initial memory against the cap before instantiating it,
		// so this is at most the cap plus Extism's kernel (1 MiB); the
		// instance is refused right after instantiation.
	}
	w.used.Add(grow)
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow with headroom so a guest growing page by page does not copy its
	// whole memory each time, but never reserve past what the cap allows.
	left := w.capBytes - min(w.used.Load(), w.capBytes)
	room := max(size, min(uint64(cap(m.buf))*5/4, size+left))
	buf := make([]byte, size, room)
	copy(buf, m.buf)
	m.buf = buf
	return m.buf
}

func (m *watchedMemory) Free() {
	if n := uint64(len(m.buf)); n > 0 {
		m.watch.used.Add(^(n - 1)) // subtracts n
	}
	m.buf = nil
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
