package node

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

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

// What a step leaves behind must not reach the next step on its worker,
// and what it prints or returns is bounded by its output limit.

// newRunner is a runner of its own with one worker (so every step of the
// test runs on it), closed with the test.
func newRunner(t *testing.T, opts Options) *Runner {
	t.Helper()
	opts.PoolSize, opts.Spares = 1, -1
	r := New(opts)
	t.Cleanup(func() { _ = r.Close() })
	if _, err := r.Interpreter(); err != nil {
		t.Fatalf("these tests need Node.js: install it (Debian: apt-get install nodejs): %v", err)
	}
	return r
}

// pidNamespaceSpawn starts each worker as PID 1 of a PID namespace of its
// own, as the sandbox does (in a user namespace when the test is not root).
// /proc stays the host's, so the worker cannot list the namespace.
func pidNamespaceSpawn(cmd *exec.Cmd, _ proc.SpawnInfo) (func(), error) {
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWPID
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return nil, cmd.Start()
}

func marker() string {
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

func TestProcessesEndWithTheirStep(t *testing.T) {
	for name, opts := range map[string]Options{"plain": {}, "pid namespace": {WorkerOptions: proc.WorkerOptions{Spawn: pidNamespaceSpawn}}} {
		t.Run(name, func(t *testing.T) {
			r := newRunner(t, opts)
			mark := marker()
			// A detached child (a session of its own) and a plain one, both
			// let go of by the worker.
			code := fmt.Sprintf(`
const { spawn, execSync } = require('child_process');

async function run() {
  spawn('bash', ['-c', 'exec -a %[1]s sleep 600'], { detached: true, stdio: 'ignore' }).unref();
  spawn('bash', ['-c', 'exec -a %[1]s sleep 600'], { stdio: 'ignore' }).unref();
  for (let i = 0; i < 200; i++) {
    const n = Number(execSync("ps -eo args | grep -c '^%[1]s' || true").toString());
    if (n >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { started: true };
}
`, mark)
			h := steptest.NewHost()
			if _, err := r.Run(context.Background(), step("leave", code, nil), h); err != nil {
				t.Fatal(err)
			}
			if left := running(mark); len(left) > 0 {
				t.Fatalf("processes outlived their step: %q (log %q)", left, h.Lines())
			}
			if got := mustRun(t, r, step("next", "function run() { return 3; }", nil)); got != `{"value":3}` {
				t.Fatalf("next step: %s", got)
			}
		})
	}
}

// Orphans adopted by a worker that is PID 1 are zombies Node cannot reap:
// the worker asks to be retired, and the next step gets a fresh one.
func TestWorkerWithUnreapableOrphansIsRetired(t *testing.T) {
	r := newRunner(t, Options{
		WorkerOptions: proc.WorkerOptions{
			Spawn: pidNamespaceSpawn,
		},
	})
	code := `
const { execSync } = require('child_process');
function run() {
  execSync("bash -c 'sleep 600 >/dev/null 2>&1 & disown'"); // bash exits, sleep is orphaned
  return { pid: process.pid };
}
`
	h := steptest.NewHost()
	if _, err := r.Run(context.Background(), step("orphan", code, nil), h); err != nil {
		t.Fatal(err)
	}
	retired := false
	for _, l := range h.Lines() {
		retired = retired || strings.HasPrefix(l, "log: hwe: the node worker is not reused after this step")
	}
	if !retired {
		t.Fatalf("no retirement in the log: %q", h.Lines())
	}
	if got := mustRun(t, r, step("next", "function run() { return 4; }", nil)); got != `{"value":4}` {
		t.Fatalf("next step: %s", got)
	}
}

func TestOutputOverTheLimit(t *testing.T) {
	r := newRunner(t, Options{})
	var limit *api.LimitError

	// A result line over the limit is refused by the worker.
	req := step("big", "function run() { return { x: 'x'.repeat(5000) }; }", nil)
	req.Grant.MaxOutput = 1000
	_, err := r.Run(context.Background(), req, nil)
	if !errors.As(err, &limit) || err.Error() != "output limit exceeded: output of 5008 bytes exceeds 1000 bytes" {
		t.Fatalf("got %T %v", err, err)
	}

	// Printing more than the limit is fine when the output is a JSON line
	// (here the result), which is found past what is kept...
	req = step("prints", "function run() { for (let i = 0; i < 100; i++) console.log('x'.repeat(99)); process.stdout.write('y'.repeat(50000) + '\\n'); return { ok: true }; }", nil)
	req.Grant.MaxOutput = 1000
	if out, err := r.Run(context.Background(), req, nil); err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("%s %v", out, err)
	}

	// ... but when the output would be the printed text, it is too big.
	req = step("raw", "function run() { for (let i = 0; i < 100; i++) console.log('x'.repeat(99)); }", nil)
	req.Grant.MaxOutput = 1000
	if _, err := r.Run(context.Background(), req, nil); !errors.As(err, &limit) || limit.Limit != "output" {
		t.Fatalf("got %T %v", err, err)
	}
	// Under the limit, the same text is the output.
	req.Grant.MaxOutput = 20000
	if out, err := r.Run(context.Background(), req, nil); err != nil || !strings.HasPrefix(string(out), `{"output":"xxx`) {
		t.Fatalf("%.100s %v", out, err)
	}
}
