package python

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

// What a step leaves behind must not reach the next step on its worker:
// not its forked copies, not its processes.

// newRunner is a runner of its own with one worker (so every step of the
// test runs on it), closed with the test.
func newRunner(t *testing.T, opts Options) *Runner {
	t.Helper()
	opts.PoolSize, opts.Spares = 1, -1
	r := New(opts)
	t.Cleanup(func() { _ = r.Close() })
	if _, err := r.Interpreter(); err != nil {
		t.Fatalf("these tests need python3: install it (Debian: apt-get install python3): %v", err)
	}
	return r
}

// pidNamespaceSpawn starts each worker as PID 1 of a PID namespace of its
// own, as the sandbox does (in a user namespace when the test is not root).
func pidNamespaceSpawn(cmd *exec.Cmd, _ proc.SpawnInfo) (func(), error) {
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWPID
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return nil, cmd.Start()
}

func marker(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "hwe-left-" + hex.EncodeToString(b)
}

// running lists the live processes whose command line holds mark.
func running(mark string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i < 0 || strings.HasPrefix(s[i+1:], " Z") {
			continue
		}
		if strings.Contains(string(cmdline), mark) {
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// leaveProcesses is a step that starts processes meant to outlive it: a
// plain child, one in a session of its own, and a daemon (double fork,
// setsid) whose parent is gone by the time the step ends.
func leaveProcesses(mark string) string {
	return fmt.Sprintf(`
import os, subprocess, time

def run():
    cmd = ["bash", "-c", "exec -a %[1]s sleep 600"]
    subprocess.Popen(cmd)
    subprocess.Popen(cmd, start_new_session=True)
    subprocess.run(["bash", "-c", "setsid bash -c 'exec -a %[1]s sleep 600' & disown"])
    for _ in range(200):
        if len(os.popen("pgrep -f %[1]s").read().split()) >= 3:
            break
        time.sleep(0.01)
    return {"started": True}
`, mark)
}

func checkNothingLeft(t *testing.T, r *Runner, mark string) {
	t.Helper()
	h := steptest.NewHost()
	if _, err := r.Run(context.Background(), step("leave", leaveProcesses(mark), nil), h); err != nil {
		t.Fatal(err)
	}
	// Killed and reaped before the step's reply: nothing to wait for.
	if left := running(mark); len(left) > 0 {
		t.Fatalf("processes outlived their step: %q (log %q)", left, h.Lines())
	}
	// And the worker goes on serving steps.
	if got := mustRun(t, r, step("next", "def run():\n    return 1\n", nil)); got != "1" {
		t.Fatalf("next step: %s", got)
	}
}

func TestProcessesEndWithTheirStep(t *testing.T) {
	checkNothingLeft(t, newRunner(t, Options{}), marker(t))
}

func TestProcessesEndWithTheirStepAsPIDOne(t *testing.T) {
	checkNothingLeft(t, newRunner(t, Options{
		WorkerOptions: proc.WorkerOptions{
			Spawn: pidNamespaceSpawn,
		},
	}), marker(t))
}

// A step that forks the worker: the copies finish run() too, and must end
// there instead of answering for the worker (and for the next step).
func TestForkedCopiesDoNotAnswerForTheWorker(t *testing.T) {
	for name, opts := range map[string]Options{"plain": {}, "pid namespace": {WorkerOptions: proc.WorkerOptions{Spawn: pidNamespaceSpawn}}} {
		t.Run(name, func(t *testing.T) {
			r := newRunner(t, opts)
			h := steptest.NewHost()
			fork := `
import os, time, hwe

def run():
    kids = []
    for i in range(8):
        pid = os.fork()
        if pid == 0:
            time.sleep(0.05 * i)
            try:
                hwe.log("from a copy")
            except Exception as e:
                print("copy:", e)
            if i == 7:
                raise ValueError("raised in a copy")
            return {"copy": i}
        kids.append(pid)
    for pid in kids:
        os.waitpid(pid, 0)
    return {"parent": True}
`
			out, err := r.Run(context.Background(), step("fork", fork, nil), h)
			if err != nil || string(out) != `{"parent":true}` {
				t.Fatalf("%s %v (log %q)", out, err, h.Lines())
			}
			if !h.Has("stdout: copy: hwe: the host API is not available in a forked process") {
				t.Fatalf("a copy reached the host API: %q", h.Lines())
			}
			// A fork bomb's copies outlive the step's reply unless ended.
			bomb := "import os\n\ndef run():\n    for _ in range(5):\n        os.fork()\n    return {'copy': os.getpid()}\n"
			if _, err := r.Run(context.Background(), step("bomb", bomb, nil), steptest.NewHost()); err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if got := mustRun(t, r, step("after", fmt.Sprintf("def run():\n    return %d\n", i), nil)); got != strconv.Itoa(i) {
					t.Fatalf("step %d got %s: a reply of another process", i, got)
				}
			}
		})
	}
}

// A step's result larger than its max_output is refused by the worker
// before it is sent.
func TestOutputOverTheLimit(t *testing.T) {
	r := newRunner(t, Options{})
	req := step("big", "def run():\n    return 'x' * 5000\n", nil)
	req.Grant.MaxOutput = 1000
	_, err := r.Run(context.Background(), req, nil)
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "output" || err.Error() != "output limit exceeded: output of 5002 bytes exceeds 1000 bytes" {
		t.Fatalf("got %T %v", err, err)
	}
	// Compact JSON counts, not Python's dump with its spaces.
	req = step("fits", "def run():\n    return {str(i): i for i in range(100)}\n", nil)
	req.Grant.MaxOutput = 990
	if _, err := r.Run(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
}

// The spawn hook explains a worker's death: a sandbox that saw it killed for
// its memory makes that the step's error, not a runner crash.
func TestWorkerDeathExplainedBySpawnHook(t *testing.T) {
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
	r := newRunner(t, Options{
		WorkerOptions: proc.WorkerOptions{
			Spawn: spawn,
		},
	})
	start := time.Now()
	_, err := r.Run(context.Background(), step("oom", "import os, signal\n\ndef run():\n    os.kill(os.getpid(), signal.SIGKILL)\n", nil), nil)
	var limit *api.LimitError
	if !errors.As(err, &limit) || err.Error() != "memory limit exceeded: killed for using more memory than granted" {
		t.Fatalf("got %T %v after %v", err, err, time.Since(start))
	}
	if got := mustRun(t, r, step("next", "def run():\n    return 2\n", nil)); got != "2" {
		t.Fatalf("next step: %s", got)
	}
}
