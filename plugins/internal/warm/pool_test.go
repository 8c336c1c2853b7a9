package warm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/steptest"
	"github.com/hwe-run/hwe/plugins/proc"
)

// echoWorker is a minimal worker in Python: it replies with its pid and the
// request's "say" field, printing "said <say>" as the step's output.
const echoWorker = `
import json, os, sys
req_in = os.fdopen(3, "rb")
rep = os.fdopen(4, "wb")
def reply(o):
    rep.write(json.dumps(o).encode() + b"\n"); rep.flush()
reply({"ready": True})
for line in req_in:
    req = json.loads(line)
    if req.get("exit"):
        os._exit(7)
    print("said", req["say"], flush=True)
    os.write(1, (req["sentinel"] + "\n").encode())
    os.write(2, (req["sentinel"] + "\n").encode())
    reply({"pid": os.getpid(), "say": req["say"]})
`

func pythonCmd(t testing.TB, script string) func() (*exec.Cmd, error) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatalf("these tests need /usr/bin/python3 (Debian: apt-get install python3): %v", err)
	}
	return func() (*exec.Cmd, error) {
		return &exec.Cmd{Path: "/usr/bin/python3", Args: []string{"python3", "-I", "-c", script}, Env: proc.Env("", "/", nil, nil)}, nil
	}
}

func newTestPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	if cfg.NewCmd == nil {
		cfg.NewCmd = pythonCmd(t, echoWorker)
	}
	cfg.Runner = "test"
	cfg.Scratch = &proc.Scratch{Root: t.TempDir()}
	p := NewPool(cfg)
	t.Cleanup(func() { _ = p.Close(); _ = cfg.Scratch.Close() })
	return p
}

func say(t *testing.T, p *Pool, req *api.StepRequest, word string) (pid int, log []string) {
	t.Helper()
	h := steptest.NewHost()
	reply, _, err := p.Do(context.Background(), req, func(dir string) map[string]any { return map[string]any{"say": word} }, h, false)
	if err != nil {
		t.Fatal(err)
	}
	s := string(reply)
	i := strings.Index(s, `"pid": `)
	pid, _ = strconv.Atoi(s[i+7 : strings.IndexByte(s[i:], ',')+i])
	return pid, h.Lines()
}

func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func TestWarmReuseAndStepOutput(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1})
	req := &api.StepRequest{Step: "s", Tenant: "t"}
	pid1, log := say(t, p, req, "hello")
	pid2, _ := say(t, p, req, "again")
	if pid1 != pid2 {
		t.Fatalf("worker not reused: %d then %d", pid1, pid2)
	}
	if len(log) != 1 || log[0] != "stdout: said hello" {
		t.Fatalf("log %q", log)
	}
}

func TestSparesAreStartedAhead(t *testing.T) {
	p := newTestPool(t, Config{Spares: 1})
	req := &api.StepRequest{Step: "s", Tenant: "t"}
	say(t, p, req, "x")
	key := Key{Tenant: "t", Profile: proc.Profile(req.Grant)}
	deadline := time.Now().Add(10 * time.Second)
	for p.Idle(key) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.Idle(key); n != 2 {
		t.Fatalf("%d idle workers, want the used one and a spare", n)
	}
}

func TestMaxWorkersBoundsWhatIsKept(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, MaxWorkers: 1})
	req := &api.StepRequest{Step: "s", Tenant: "t"}
	var wg sync.WaitGroup
	pids := make([]int, 3)
	for i := range pids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pids[i], _ = say(t, p, req, "x")
		}(i)
	}
	wg.Wait()
	if n := p.Idle(Key{Tenant: "t", Profile: proc.Profile(req.Grant)}); n != 1 {
		t.Fatalf("%d idle workers kept, want 1", n)
	}
	// Workers beyond the one kept end after their step.
	distinct := map[int]bool{}
	for _, pid := range pids {
		distinct[pid] = true
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		running := 0
		for pid := range distinct {
			if alive(pid) {
				running++
			}
		}
		if running <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the workers %v still run, want 1", running, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIdleWorkersEnd(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, IdleTimeout: 100 * time.Millisecond})
	pid, _ := say(t, p, &api.StepRequest{Step: "s"}, "x")
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatal("idle worker still running")
	}
}

func TestCloseEndsEverythingAndCleansUp(t *testing.T) {
	scratch := &proc.Scratch{Root: t.TempDir()}
	p := NewPool(Config{Runner: "test", NewCmd: pythonCmd(t, echoWorker), Spares: 2, Scratch: scratch})
	pid, _ := say(t, p, &api.StepRequest{Step: "s"}, "x")
	time.Sleep(300 * time.Millisecond) // let the spares start
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatal("worker still running after Close")
	}
	entries, _ := filepath.Glob(filepath.Join(scratch.Root, "hwe-steps-*", "*"))
	if len(entries) != 0 {
		t.Fatalf("worker folders left behind: %v", entries)
	}
	if _, err := p.Acquire(context.Background(), Key{}, proc.SpawnInfo{}, false); err != ErrClosed {
		t.Fatalf("Acquire after Close: %v", err)
	}
}

func TestWorkerDyingMidStep(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1})
	req := &api.StepRequest{Step: "s"}
	_, _, err := p.Do(context.Background(), req, func(string) map[string]any { return map[string]any{"exit": true} }, nil, false)
	if err == nil || err.Error() != "runner test exited: exit status 7" {
		t.Fatalf("got %v", err)
	}
	say(t, p, req, "fine") // a fresh worker takes over
}

func TestStartFailureReportsStderr(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, NewCmd: pythonCmd(t, "import sys\nsys.stderr.write('cannot start: missing thing\\n')\nsys.exit(3)\n")})
	_, _, err := p.Do(context.Background(), &api.StepRequest{Step: "s"}, func(string) map[string]any { return map[string]any{} }, nil, false)
	if err == nil || !strings.Contains(err.Error(), "cannot start: missing thing") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("got %v", err)
	}
}

func TestStartRespectsContext(t *testing.T) {
	p := newTestPool(t, Config{Spares: -1, NewCmd: pythonCmd(t, "import time\ntime.sleep(60)\n")})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := p.Do(ctx, &api.StepRequest{Step: "s"}, func(string) map[string]any { return map[string]any{} }, nil, false)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}
