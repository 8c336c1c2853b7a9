package proc

import (
	"bufio"
	"io"
	"strings"
)

// ReadLines reads r until EOF or a read error and calls fn once per line,
// without its "\n" (a trailing "\r" is kept: it is part of what was
// printed). A last line that does not end in "\n" is passed too, with
// complete=false.
func ReadLines(r io.Reader, fn func(line string, complete bool)) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if strings.HasSuffix(s, "\n") {
			fn(s[:len(s)-1], true)
		} else if s != "" {
			fn(s, false)
		}
		if err != nil {
			return
		}
	}
}

// Capture collects a stream's text up to a size limit, for runners whose
// result is parsed from what the step printed.
type Capture struct {
	Limit     int // bytes kept; 0 = DefaultCaptureLimit
	buf       strings.Builder
	Truncated bool
}

// DefaultCaptureLimit bounds how much of a step's stdout or stderr is kept
// for parsing its result (everything still goes to the step's log).
const DefaultCaptureLimit = 64 << 20

// Add appends text (a line plus, if complete, its newline). Once the limit
// is reached nothing more is kept, so what is kept is a prefix.
func (c *Capture) Add(line string, complete bool) {
	if c.Truncated {
		return
	}
	limit := c.Limit
	if limit <= 0 {
		limit = DefaultCaptureLimit
	}
	n := len(line)
	if complete {
		n++
	}
	if c.buf.Len()+n > limit {
		c.Truncated = true
		return
	}
	c.buf.WriteString(line)
	if complete {
		c.buf.WriteByte('\n')
	}
}

// String returns the collected text.
func (c *Capture) String() string { return c.buf.String() }
