package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// The attack battery: each test runs a real bash or python3 process through
// Wrap with the layers this machine offers (see TestDoctorReportsEveryLayer
// for which) and checks that the attack fails and nothing escapes.

const (
	bashPath   = "/bin/bash"
	pythonPath = "/usr/bin/python3" // the python3 on PATH may be a slow pyenv shim
)

func needProgram(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is needed by this test: install it (Debian: apt-get install -y %s)", path, map[string]string{bashPath: "bash", pythonPath: "python3"}[path])
	}
}

type result struct {
	out  string
	err  error // from Wait, through Sandbox.Explain
	dur  time.Duration
	sb   *Sandbox
	exit int
}

// run wraps and runs one command to completion and closes its sandbox.
func run(t *testing.T, ctx context.Context, spec Spec, env []string, prog string, args ...string) result {
	t.Helper()
	needProgram(t, prog)
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	sb, err := Wrap(cmd, spec)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := result{out: string(out), err: sb.Explain(err), dur: time.Since(start), sb: sb, exit: cmd.ProcessState.ExitCode()}
	if cerr := sb.Close(); cerr != nil {
		t.Errorf("Close: %v", cerr)
	}
	t.Logf("exit %d after %v, err %v\n%s", r.exit, r.dur.Round(time.Millisecond), r.err, truncate(r.out, 2000))
	return r
}

func bash(t *testing.T, spec Spec, script string) result {
	return run(t, context.Background(), spec, nil, bashPath, "-c", script)
}

func python(t *testing.T, spec Spec, code string) result {
	return run(t, context.Background(), spec, nil, pythonPath, "-I", "-S", "-c", code)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// hostDir makes a folder outside /tmp (a step's /tmp is its run's folder).
func hostDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/var/tmp", "hwe-attack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestAttackReadShadow(t *testing.T) {
	r := bash(t, Spec{}, `cat /etc/shadow; echo "cat exit $?"`)
	if !strings.Contains(r.out, "Permission denied") || !strings.Contains(r.out, "cat exit 1") {
		t.Fatalf("/etc/shadow was readable")
	}
	r = python(t, Spec{}, `
try:
    open("/etc/shadow").read(); print("READ")
except OSError as e:
    print("denied", e.errno)
`)
	if !strings.Contains(r.out, "denied") {
		t.Fatal("python read /etc/shadow")
	}
}

func TestAttackReadAnotherRunsFiles(t *testing.T) {
	otherRun := t.TempDir() // another run's scratch folder on the host
	os.WriteFile(filepath.Join(otherRun, "secret.txt"), []byte("other-run-secret"), 0o644)

	// Another step's workdir, alive while this step runs.
	other := exec.Command(bashPath, "-c", "true")
	otherSB, err := Wrap(other, Spec{TempDir: otherRun})
	if err != nil {
		t.Fatal(err)
	}
	defer otherSB.Close()
	os.WriteFile(filepath.Join(otherSB.Workdir(), "secret.txt"), []byte("other-step-secret"), 0o644)

	r := bash(t, Spec{TempDir: t.TempDir()}, fmt.Sprintf(`
cat %[1]s/secret.txt; cat %[2]s/secret.txt; ls %[3]s; ls /tmp
cat /proc/1/root%[1]s/secret.txt
`, otherRun, otherSB.Workdir(), filepath.Dir(otherSB.Workdir())))
	if strings.Contains(r.out, "other-run-secret") || strings.Contains(r.out, "other-step-secret") {
		t.Fatalf("read another run's or step's files")
	}
}

func TestAttackWriteOutsideWorkdir(t *testing.T) {
	outside := hostDir(t)
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("original"), 0o666)
	os.Chmod(outside, 0o777) // only the sandbox may stop the write, not permissions

	script := fmt.Sprintf(`
echo direct > %[1]s/direct
cd "$HOME" && echo dotdot > ../../../..%[1]s/dotdot
ln -s %[1]s/via-link "$HOME/link" && echo link > "$HOME/link"
ln -s %[2]s "$HOME/victim-link" && echo pwned > "$HOME/victim-link"
ln -s %[1]s /tmp/tmp-link 2>/dev/null; echo tmplink > /tmp/tmp-link/x
echo etc > /etc/hwe-escape; echo usr > /usr/bin/hwe-escape; echo root > /hwe-escape
echo ok > "$HOME/ok" && echo "workdir writable"
echo ok > /tmp/ok && echo "tmp writable"
`, outside, victim)
	r := bash(t, Spec{TempDir: t.TempDir()}, script)
	for _, name := range []string{"direct", "dotdot", "via-link", "x"} {
		if _, err := os.Stat(filepath.Join(outside, name)); err == nil {
			t.Errorf("escaped: %s written outside the workdir", name)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "original" {
		t.Errorf("victim file changed through a symlink: %q", b)
	}
	for _, p := range []string{"/etc/hwe-escape", "/usr/bin/hwe-escape", "/hwe-escape"} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("escaped: wrote %s", p)
		}
	}
	if !strings.Contains(r.out, "workdir writable") || !strings.Contains(r.out, "tmp writable") {
		t.Errorf("the step could not write its own workdir and /tmp")
	}
}

// listeners starts a TCP and a UDP listener on 127.0.0.1 that record any
// contact.
type listeners struct {
	tcp     net.Listener
	udp     net.PacketConn
	mu      sync.Mutex
	contact []string
}

func startListeners(t *testing.T) *listeners {
	t.Helper()
	l := &listeners{}
	var err error
	if l.tcp, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if l.udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.tcp.Close(); l.udp.Close() })
	go func() {
		for {
			c, err := l.tcp.Accept()
			if err != nil {
				return
			}
			l.record("tcp")
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 100)
		for {
			if _, _, err := l.udp.ReadFrom(buf); err != nil {
				return
			}
			l.record("udp")
		}
	}()
	return l
}

func (l *listeners) record(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.contact = append(l.contact, s)
}

func (l *listeners) contacts() []string {
	time.Sleep(200 * time.Millisecond) // let late packets arrive
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.contact...)
}

const netAttack = `
import socket, sys
tp, up = int(sys.argv[1]), int(sys.argv[2])
def attempt(kind, fn):
    try:
        fn(); print(kind, "REACHED")
    except OSError as e:
        print(kind, "blocked", e.errno)
def tcp():
    s = socket.create_connection(("127.0.0.1", tp), timeout=2); s.send(b"x")
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("127.0.0.1", up))
def mptcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); s.settimeout(2); s.connect(("127.0.0.1", tp))
def tcp6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(2); s.connect(("::ffff:127.0.0.1", tp))
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def netlink():
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
def unix():
    a, b = socket.socketpair(); a.send(b"x"); assert b.recv(1) == b"x"
for k, f in [("tcp", tcp), ("udp", udp), ("mptcp", mptcp), ("tcp6", tcp6), ("raw", raw), ("netlink", netlink), ("unix", unix)]:
    attempt(k, f)
`

func TestAttackNetworkToLoopback(t *testing.T) {
	l := startListeners(t)
	tp := l.tcp.Addr().(*net.TCPAddr).Port
	up := l.udp.LocalAddr().(*net.UDPAddr).Port
	r := run(t, context.Background(), Spec{}, nil, pythonPath, "-I", "-S", "-c", netAttack, strconv.Itoa(tp), strconv.Itoa(up))
	for _, k := range []string{"tcp", "udp", "mptcp", "tcp6", "raw", "netlink"} {
		if !strings.Contains(r.out, k+" blocked") {
			t.Errorf("%s was not blocked", k)
		}
	}
	if !strings.Contains(r.out, "unix REACHED") {
		t.Errorf("Unix socket pairs must keep working")
	}
	if c := l.contacts(); len(c) > 0 {
		t.Fatalf("listeners on 127.0.0.1 were reached: %v", c)
	}
}

func TestNetworkGrantReachesLoopback(t *testing.T) {
	// The positive control for the test above: with Network the same
	// script does reach the listeners, so "blocked" there means blocked.
	l := startListeners(t)
	tp := l.tcp.Addr().(*net.TCPAddr).Port
	up := l.udp.LocalAddr().(*net.UDPAddr).Port
	r := run(t, context.Background(), Spec{Network: true}, nil, pythonPath, "-I", "-S", "-c", netAttack, strconv.Itoa(tp), strconv.Itoa(up))
	if !strings.Contains(r.out, "tcp REACHED") || !strings.Contains(r.out, "netlink blocked") {
		t.Fatalf("with Network, TCP should connect and netlink stay blocked")
	}
	if c := l.contacts(); len(c) == 0 {
		t.Fatal("listeners saw nothing with Network on")
	}
}

func TestAttackForkBomb(t *testing.T) {
	r := python(t, Spec{Processes: 32}, `
import os, time
n = 0
try:
    for i in range(1000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print("forks", n, "errno", e.errno)
`)
	var n, errno int
	if _, err := fmt.Sscanf(strings.TrimSpace(r.out), "forks %d errno %d", &n, &errno); err != nil {
		t.Fatalf("fork loop was not stopped: %q", r.out)
	}
	if n >= 32 || errno != int(syscall.EAGAIN) {
		t.Fatalf("forked %d times (errno %d), want fewer than 32 and EAGAIN", n, errno)
	}

	// A classic shell fork bomb, stopped by the timeout; the host goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rb := run(t, ctx, Spec{Processes: 64}, nil, bashPath, "-c", `bomb() { bomb | bomb & }; bomb; wait`)
	if rb.dur > 10*time.Second {
		t.Fatalf("fork bomb ran %v past a 2s timeout", rb.dur)
	}
	assertNoProcessesOf(t, rb.sb)
}

func TestAttackAllocate4GiB(t *testing.T) {
	r := python(t, Spec{}, `
try:
    b = bytearray(4 << 30); print("ALLOCATED", len(b))
except MemoryError:
    print("MemoryError")
`)
	if !strings.Contains(r.out, "MemoryError") {
		t.Fatal("4 GiB allocation succeeded")
	}
}

func TestMemoryLimitKillsTheTree(t *testing.T) {
	if !Probe().Active(LayerCgroupMemory) {
		t.Log("cgroup memory is off here; RLIMIT_AS alone bounds memory")
	}
	// Touch 8 MiB at a time, far past a 64 MiB grant.
	r := python(t, Spec{Memory: 64 << 20}, `
chunks = []
try:
    for i in range(200):
        chunks.append(b"\x01" * (8 << 20))
    print("USED", len(chunks) * 8, "MiB")
except MemoryError:
    print("MemoryError at", len(chunks) * 8, "MiB")
`)
	if strings.Contains(r.out, "USED") {
		t.Fatal("allocated 1.6 GiB under a 64 MiB limit")
	}
	var le *api.LimitError
	if Probe().Active(LayerCgroupMemory) && !strings.Contains(r.out, "MemoryError") && !(errors.As(r.err, &le) && le.Limit == "memory") {
		t.Fatalf("want a memory LimitError from Explain, got %v", r.err)
	}
}

func TestAttackEnvNotLeaked(t *testing.T) {
	t.Setenv("HWE_SECRET_TOKEN", "hunter2-secret")
	t.Setenv("HOST_ONLY_VAR", "host-only-value")
	r := run(t, context.Background(), Spec{}, []string{"STEP_VAR=step-value", "HWE_SECRET_OTHER=passed-by-mistake"}, bashPath, "-c",
		`env; cat /proc/*/environ 2>/dev/null | tr '\0' '\n'`)
	for _, leak := range []string{"hunter2-secret", "host-only-value", "passed-by-mistake"} {
		if strings.Contains(r.out, leak) {
			t.Errorf("leaked %q into the step", leak)
		}
	}
	if !strings.Contains(r.out, "STEP_VAR=step-value") {
		t.Error("the runner's own variable did not reach the step")
	}
}

func TestAttackTreeKilledAtTimeout(t *testing.T) {
	work := hostDir(t)
	script := `
(trap '' TERM; while true; do echo tick >> "$HOME/child"; sleep 0.05; done) &
setsid bash -c 'trap "" TERM HUP; while true; do echo tick >> "$HOME/grandchild"; sleep 0.05; done' &
nohup sleep 1000 >/dev/null 2>&1 &
trap '' TERM
while true; do sleep 0.05; done
`
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	r := run(t, ctx, Spec{Workdir: work}, nil, bashPath, "-c", script)
	if r.dur > 5*time.Second {
		t.Fatalf("Wait returned %v after a 1s timeout", r.dur)
	}
	sizes := func() (int64, int64) {
		a, _ := os.Stat(filepath.Join(work, "child"))
		b, _ := os.Stat(filepath.Join(work, "grandchild"))
		if a == nil || b == nil {
			t.Fatalf("the child and grandchild never ran: %v %v", a, b)
		}
		return a.Size(), b.Size()
	}
	c1, g1 := sizes()
	time.Sleep(400 * time.Millisecond)
	c2, g2 := sizes()
	if c1 != c2 || g1 != g2 {
		t.Fatalf("processes survived the timeout: child %d->%d, grandchild %d->%d", c1, c2, g1, g2)
	}
	assertNoProcessesOf(t, r.sb)
}

func TestAttackBackgroundProcessOutlivesStep(t *testing.T) {
	work := hostDir(t)
	r := run(t, context.Background(), Spec{Workdir: work}, nil, bashPath, "-c",
		`(sleep 0.3; echo late > "$HOME/late") & disown; setsid sleep 1000 & echo done`)
	if r.exit != 0 || !strings.Contains(r.out, "done") {
		t.Fatal("step failed")
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(work, "late")); err == nil {
		t.Fatal("a background process outlived its step")
	}
	assertNoProcessesOf(t, r.sb)
}

func TestAttackSpinPastTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r := run(t, ctx, Spec{}, nil, bashPath, "-c", `while :; do :; done`)
	if r.err == nil || r.dur > 5*time.Second {
		t.Fatalf("spin not stopped: %v after %v", r.err, r.dur)
	}
}

func TestCPULimit(t *testing.T) {
	r := run(t, context.Background(), Spec{CPU: time.Second}, nil, bashPath, "-c", `while :; do :; done`)
	var le *api.LimitError
	if !errors.As(r.err, &le) || le.Limit != "cpu" {
		t.Fatalf("want a cpu LimitError, got %v", r.err)
	}
}

func TestAttackDangerousSyscalls(t *testing.T) {
	r := python(t, Spec{}, `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
calls = {"ptrace": (101, 16, 1, 0, 0), "mount": (165, 0, 0, 0, 0), "unshare": (272, 0x10000000, 0, 0, 0),
         "bpf": (321, 0, 0, 0, 0), "keyctl": (250, 0, 0, 0, 0), "io_uring_setup": (425, 1, 0, 0, 0),
         "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0), "setns": (308, 0, 0, 0, 0),
         "userfaultfd": (323, 0, 0, 0, 0), "perf_event_open": (298, 0, 0, 0, 0),
         "ioctl_tiocsti": (16, 2, 0x5412, 0, 0), "ioctl_tiocsti_high_bits": (16, 2, ctypes.c_long(0x100005412), 0, 0)}
for name, (nr, *args) in calls.items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, *args)
    if rc == 0 and name == "clone_newuser":
        os._exit(0)
    print(name, rc, ctypes.get_errno())
`)
	for _, name := range []string{"ptrace", "mount", "unshare", "bpf", "keyctl", "io_uring_setup", "clone_newuser", "setns", "userfaultfd", "perf_event_open", "ioctl_tiocsti", "ioctl_tiocsti_high_bits"} {
		if !strings.Contains(r.out, fmt.Sprintf("%s -1 %d\n", name, syscall.EPERM)) {
			t.Errorf("%s was not refused with EPERM", name)
		}
	}
}

func TestAttackLargeFile(t *testing.T) {
	r := bash(t, Spec{MaxFileSize: 1 << 20, TempDir: t.TempDir()}, `head -c 5000000 /dev/zero > /tmp/big; echo "exit $?"; echo "size $(stat -c %s /tmp/big)"`)
	if !strings.Contains(r.out, "size 1048576") || strings.Contains(r.out, "exit 0") {
		t.Fatal("wrote more than 1 MiB under a 1 MiB file size limit")
	}
}

func TestPIDNamespaceHidesTheHost(t *testing.T) {
	if !Probe().Active(LayerPIDNS) {
		t.Fatalf("PID namespace unavailable: %s", Probe().Detail(LayerPIDNS))
	}
	r := bash(t, Spec{}, `ls /proc | grep -c '^[0-9]'; echo pid $$`)
	if strings.Contains(r.out, "\n"+strconv.Itoa(os.Getpid())+"\n") || !strings.Contains(r.out, "pid 1") {
		t.Fatal("the step sees host processes")
	}
}

func TestStepsOfARunShareTmpAcrossUIDs(t *testing.T) {
	// The reference's file-processing example: one step writes files in
	// /tmp, a later one (another uid) reads and deletes them.
	runTmp := t.TempDir()
	a := bash(t, Spec{TempDir: runTmp}, `mkdir -p /tmp/workflow_test && for i in 1 2 3; do echo "file $i" > /tmp/workflow_test/f$i.txt; done; id -u`)
	b := bash(t, Spec{TempDir: runTmp}, `cat /tmp/workflow_test/f2.txt && rm -rf /tmp/workflow_test && echo removed; id -u`)
	if !strings.Contains(b.out, "file 2") || !strings.Contains(b.out, "removed") {
		t.Fatal("a later step could not read and remove an earlier step's files")
	}
	if _, err := os.Stat(filepath.Join(runTmp, "workflow_test")); err == nil {
		t.Fatal("folder still there")
	}
	_ = a
}

func TestConcurrentStepsGetDistinctUIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		// Not root: steps run as hwe's own uid, and the report says so.
		if Probe().Active(LayerUID) {
			t.Fatal("uid layer reported active without root")
		}
		return
	}
	if !Probe().Active(LayerUID) {
		t.Fatalf("uid layer unavailable: %s", Probe().Detail(LayerUID))
	}
	var wg sync.WaitGroup
	uids := make([]string, 4)
	for i := range uids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bash(t, Spec{}, `id -u; sleep 0.5`)
			uids[i] = strings.TrimSpace(r.out)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, u := range uids {
		if seen[u] || u == "0" || u == "" {
			t.Fatalf("uids not distinct and unprivileged: %v", uids)
		}
		seen[u] = true
	}
}

func TestRequiredLayers(t *testing.T) {
	rep := Probe()
	var missing string
	for _, l := range rep.Layers {
		if !l.Active {
			missing = l.Name
		}
	}
	if missing != "" {
		_, err := Wrap(exec.Command(bashPath, "-c", "true"), Spec{Require: []string{missing}})
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("Wrap ran without the required layer %s: %v", missing, err)
		}
	}
	if _, err := Wrap(exec.Command(bashPath, "-c", "true"), Spec{Require: []string{"no-such-layer"}}); err == nil {
		t.Fatal("unknown layer accepted")
	}
	if _, err := Wrap(exec.Command(bashPath, "-c", "true"), Spec{Off: true, Require: []string{LayerSeccomp}}); err == nil {
		t.Fatal("sandbox off while the policy requires a layer")
	}
	r := bash(t, Spec{Require: rep.ActiveLayers()}, `echo fine`)
	if !strings.Contains(r.out, "fine") {
		t.Fatal("requiring the active layers must work")
	}
}

func TestOffStillScrubsEnv(t *testing.T) {
	t.Setenv("HOST_ONLY_VAR", "host-only-value")
	r := run(t, context.Background(), Spec{Off: true}, nil, bashPath, "-c", `env; id -u`)
	if strings.Contains(r.out, "host-only-value") {
		t.Fatal("env leaked with the sandbox off")
	}
}

func TestPathsUnderTmpRefused(t *testing.T) {
	_, err := Wrap(exec.Command(bashPath), Spec{ReadPaths: []string{"/tmp/x"}})
	if err == nil {
		t.Fatal("a read path under /tmp was accepted")
	}
	if _, err := Wrap(exec.Command(bashPath), Spec{WritePaths: []string{"*"}}); err == nil {
		t.Fatal(`"*" accepted as a write path`)
	}
}

func TestGrantedPaths(t *testing.T) {
	ro, rw := hostDir(t), hostDir(t)
	os.Chmod(ro, 0o755)
	os.Chmod(rw, 0o777)
	os.WriteFile(filepath.Join(ro, "in.txt"), []byte("input data"), 0o644)
	r := bash(t, Spec{ReadPaths: []string{ro}, WritePaths: []string{rw}}, fmt.Sprintf(
		`cat %[1]s/in.txt; echo x > %[1]s/nope; echo out > %[2]s/out.txt && echo wrote`, ro, rw))
	if !strings.Contains(r.out, "input data") || !strings.Contains(r.out, "wrote") {
		t.Fatal("granted paths not usable")
	}
	if _, err := os.Stat(filepath.Join(ro, "nope")); err == nil {
		t.Fatal("wrote into a read-only grant")
	}
	if b, _ := os.ReadFile(filepath.Join(rw, "out.txt")); string(b) != "out\n" {
		t.Fatalf("write grant: %q", b)
	}
}

// assertNoProcessesOf checks that nothing runs any more as the step's uid.
func assertNoProcessesOf(t *testing.T, sb *Sandbox) {
	t.Helper()
	if sb.lease == nil {
		return
	}
	uid := sb.lease.uid
	// Another test may have been given this uid since; only look for
	// processes older than that could be, i.e. right now, briefly.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var st syscall.Stat_t
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if syscall.Stat("/proc/"+e.Name(), &st) == nil && int(st.Uid) == uid {
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if strings.Contains(string(comm), "sleep") || strings.Contains(string(comm), "bash") {
				t.Errorf("process %s (%q) of uid %d outlived its sandbox", e.Name(), comm, uid)
			}
		}
	}
}

func TestWorkdirUnderTmpShowsAtHweWork(t *testing.T) {
	runTmp := t.TempDir()
	work := t.TempDir() // under the host's /tmp, like a runner's scratch folder
	spec := Spec{TempDir: runTmp, Workdir: work}
	if Probe().Active(LayerMountNS) {
		if got := spec.Inside(work + "/x"); got != "/hwe/work/x" {
			t.Fatalf("Inside(workdir/x) = %q", got)
		}
		if got := spec.Inside(runTmp + "/a/b"); got != "/tmp/a/b" {
			t.Fatalf("Inside(tempdir/a/b) = %q", got)
		}
	}
	cmd := exec.Command(bashPath, "-c", `pwd; echo "home=$HOME"; echo hi > file && echo wrote`)
	cmd.Dir = work
	var out strings.Builder
	cmd.Stdout = &out
	release, err := Start(cmd, spec)
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	release()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "file")); string(b) != "hi\n" {
		t.Fatalf("the step did not write its workdir: %q", b)
	}
	if Probe().Active(LayerMountNS) && out.String() != "/hwe/work\nhome=/hwe/work\nwrote\n" {
		t.Fatalf("output %q", out.String())
	}
}

func TestAttackSyscallsThroughThe32BitABI(t *testing.T) {
	// int 0x80 from 64-bit code enters the kernel through the i386 table,
	// where unshare is 310. A filter that only knows x86-64 numbers lets it
	// through unless it refuses foreign architectures.
	r := python(t, Spec{}, `
import ctypes, mmap
code = bytes([0xB8, 0x36, 0x01, 0x00, 0x00,  # mov eax, 310 (i386 unshare)
              0xBB, 0x00, 0x00, 0x00, 0x10,  # mov ebx, CLONE_NEWUSER
              0xCD, 0x80,                    # int 0x80
              0xC3])                         # ret
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
print("rc", ctypes.CFUNCTYPE(ctypes.c_int)(addr)())
`)
	if !strings.Contains(r.out, "rc -") {
		t.Fatalf("a syscall through the i386 ABI was not refused")
	}
}
