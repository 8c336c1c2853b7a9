// Package steptest holds what the runner tests share: a host that records
// log lines, request builders, and process checks.
package steptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Host records the lines a step logs; everything else is denied.
type Host struct {
	api.NopHost
	mu    sync.Mutex
	lines []string // "stream: line"
	seen  chan string
}

// NewHost returns an empty recording host.
func NewHost() *Host { return &Host{seen: make(chan string, 1000)} }

// Log implements api.Host.
func (h *Host) Log(stream, line string) {
	h.mu.Lock()
	h.lines = append(h.lines, stream+": "+line)
	h.mu.Unlock()
	select {
	case h.seen <- stream + ": " + line:
	default:
	}
}

// Lines returns every line logged so far as "stream: line".
func (h *Host) Lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

// Has reports whether line was logged.
func (h *Host) Has(line string) bool {
	for _, l := range h.Lines() {
		if l == line {
			return true
		}
	}
	return false
}

// WaitPID waits for the step to log "stdout: <prefix> N" and returns N.
func (h *Host) WaitPID(t testing.TB, prefix string) int {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line := <-h.seen:
			if rest, ok := strings.CutPrefix(line, "stdout: "+prefix+" "); ok {
				pid, err := strconv.Atoi(strings.TrimSpace(rest))
				if err != nil {
					t.Fatal(err)
				}
				return pid
			}
		case <-timeout:
			t.Fatalf("step never logged %q; log: %q", prefix, h.Lines())
		}
	}
}

// Step builds a request; inputs map dependency names to JSON text.
func Step(language, name, code string, inputs map[string]string) *api.StepRequest {
	req := &api.StepRequest{Step: name, Workflow: "wf", Language: language, Code: code, Attempt: 1}
	if len(inputs) > 0 {
		req.Inputs = map[string]json.RawMessage{}
		for k, v := range inputs {
			req.Inputs[k] = json.RawMessage(v)
		}
	}
	return req
}

// StepError asserts err is a *api.StepError and returns it.
func StepError(t testing.TB, err error) *api.StepError {
	t.Helper()
	var se *api.StepError
	if !errors.As(err, &se) {
		t.Fatalf("want a *api.StepError, got %T: %v", err, err)
	}
	return se
}

// WaitGone waits until pid no longer runs (gone, or a zombie nobody reaps).
func WaitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d is still running", pid)
}
