package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/hwe-run/hwe/host/api"
)

// MaxLineBytes is the longest line a runner passes to a step's log (the
// host's own cap). Longer lines are cut while they are read: a step that
// prints 100 MB without a newline costs the runner 64 KiB, not 100 MB.
const MaxLineBytes = 64 << 10

// TruncatedMark ends a log line that was cut at MaxLineBytes (the host
// writes the same mark when it cuts a line itself).
const TruncatedMark = " [line truncated]"

// DefaultMaxOutput is the largest step output a runner accepts when the
// step's grant sets no max_output.
const DefaultMaxOutput = 16 << 20

// MaxOutput is the step output limit of a grant: its max_output, or
// DefaultMaxOutput.
func MaxOutput(g api.Grant) int64 {
	if g.MaxOutput > 0 {
		return g.MaxOutput
	}
	return DefaultMaxOutput
}

// OutputLimitError is the error of a step whose output is larger than its
// limit. size is what the runner knows of the output's size: exact, or
// (with atLeast) a lower bound, for output it stopped reading.
func OutputLimitError(size, limit int64, atLeast bool) *api.LimitError {
	if atLeast {
		return &api.LimitError{Limit: "output", Detail: fmt.Sprintf("output of more than %d bytes exceeds %d bytes", size, limit)}
	}
	return &api.LimitError{Limit: "output", Detail: fmt.Sprintf("output of %d bytes exceeds %d bytes", size, limit)}
}

// Line is one line of a stream, as ReadLinesMax reads it.
type Line struct {
	// Text is the line without its "\n"; of a line that was cut (see
	// Dropped), only its first bytes, at most MaxLineBytes: enough for the
	// log and to see how it starts.
	Text     string
	Complete bool // it ended with "\n" (false for a stream's last bytes)
	// Dropped counts the bytes of a line longer than its limit that are not
	// in Text (0: Text is the whole line); Tail is then the line's last
	// bytes (at most TailBytes), for a reader that must know how it ended.
	Dropped int64
	Tail    string
}

// TailBytes is how much of the end of a cut line Line.Tail keeps.
const TailBytes = 64

// Cut reports whether the line was longer than the limit it was read with.
func (l Line) Cut() bool { return l.Dropped > 0 }

// Size is the line's full length in bytes, without its "\n".
func (l Line) Size() int64 { return int64(len(l.Text)) + l.Dropped }

// LogText is the line as a step's log shows it: at most MaxLineBytes, with
// TruncatedMark when it was longer.
func (l Line) LogText() string {
	if !l.Cut() && len(l.Text) <= MaxLineBytes {
		return l.Text
	}
	return cutUTF8(l.Text, MaxLineBytes) + TruncatedMark
}

// ReadLines reads r until EOF or a read error and calls fn once per line,
// without its "\n" (a trailing "\r" is kept: it is part of what was
// printed). A last line that does not end in "\n" is passed too, with
// complete=false. A line longer than MaxLineBytes is cut while it is read
// and passed as its LogText.
func ReadLines(r io.Reader, fn func(line string, complete bool)) {
	ReadLinesMax(r, nil, func(l Line) { fn(l.LogText(), l.Complete) })
}

// ReadLinesMax reads r until EOF or a read error and calls fn once per
// line. A line is kept whole if it has at most limit(start) bytes (never
// less than MaxLineBytes), where start is its beginning (its first 64 KiB,
// or all of it if shorter), so a reader may keep long lines only when they
// start the way a line it needs does; limit nil means MaxLineBytes. Of a longer line only its start and
// its tail are kept (see Line): the rest is read and dropped as it
// arrives, so no line costs more memory than its limit.
func ReadLinesMax(r io.Reader, limit func(start []byte) int, fn func(Line)) {
	if limit == nil {
		limit = func([]byte) int { return MaxLineBytes }
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var acc lineAccumulator
	for {
		chunk, err := br.ReadSlice('\n')
		complete := err == nil
		if complete {
			chunk = chunk[:len(chunk)-1]
		}
		more := errors.Is(err, bufio.ErrBufferFull) // the line goes on
		if !more && !acc.started && len(chunk) <= MaxLineBytes {
			// The usual case: a short line in one read.
			if complete || len(chunk) > 0 {
				fn(Line{Text: string(chunk), Complete: complete})
			}
		} else {
			if !acc.started {
				acc.limit = limit(chunk)
			}
			acc.add(chunk)
			if !more {
				fn(acc.line(complete))
				acc = lineAccumulator{}
			}
		}
		if err != nil && !more {
			return
		}
	}
}

// lineAccumulator gathers a line longer than one read. Its parts are kept
// as they come rather than appended to one growing buffer, so a long line
// costs its size and no garbage; past the limit only the start and the
// tail are kept.
type lineAccumulator struct {
	started bool
	limit   int
	parts   [][]byte
	size    int   // bytes in parts
	dropped int64 // bytes past the limit, not kept
	tail    tailBuffer
}

func (a *lineAccumulator) add(chunk []byte) {
	a.started = true
	if a.dropped == 0 && a.size+len(chunk) <= a.limit {
		a.parts = append(a.parts, bytes.Clone(chunk))
		a.size += len(chunk)
		return
	}
	if a.dropped == 0 {
		// Past the limit: from now on only the start and the tail count.
		for _, p := range a.parts {
			a.tail.write(p)
		}
		start := a.joined(MaxLineBytes)
		a.dropped = int64(a.size - len(start))
		keep := max(0, min(MaxLineBytes-len(start), len(chunk)))
		start = append(start, chunk[:keep]...)
		a.parts, a.size = [][]byte{start}, len(start)
		a.dropped += int64(len(chunk) - keep)
		a.tail.write(chunk)
		return
	}
	a.dropped += int64(len(chunk))
	a.tail.write(chunk)
}

// joined returns the first n bytes of the parts as one new buffer.
func (a *lineAccumulator) joined(n int) []byte {
	n = min(n, a.size)
	buf := make([]byte, 0, n)
	for _, p := range a.parts {
		buf = append(buf, p[:min(len(p), n-len(buf))]...)
		if len(buf) == n {
			break
		}
	}
	return buf
}

func (a *lineAccumulator) line(complete bool) Line {
	l := Line{Complete: complete, Dropped: a.dropped}
	if a.dropped > 0 {
		l.Tail = a.tail.String()
	}
	if buf := a.joined(a.size); len(buf) > 0 {
		// buf is this line's alone, so the text needs no copy.
		l.Text = unsafe.String(unsafe.SliceData(buf), len(buf))
	}
	return l
}

// tailBuffer keeps the last TailBytes bytes written to it.
type tailBuffer struct{ buf []byte }

func (t *tailBuffer) write(p []byte) {
	if len(p) >= TailBytes {
		t.buf = append(t.buf[:0], p[len(p)-TailBytes:]...)
		return
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - TailBytes; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

func (t *tailBuffer) reset()         { t.buf = t.buf[:0] }
func (t *tailBuffer) String() string { return string(t.buf) }

// cutUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-4 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

// Capture collects a stream's text up to a size limit, for runners whose
// result is parsed from what the step printed. What is kept is a prefix of
// whole lines: the first line that does not fit (or that was cut while it
// was read) ends the collection, and it and every line after it go to
// Overflow instead. Short lines are gathered in blocks and long ones kept
// as they come (no copy) until String joins them, so the capture costs
// about what it holds.
type Capture struct {
	Limit     int // bytes kept; 0 = DefaultCaptureLimit
	parts     []string
	block     []byte // short lines not yet in parts
	size      int
	Truncated bool

	// Overflow, if set, gets every line that was not kept, so a runner can
	// still find the line its output is in. Its Text may itself be cut
	// (see Line).
	Overflow func(Line)

	// MayBeOutput, if set, tells from a line's start whether the runner
	// could take its output from it (see LineLimit).
	MayBeOutput func(start []byte) bool
}

// DefaultCaptureLimit bounds how much of a step's stdout or stderr is kept
// for parsing its result when Limit is 0 (everything still goes to the
// step's log).
const DefaultCaptureLimit = DefaultMaxOutput + 1

// Add appends text (a line plus, if complete, its newline).
func (c *Capture) Add(line string, complete bool) {
	c.AddLine(Line{Text: line, Complete: complete})
}

// AddLine appends a line read by ReadLinesMax.
func (c *Capture) AddLine(l Line) {
	if !c.Truncated {
		n := len(l.Text)
		if l.Complete {
			n++
		}
		if !l.Cut() && c.size+n <= c.limit() {
			c.keep(l.Text, l.Complete)
			c.size += n
			return
		}
		c.Truncated = true
	}
	if c.Overflow != nil {
		c.Overflow(l)
	}
}

// captureBlock is the size of the blocks short lines are gathered in.
const captureBlock = 64 << 10

func (c *Capture) keep(text string, complete bool) {
	if len(text) >= captureBlock/4 {
		// A long line is kept as it is: ReadLinesMax made it for us alone.
		c.flush()
		c.parts = append(c.parts, text)
		if complete {
			c.block = append(c.block, '\n')
		}
		return
	}
	if len(c.block)+len(text)+1 > cap(c.block) {
		c.flush()
		if cap(c.block) == 0 {
			c.block = make([]byte, 0, captureBlock)
		}
	}
	c.block = append(c.block, text...)
	if complete {
		c.block = append(c.block, '\n')
	}
}

// flush moves the block of short lines into parts.
func (c *Capture) flush() {
	if len(c.block) > 0 {
		c.parts = append(c.parts, string(c.block))
	}
	c.block = c.block[:0]
}

func (c *Capture) limit() int {
	if c.Limit <= 0 {
		return DefaultCaptureLimit
	}
	return c.Limit
}

// LineLimit is how much of a line that starts with start a reader should
// keep for this capture (a limit for ReadLinesMax): what the capture still
// has room for, or, when MayBeOutput says the line may hold the output, as
// much as the capture holds in all. Past that the line is of use to nobody
// but the log.
func (c *Capture) LineLimit(start []byte) int {
	room := 0
	if !c.Truncated {
		room = c.limit() - c.size
	}
	if c.MayBeOutput != nil && c.MayBeOutput(start) {
		room = c.limit()
	}
	return max(room, MaxLineBytes)
}

// FirstNonSpace is the first byte of b that is not white space (0 if none).
func FirstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n', '\v', '\f':
		default:
			return c
		}
	}
	return 0
}

// Len is how many bytes are kept.
func (c *Capture) Len() int { return c.size }

// String returns the collected text.
func (c *Capture) String() string {
	var b strings.Builder
	b.Grow(c.size)
	for _, p := range c.parts {
		b.WriteString(p)
	}
	b.Write(c.block)
	return b.String()
}

// trimmedEnds returns the first and last bytes of a line that are not
// white space, looking at the kept text and, for a cut line, its tail.
func (l Line) trimmedEnds() (first, last byte) {
	head := strings.TrimLeft(l.Text, " \t\r\n\v\f")
	end := l.Text
	if l.Cut() {
		end = l.Tail
	}
	end = strings.TrimRight(end, " \t\r\n\v\f")
	if head != "" {
		first = head[0]
	}
	if end != "" {
		last = end[len(end)-1]
	}
	return first, last
}

// LooksLikeObject reports whether the line, trimmed, starts with "{" and
// ends with "}" (for a cut line, judged by its kept start and its tail).
func (l Line) LooksLikeObject() bool {
	first, last := l.trimmedEnds()
	return first == '{' && last == '}'
}
