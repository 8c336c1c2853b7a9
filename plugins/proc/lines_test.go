package proc

import (
	"errors"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

func TestReadLinesMaxCutsWhileReading(t *testing.T) {
	long := strings.Repeat("a", 300<<10) + "END"
	input := "short\n" + strings.Repeat("b", 100<<10) + "\n" + long + "\nlast"
	var got []Line
	ReadLinesMax(strings.NewReader(input), func([]byte) int { return 128 << 10 }, func(l Line) { got = append(got, l) })
	if len(got) != 4 {
		t.Fatalf("%d lines", len(got))
	}
	if got[0].Text != "short" || !got[0].Complete || got[0].Cut() {
		t.Fatalf("first: %+v", got[0])
	}
	// Within the limit: whole, even past one read and the log's cap.
	if got[1].Text != strings.Repeat("b", 100<<10) || got[1].Cut() {
		t.Fatalf("second: %d bytes, dropped %d", len(got[1].Text), got[1].Dropped)
	}
	if lt := got[1].LogText(); lt != strings.Repeat("b", MaxLineBytes)+TruncatedMark {
		t.Fatalf("second as logged: %d bytes", len(lt))
	}
	// Past it: the start (a log line's worth), the size and the tail.
	l := got[2]
	if !l.Cut() || l.Text != long[:MaxLineBytes] || l.Size() != int64(len(long)) || l.Tail != long[len(long)-TailBytes:] || !l.Complete {
		t.Fatalf("third: %d bytes kept, size %d, tail %q", len(l.Text), l.Size(), l.Tail)
	}
	if got[3].Text != "last" || got[3].Complete {
		t.Fatalf("last: %+v", got[3])
	}
}

// The limit is asked with the line's start, so a reader keeps only the
// long lines it may need.
func TestReadLinesMaxLimitByStart(t *testing.T) {
	input := "{" + strings.Repeat("x", 200<<10) + "}\n" + strings.Repeat("y", 200<<10) + "\n"
	var got []Line
	limit := func(start []byte) int {
		if FirstNonSpace(start) == '{' {
			return 1 << 20
		}
		return 0
	}
	ReadLinesMax(strings.NewReader(input), limit, func(l Line) { got = append(got, l) })
	if len(got) != 2 || got[0].Cut() || len(got[0].Text) != 200<<10+2 || !got[1].Cut() || len(got[1].Text) != MaxLineBytes {
		t.Fatalf("%d lines: %d bytes (dropped %d), %d bytes", len(got), len(got[0].Text), got[0].Dropped, len(got[1].Text))
	}
	if !got[0].LooksLikeObject() {
		t.Fatal("an object line does not look like one")
	}
}

// A line of 64 MB without a newline costs a log line's worth of memory.
func TestReadLinesDoesNotBufferLongLines(t *testing.T) {
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var lines int
	var first string
	ReadLines(io.LimitReader(repeatReader('z'), size), func(line string, complete bool) {
		lines++
		first = line
	})
	runtime.ReadMemStats(&after)
	if lines != 1 || first != strings.Repeat("z", MaxLineBytes)+TruncatedMark {
		t.Fatalf("%d lines, first %d bytes", lines, len(first))
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("reading a %d MiB line allocated %d MiB", size>>20, grew>>20)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestCaptureOverflowAndLineLimit(t *testing.T) {
	var past []string
	c := Capture{Limit: 10, Overflow: func(l Line) { past = append(past, l.Text) }}
	if c.LineLimit(nil) != MaxLineBytes {
		t.Fatalf("line limit %d", c.LineLimit(nil))
	}
	c.Add("abcd", true)
	c.AddLine(Line{Text: "cut", Complete: true, Dropped: 5}) // a cut line is never kept
	c.Add("ef", true)
	if c.String() != "abcd\n" || !c.Truncated || c.Len() != 5 || strings.Join(past, ",") != "cut,ef" {
		t.Fatalf("%q %v %q", c.String(), c.Truncated, past)
	}
	big := Capture{Limit: 1 << 20, MayBeOutput: func(start []byte) bool { return FirstNonSpace(start) == '{' }}
	big.Add(strings.Repeat("x", 1000), true)
	if got := big.LineLimit([]byte("xx")); got != 1<<20-1001 {
		t.Fatalf("room %d", got)
	}
	big.Truncated = true
	if big.LineLimit([]byte("xx")) != MaxLineBytes || big.LineLimit([]byte("  {")) != 1<<20 {
		t.Fatal("a truncated capture wants only lines that may be the output")
	}
}

func TestOutputLimitError(t *testing.T) {
	if e := OutputLimitError(20, 10, false); e.Limit != "output" || e.Error() != "output limit exceeded: output of 20 bytes exceeds 10 bytes" {
		t.Fatal(e)
	}
	if e := OutputLimitError(20, 10, true); e.Error() != "output limit exceeded: output of more than 20 bytes exceeds 10 bytes" {
		t.Fatal(e)
	}
	if MaxOutput(api.Grant{}) != DefaultMaxOutput || MaxOutput(api.Grant{MaxOutput: 5}) != 5 {
		t.Fatal("MaxOutput")
	}
}

// A SpawnFunc hands its explanation of exits to the runner through Start.
func TestStartHandsBackTheExplanation(t *testing.T) {
	limit := &api.LimitError{Limit: "memory"}
	release, explain, err := Start(func(cmd *exec.Cmd, info SpawnInfo) (func(), error) {
		info.SetExplain(func(error) error { return limit })
		return nil, cmd.Start()
	}, exec.Command("true"), SpawnInfo{})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if !errors.Is(explain(errors.New("signal: killed")), limit) {
		t.Fatal("the SpawnFunc's explanation was lost")
	}
	release2, explain2, err := Start(nil, exec.Command("true"), SpawnInfo{})
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	plain := errors.New("exit status 1")
	if explain2(plain) != plain {
		t.Fatal("without an explanation the error must stay as it is")
	}
}

// A flood of empty lines costs the capture what it holds, not a slice
// entry per line.
func TestCaptureOfShortLines(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := Capture{Limit: 4 << 20}
	for range 8 << 20 {
		c.Add("", true)
	}
	runtime.ReadMemStats(&after)
	if c.Len() != 4<<20 || c.String() != strings.Repeat("\n", 4<<20) || !c.Truncated {
		t.Fatalf("kept %d bytes", c.Len())
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 12<<20 {
		t.Fatalf("4 MiB of empty lines allocated %d MiB", grew>>20)
	}
	long := strings.Repeat("L", 100<<10)
	c = Capture{}
	c.Add("a", true)
	c.Add(long, true)
	c.Add("b", false)
	if c.String() != "a\n"+long+"\nb" || c.Len() != len(long)+4 {
		t.Fatalf("%d bytes", c.Len())
	}
}
