package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/workflow"
	"golang.org/x/term"
)

// progress reports a run on stderr. On a terminal it keeps a live block with
// one line per step (status and running time, redrawn in place) and prints
// log lines above it; otherwise it prints one plain line per transition and
// per log line. Colour only on a terminal and never with NO_COLOR set.
type progress struct {
	w     io.Writer
	quiet bool
	color bool
	live  bool

	mu      sync.Mutex
	steps   []*liveStep
	byName  map[string]*liveStep
	drawn   int // lines of the live block currently on screen
	stopTic chan struct{}
}

type liveStep struct {
	name, language, status, err string
	started                     time.Time
	duration                    time.Duration
	attempt                     int
}

func newProgress(w io.Writer, getenv func(string) string, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.live = getenv("TERM") != "dumb"
		p.color = getenv("NO_COLOR") == ""
	}
	return p
}

func (p *progress) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// begin prepares the live block for a workflow's steps.
func (p *progress) begin(wf *workflow.Workflow) {
	if p.quiet || !p.live {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps, p.byName, p.drawn = nil, map[string]*liveStep{}, 0
	for _, s := range wf.Steps {
		ls := &liveStep{name: s.Name, language: s.LanguageAsWritten, status: engine.StatusPending}
		p.steps = append(p.steps, ls)
		p.byName[s.Name] = ls
	}
	p.stopTic = make(chan struct{})
	go p.tick(p.stopTic)
}

// tick redraws running steps' times while a run is going.
func (p *progress) tick(stop <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw(nil)
			p.mu.Unlock()
		}
	}
}

func (p *progress) event(e engine.Event) {
	if p.quiet {
		return
	}
	if p.live && p.byName != nil {
		p.liveEvent(e)
		return
	}
	p.plainEvent(e)
}

func (p *progress) liveEvent(e engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var above []string
	if s := p.byName[e.Step]; s != nil {
		switch e.Type {
		case engine.EventStepStarted:
			s.status, s.attempt = engine.StatusRunning, e.Attempt
			if s.started.IsZero() {
				s.started = e.Time
			}
		case engine.EventStepFinished:
			s.status, s.err = e.Status, e.Error
			s.duration = time.Duration(e.DurationMS) * time.Millisecond
		case engine.EventStepLog:
			above = append(above, p.paint("2", e.Step+" | ")+e.Line)
		case engine.EventStepRetry:
			above = append(above, p.paint("33", fmt.Sprintf("%s attempt %d failed, retrying: %s", e.Step, e.Attempt, e.Error)))
		}
	}
	p.redraw(above)
	if e.Type == engine.EventRunFinished {
		close(p.stopTic)
		p.byName, p.drawn = nil, 0 // leave the final block on screen
		fmt.Fprintf(p.w, "%s %s in %s\n", e.Workflow, e.Status, time.Duration(e.DurationMS)*time.Millisecond)
	}
}

// redraw moves up over the live block, prints lines that belong above it,
// then the block again. Called with p.mu held.
func (p *progress) redraw(above []string) {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, l := range above {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	for _, s := range p.steps {
		b.WriteString("\x1b[2K" + p.stepLine(s) + "\n")
	}
	p.drawn = len(p.steps)
	io.WriteString(p.w, b.String())
}

func (p *progress) stepLine(s *liveStep) string {
	switch s.status {
	case engine.StatusRunning:
		d := time.Since(s.started).Truncate(100 * time.Millisecond)
		attempt := ""
		if s.attempt > 1 {
			attempt = fmt.Sprintf(" attempt %d", s.attempt)
		}
		return fmt.Sprintf("%s %s %s%s", p.paint("36", "▶"), s.name, p.paint("2", d.String()), attempt)
	case engine.StatusSucceeded:
		return fmt.Sprintf("%s %s %s", p.paint("32", "✓"), s.name, p.paint("2", s.duration.String()))
	case engine.StatusFailed:
		return fmt.Sprintf("%s %s %s %s", p.paint("31", "✗"), s.name, p.paint("2", s.duration.String()), firstLineOf(s.err))
	case engine.StatusPending:
		return fmt.Sprintf("%s %s", p.paint("2", "·"), p.paint("2", s.name))
	default:
		return fmt.Sprintf("%s %s %s", p.paint("33", "-"), s.name, s.status)
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// plainEvent prints one line per transition: for logs, pipes and CI.
func (p *progress) plainEvent(e engine.Event) {
	prefix := p.paint("2", "["+e.Workflow+"]")
	switch e.Type {
	case engine.EventStepStarted:
		attempt := ""
		if e.Attempt > 1 {
			attempt = fmt.Sprintf(" (attempt %d)", e.Attempt)
		}
		fmt.Fprintf(p.w, "%s %s %s%s\n", prefix, p.paint("36", "▶"), e.Step, attempt)
	case engine.EventStepLog:
		fmt.Fprintf(p.w, "%s   %s | %s\n", prefix, e.Step, e.Line)
	case engine.EventStepProgress:
		fmt.Fprintf(p.w, "%s   %s %3.0f%% %s\n", prefix, e.Step, e.Progress*100, e.Message)
	case engine.EventStepRetry:
		fmt.Fprintf(p.w, "%s %s %s failed (attempt %d), retrying in %s: %s\n", prefix, p.paint("33", "↻"), e.Step, e.Attempt, time.Duration(e.DurationMS)*time.Millisecond, e.Error)
	case engine.EventStepFinished:
		d := time.Duration(e.DurationMS) * time.Millisecond
		switch e.Status {
		case engine.StatusSucceeded:
			fmt.Fprintf(p.w, "%s %s %s %s\n", prefix, p.paint("32", "✓"), e.Step, d)
		case engine.StatusFailed:
			fmt.Fprintf(p.w, "%s %s %s %s: %s\n", prefix, p.paint("31", "✗"), e.Step, d, e.Error)
		default:
			fmt.Fprintf(p.w, "%s %s %s %s\n", prefix, p.paint("33", "-"), e.Step, e.Status)
		}
	case engine.EventRunFinished:
		fmt.Fprintf(p.w, "%s %s in %s\n", prefix, e.Status, time.Duration(e.DurationMS)*time.Millisecond)
	}
}
