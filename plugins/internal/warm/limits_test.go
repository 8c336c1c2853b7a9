package warm

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

// limitsWorker acts on the request's "do": print a long line without a
// newline, reply far past the output limit, ask to be retired, or die.
const limitsWorker = `
import json, os, sys
req_in = os.fdopen(3, "rb")
rep = os.fdopen(4, "wb")
def reply(o):
    rep.write(json.dumps(o).encode() + b"\n"); rep.flush()
reply({"ready": True})
for line in req_in:
    req = json.loads(line)
    do = req.get("do")
    if do == "die":
        os.kill(os.getpid(), 9)
    if do == "long-line":
        sys.stdout.write("y" * 1000000); sys.stdout.flush()
    os.write(1, (req["sentinel"] + "\n").encode())
    os.write(2, (req["sentinel"] + "\n").encode())
    if do == "huge-reply":
        rep.write(b'{"ok": true, "dump": "' + b"z" * (40 << 20) + b'"}\n'); rep.flush()
        continue
    if do == "retire":
        reply({"retire": "left something behind"})
    reply({"pid": os.getpid(), "max_output": req["max_output"]})
`

func doStep(p *Pool, req *api.StepRequest, do string) (string, *steptest.Host, error) {
	h := steptest.NewHost()
	reply, _, err := p.Do(context.Background(), req, func(string) map[string]any { return map[string]any{"do": do} }, h, false)
	return string(reply), h, err
}

func TestLongStdoutLineEndsAtItsSentinel(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, NewCmd: pythonCmd(t, limitsWorker)})
	req := &api.StepRequest{Step: "s", Tenant: "t"}
	first, h, err := doStep(p, req, "long-line")
	if err != nil {
		t.Fatal(err)
	}
	lines := h.Lines()
	if len(lines) != 1 || lines[0] != "stdout: "+strings.Repeat("y", proc.MaxLineBytes)+proc.TruncatedMark {
		t.Fatalf("%d lines: %.100q", len(lines), lines)
	}
	// The sentinel was found in the part of the line not kept: the worker
	// is in step and serves the next step.
	second, _, err := doStep(p, req, "")
	if err != nil || pidOf(first) != pidOf(second) {
		t.Fatalf("not reused: %s then %s (%v)", first, second, err)
	}
	if !strings.Contains(first, `"max_output": 16777216`) {
		t.Fatalf("the request did not carry the output limit: %s", first)
	}
}

func TestRetiredWorkerIsNotReused(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, NewCmd: pythonCmd(t, limitsWorker)})
	req := &api.StepRequest{Step: "s", Tenant: "t"}
	first, h, err := doStep(p, req, "retire")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Has("log: hwe: the test worker is not reused after this step: left something behind") {
		t.Fatalf("log %q", h.Lines())
	}
	second, _, err := doStep(p, req, "")
	if err != nil || pidOf(first) == pidOf(second) {
		t.Fatalf("retired worker reused: %s then %s (%v)", first, second, err)
	}
}

// A reply far larger than the step's output may be stops the step at the
// limit: the worker is ended and the rest is never read into memory.
func TestHugeReplyIsCutAtTheLimit(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, NewCmd: pythonCmd(t, limitsWorker)})
	req := &api.StepRequest{Step: "s", Tenant: "t", Grant: api.Grant{MaxOutput: 1000}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := doStep(p, req, "huge-reply")
	runtime.ReadMemStats(&after)
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "output" {
		t.Fatalf("got %T %v", err, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 3*minReplyLimit {
		t.Fatalf("a 40 MiB reply allocated %d MiB", grew>>20)
	}
	if _, _, err := doStep(p, req, ""); err != nil {
		t.Fatal(err)
	}
}

// When the spawn hook explains a worker's death as a limit, the step fails
// with that limit instead of a runner crash.
func TestWorkerDeathExplained(t *testing.T) {
	spawn := func(cmd *exec.Cmd, info proc.SpawnInfo) (func(), error) {
		info.SetExplain(func(waitErr error) error {
			var ee *exec.ExitError
			if errors.As(waitErr, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				return &api.LimitError{Limit: "memory", Detail: "killed for using more memory than granted"}
			}
			return waitErr
		})
		return nil, cmd.Start()
	}
	p := newTestPool(t, Config{Spares: -1, NewCmd: pythonCmd(t, limitsWorker), Spawn: spawn})
	_, _, err := doStep(p, &api.StepRequest{Step: "s"}, "die")
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "memory" {
		t.Fatalf("got %T %v", err, err)
	}
}

func pidOf(reply string) string {
	i := strings.Index(reply, `"pid": `)
	if i < 0 {
		return reply
	}
	return reply[i+7 : i+7+strings.IndexByte(reply[i+7:], ',')]
}
