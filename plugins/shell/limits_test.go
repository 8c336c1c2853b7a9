package shell

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

// A bash that crashes is the step failing, not the runner.
func TestBashCrashIsAStepError(t *testing.T) {
	_, _, err := run(t, step("deep", "kill -SEGV $$\n", nil))
	se := steptest.StepError(t, err)
	if se.Message != "Shell script failed in step 'deep': bash killed by signal: segmentation fault (stack overflow?)" {
		t.Fatalf("got %q", se.Message)
	}
	// Real recursion too (bash has no depth limit of its own).
	_, _, err = run(t, step("recurse", "f() { f; }\nf\n", nil))
	if se := steptest.StepError(t, err); !strings.Contains(se.Message, "bash killed by signal: segmentation fault") {
		t.Fatalf("got %q", se.Message)
	}
}

// The spawn hook explains bash's death: a sandbox that saw it killed for
// its memory or CPU time makes that the step's error.
func TestBashDeathExplainedBySpawnHook(t *testing.T) {
	r := New(Options{Spawn: func(cmd *exec.Cmd, info proc.SpawnInfo) (func(), error) {
		info.SetExplain(func(waitErr error) error {
			var ee *exec.ExitError
			if errors.As(waitErr, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				return &api.LimitError{Limit: "cpu", Detail: "used 1s of CPU time, more than the 1s granted"}
			}
			return waitErr
		})
		return nil, cmd.Start()
	}})
	defer r.Close()
	_, err := r.Run(context.Background(), step("spin", "kill -KILL $$\n", nil), nil)
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "cpu" {
		t.Fatalf("got %T %v", err, err)
	}
	// Exits the hook does not explain stay what they were.
	_, err = r.Run(context.Background(), step("fails", "echo nope >&2; exit 3\n", nil), nil)
	if se := steptest.StepError(t, err); se.Message != "Shell script failed in step 'fails': nope" {
		t.Fatalf("got %q", se.Message)
	}
}

func withMaxOutput(req *api.StepRequest, n int64) *api.StepRequest {
	req.Grant.MaxOutput = n
	return req
}

func TestOutputLimit(t *testing.T) {
	var limit *api.LimitError
	// A JSON line longer than the limit: its size, read without keeping it.
	_, _, err := run(t, withMaxOutput(step("giant", `printf '{"x": "'; head -c 200000 /dev/zero | tr '\0' x; printf '"}\n'`, nil), 1000))
	if !errors.As(err, &limit) || err.Error() != "output limit exceeded: output of 200009 bytes exceeds 1000 bytes" {
		t.Fatalf("got %T %v", err, err)
	}
	// The JSON line is found past more text than the limit keeps.
	out, _, err := run(t, withMaxOutput(step("late", "for i in $(seq 200); do echo line $i; done\necho '{\"late\": true}'\n", nil), 1000))
	if err != nil || out != `{"late":true}` {
		t.Fatalf("%s %v", out, err)
	}
	// Without one, the output would hold all that text: too big.
	_, _, err = run(t, withMaxOutput(step("text", "for i in $(seq 200); do echo line $i; done\n", nil), 1000))
	if !errors.As(err, &limit) || limit.Limit != "output" {
		t.Fatalf("got %T %v", err, err)
	}
	// The default limit applies when the grant sets none.
	_, _, err = run(t, step("default", `printf '{"x": "'; head -c 20000000 /dev/zero | tr '\0' x; printf '"}\n'`, nil))
	if !errors.As(err, &limit) || err.Error() != "output limit exceeded: output of 20000009 bytes exceeds 16777216 bytes" {
		t.Fatalf("got %T %v", err, err)
	}
}

// Long lines reach the log cut, with the host's mark.
func TestLongLinesAreCutInTheLog(t *testing.T) {
	_, h, err := run(t, step("long", "head -c 1000000 /dev/zero | tr '\\0' x\necho\necho done\n", nil))
	if err != nil {
		t.Fatal(err)
	}
	lines := h.Lines()
	if len(lines) != 2 || lines[0] != "stdout: "+strings.Repeat("x", proc.MaxLineBytes)+proc.TruncatedMark || lines[1] != "stdout: done" {
		t.Fatalf("%d lines, first %.80q", len(lines), lines)
	}
}
