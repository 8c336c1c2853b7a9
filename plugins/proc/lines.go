package proc

import (
	"bufio"
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
	Text     string // the line without its "\n": whole, or its first bytes if it was cut
	Complete bool   // it ended with "\n" (false for a stream's last bytes)
	// Dropped counts the bytes past the limit that were read and thrown
	// away (0: Text is the whole line); Tail is then the line's last bytes
	// (at most TailBytes), for a reader that must know how the line ended.
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
// line. Of a line longer than limit() bytes (nil: MaxLineBytes) only the
// first limit() bytes are kept; the rest is read and dropped as it arrives,
// so no line ever costs more memory than the limit. limit is asked again as
// a line grows, so it may change between lines.
func ReadLinesMax(r io.Reader, limit func() int, fn func(Line)) {
	if limit == nil {
		limit = func() int { return MaxLineBytes }
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte // the kept part of a line longer than one chunk
	var dropped int64
	var tail tailBuffer
	for {
		chunk, err := br.ReadSlice('\n')
		complete := err == nil
		if complete {
			chunk = chunk[:len(chunk)-1]
		}
		more := errors.Is(err, bufio.ErrBufferFull) // the line goes on
		if !more && line == nil && dropped == 0 && len(chunk) <= limit() {
			// The usual case: a whole line in one chunk.
			if complete || len(chunk) > 0 {
				fn(Line{Text: string(chunk), Complete: complete})
			}
			if err != nil {
				return
			}
			continue
		}
		if room := limit() - len(line); dropped == 0 && room >= len(chunk) {
			line = append(line, chunk...)
		} else {
			keep := 0
			if dropped == 0 {
				keep = max(0, min(room, len(chunk)))
				line = append(line, chunk[:keep]...)
				tail.write(line) // the tail starts at the line's kept end
			}
			dropped += int64(len(chunk) - keep)
			tail.write(chunk[keep:])
		}
		if more {
			continue
		}
		if complete || len(line) > 0 || dropped > 0 {
			l := Line{Complete: complete, Dropped: dropped}
			if len(line) > 0 {
				// The buffer is this line's alone (a new one is made for
				// the next), so the text needs no copy.
				l.Text = unsafe.String(unsafe.SliceData(line), len(line))
			}
			if dropped > 0 {
				l.Tail = tail.String()
			}
			fn(l)
		}
		if err != nil {
			return
		}
		line, dropped = nil, 0
		tail.reset()
	}
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
// Overflow instead.
type Capture struct {
	Limit     int // bytes kept; 0 = DefaultCaptureLimit
	buf       strings.Builder
	Truncated bool

	// Overflow, if set, gets every line that was not kept, so a runner can
	// still find the line its output is in. Its Text may itself be cut
	// (see Line).
	Overflow func(Line)
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
		if !l.Cut() && c.buf.Len()+n <= c.limit() {
			c.buf.WriteString(l.Text)
			if l.Complete {
				c.buf.WriteByte('\n')
			}
			return
		}
		c.Truncated = true
	}
	if c.Overflow != nil {
		c.Overflow(l)
	}
}

func (c *Capture) limit() int {
	if c.Limit <= 0 {
		return DefaultCaptureLimit
	}
	return c.Limit
}

// LineLimit is how long a line a reader should keep for this capture: a
// longer one cannot be kept anyway.
func (c *Capture) LineLimit() int { return max(c.limit(), MaxLineBytes) }

// Len is how many bytes are kept.
func (c *Capture) Len() int { return c.buf.Len() }

// String returns the collected text.
func (c *Capture) String() string { return c.buf.String() }

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
