package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hwe-run/hwe/host/engine"
	"golang.org/x/term"
)

// progress prints a line per step transition and per log line on stderr:
// coloured on a terminal (unless NO_COLOR is set), plain otherwise.
type progress struct {
	w     io.Writer
	quiet bool
	color bool
}

func newProgress(w io.Writer, getenv func(string) string, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && getenv("NO_COLOR") == "" {
		p.color = true
	}
	return p
}

func (p *progress) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p *progress) event(e engine.Event) {
	if p.quiet {
		return
	}
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
