package wasm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// These tests run testdata/wasm/goguest.wasm, a module built by the standard
// Go toolchain with the Go guest SDK, so they check the runner against a
// real WASI guest and the SDK against the runner at once.

// sharedGoGuest compiles the Go guest once for all tests of the package:
// compiling 3.8 MB of WebAssembly takes seconds.
var sharedGoGuest struct {
	r   *Runner
	dir string
}

func goGuestRunner(t *testing.T) *Runner {
	t.Helper()
	if sharedGoGuest.r == nil {
		dir, err := os.MkdirTemp("", "hwe-wasm-cache-")
		if err != nil {
			t.Fatal(err)
		}
		sharedGoGuest.dir = dir
		sharedGoGuest.r = New(Options{CacheDir: dir})
	}
	return sharedGoGuest.r
}

func TestMain(m *testing.M) {
	if os.Getenv(loadHelperEnv) != "" {
		os.Exit(loadHelper())
	}
	code := m.Run()
	if sharedGoGuest.r != nil {
		_ = sharedGoGuest.r.Close()
		_ = os.RemoveAll(sharedGoGuest.dir)
	}
	os.Exit(code)
}

// goStep builds a request for an export of the Go guest; args become
// inputs named after them, each a JSON string.
func goStep(t *testing.T, fn string, args ...string) *api.StepRequest {
	req := step(fixture(t, "goguest.wasm"), fn)
	var pairs []string
	for i := 0; i+1 < len(args); i += 2 {
		b, _ := json.Marshal(args[i+1])
		pairs = append(pairs, args[i], string(b))
	}
	req.Inputs = inputs(pairs...)
	return req
}

func TestGoGuestEcho(t *testing.T) {
	r := goGuestRunner(t)
	out := mustRun(t, r, goStep(t, "echo", "a", "x"), &testHost{})
	if string(out) != `{"inputs":{"a":"x"}}` {
		t.Errorf("got %s", out)
	}
}

// Guest stdout and stderr go to the step's log, line by line.
func TestGoGuestStdio(t *testing.T) {
	r := goGuestRunner(t)
	host := &testHost{}
	mustRun(t, r, goStep(t, "print"), host)
	want := []string{"stdout: to stdout", "stderr: to stderr", "stderr: unterminated"}
	if got := host.logLines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logs %q, want %q", got, want)
	}
}

// A panic in the guest's step function fails the step with its message,
// and the instance keeps working.
func TestGoGuestPanic(t *testing.T) {
	r := goGuestRunner(t)
	mustFail(t, r, goStep(t, "panic"), &testHost{}, "panic: boom")
	mustRun(t, r, goStep(t, "echo"), &testHost{})
}

// The guest sees the real time and real random bytes (wazero's defaults
// are a fixed 2022 clock and the same bytes in every instance).
func TestGoGuestClockAndRandom(t *testing.T) {
	r := goGuestRunner(t)
	var got [2]struct {
		UnixMS  int64  `json:"unix_ms"`
		Random  string `json:"random"`
		SleptMS int64  `json:"slept_ms"`
	}
	for i := range got {
		req := goStep(t, "clock_random")
		req.Isolation = "process" // a fresh instance each time
		out := mustRun(t, r, req, &testHost{})
		must(t, json.Unmarshal(out, &got[i]))
		if d := time.Since(time.UnixMilli(got[i].UnixMS)); d < 0 || d > time.Minute {
			t.Errorf("guest clock says %s, %s away from now", time.UnixMilli(got[i].UnixMS), d)
		}
		if got[i].SleptMS < 15 {
			t.Errorf("guest slept %d ms, want about 20", got[i].SleptMS)
		}
	}
	if got[0].Random == got[1].Random {
		t.Errorf("two instances drew the same random bytes %s", got[0].Random)
	}
}

// The guest sees only the step's environment and no arguments.
func TestGoGuestEnvironment(t *testing.T) {
	r := goGuestRunner(t)
	req := goStep(t, "env")
	req.Env = map[string]string{"GREETING": "hi"}
	out := mustRun(t, r, req, &testHost{})
	if string(out) != `{"args":[],"env":["GREETING=hi"]}` {
		t.Errorf("got %s", out)
	}
}

// No file system without a grant; a read grant allows reading but not
// writing; a write grant allows both.
func TestGoGuestFileSystemGrants(t *testing.T) {
	r := goGuestRunner(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("hello"), 0o644))
	read := goStep(t, "fs_read", "path", filepath.Join(dir, "in.txt"))
	write := goStep(t, "fs_write", "path", filepath.Join(dir, "out.txt"), "content", "written")

	// Without a grant there are no preopened folders at all.
	mustFail(t, r, read, &testHost{}, "open "+filepath.Join(dir, "in.txt"))
	mustFail(t, r, write, &testHost{}, "open "+filepath.Join(dir, "out.txt"))

	read.Grant.FSRead = []string{dir}
	write.Grant.FSRead = []string{dir}
	if out := mustRun(t, r, read, &testHost{}); string(out) != `{"content":"hello"}` {
		t.Errorf("read: %s", out)
	}
	// A symlink already in the granted folder does not lead out of it.
	outside := filepath.Join(t.TempDir(), "outside.txt")
	must(t, os.WriteFile(outside, []byte("outside"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(dir, "link.txt")))
	mustFail(t, r, goStep(t, "fs_read", "path", filepath.Join(dir, "link.txt")), &testHost{}, "link.txt")
	viaLink := goStep(t, "fs_read", "path", filepath.Join(dir, "link.txt"))
	viaLink.Grant.FSRead = []string{dir}
	mustFail(t, r, viaLink, &testHost{}, "link.txt")
	mustFail(t, r, write, &testHost{}, "out.txt")

	write.Grant.FSWrite = []string{dir}
	mustRun(t, r, write, &testHost{})
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != "written" {
		t.Errorf("out.txt = %q", b)
	}
}

// A guest with a writable mount cannot get out of it: not through symlinks
// it creates (absolute, relative, to a folder), not through "..".
func TestGoGuestCannotEscapeMount(t *testing.T) {
	r := goGuestRunner(t)
	base := t.TempDir()
	mounted := filepath.Join(base, "mounted")
	must(t, os.Mkdir(mounted, 0o755))
	secret := filepath.Join(base, "secret.txt")
	must(t, os.WriteFile(secret, []byte("TOP SECRET"), 0o644))

	req := goStep(t, "fs_escape", "dir", mounted, "target", secret)
	req.Grant.FSWrite = []string{mounted}
	out := mustRun(t, r, req, &testHost{})
	var got map[string]string
	must(t, json.Unmarshal(out, &got))
	if len(got) != 5 {
		t.Errorf("got %s", out)
	}
	t.Logf("escape attempts: %s", out)
	for attempt, result := range got {
		if !strings.HasPrefix(result, "error: ") || strings.Contains(result, "TOP SECRET") {
			t.Errorf("%s escaped the mount: %s", attempt, result)
		}
	}
}

// The SDK's host API: every call forwarded, denials seen by the guest with
// the capability named.
func TestGoGuestHostAPI(t *testing.T) {
	r := goGuestRunner(t)
	granted := &testHost{
		kv:      map[string][]byte{},
		secrets: map[string]string{"API_KEY": "s3cret"},
		fetch: func(req api.HTTPRequest) (*api.HTTPResponse, error) {
			return &api.HTTPResponse{Status: 200, Body: []byte(req.Method + " " + string(req.Body))}, nil
		},
	}
	out := mustRun(t, r, goStep(t, "host", "url", "http://127.0.0.1:1/"), granted)
	want := `{"http":"200 POST ping","kv_get":"\"hi \\xff\" found=true","kv_put":"ok","progress":"ok","secret":"s3cret"}`
	if string(out) != want {
		t.Errorf("granted:\n got %s\nwant %s", out, want)
	}
	if logs := granted.logLines(); len(logs) != 1 || logs[0] != "log: hello from the Go guest" {
		t.Errorf("logs %q", logs)
	}
	if len(granted.progress) != 1 || granted.progress[0] != `[0.25,"a quarter"]` {
		t.Errorf("progress %q", granted.progress)
	}

	out = mustRun(t, r, goStep(t, "host", "url", "http://127.0.0.1:1/"), &testHost{})
	var got map[string]string
	must(t, json.Unmarshal(out, &got))
	for name, capability := range map[string]string{"kv_put": "kv", "kv_get": "kv", "secret": "secrets", "http": "net"} {
		if !strings.HasPrefix(got[name], "error["+capability+"]: capability "+capability+" denied") {
			t.Errorf("%s: %q, want a denial of %s", name, got[name], capability)
		}
	}

	// A guest that fails because of a denial fails the step naming it.
	err := mustFail(t, r, goStep(t, "host", "url", "x", "fail_on_denied", "yes"), &testHost{},
		"cannot continue without the API key: capability secrets denied: secret API_KEY not granted")
	var denied *api.DeniedError
	if !errors.As(err, &denied) || denied.Capability != "secrets" {
		t.Errorf("error %v carries no secrets DeniedError", err)
	}
}

// A Go guest allocating past its cap fails with a memory LimitError.
func TestGoGuestMemoryCap(t *testing.T) {
	r := goGuestRunner(t)
	req := goStep(t, "alloc")
	req.Inputs = inputs("mb", "64")
	req.Grant.Memory = 32 << 20
	err := mustFail(t, r, req, &testHost{}, "needed more than its memory limit of 32 MiB")
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "memory" {
		t.Errorf("%T %v is not a memory LimitError", err, err)
	}
	req.Inputs = inputs("mb", "8")
	if out := mustRun(t, r, req, &testHost{}); string(out) != `{"held_mb":8}` {
		t.Errorf("got %s", out)
	}
}

// A Go guest asking for 4 GiB at once never reaches the cap: Go's runtime
// refuses the block itself, prints "fatal error: out of memory" and traps.
// The step still fails with a memory LimitError that says so, and the
// runner goes on.
func TestGoGuestHugeAllocation(t *testing.T) {
	r := goGuestRunner(t)
	req := goStep(t, "alloc_once")
	req.Inputs = inputs("bytes", fmt.Sprint(4<<30-1))
	host := &testHost{}
	err := mustFail(t, r, req, host, "memory limit exceeded: WASM function 'alloc_once' ran out of memory (its memory limit is 256 MiB): "+
		`the guest reported "runtime: out of memory: cannot allocate 4294967296-byte block`)
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "memory" {
		t.Errorf("%T %v is not a memory LimitError", err, err)
	}
	if !strings.Contains(strings.Join(host.logLines(), "\n"), "stderr: fatal error: out of memory") {
		t.Errorf("the guest's own report is not in the step's log: %q", host.logLines())
	}
	req.Inputs = inputs("bytes", "1048576")
	if out := mustRun(t, r, req, &testHost{}); string(out) != `{"held":1048576}` {
		t.Errorf("got %s", out)
	}
}

// A goroutine a step leaves running runs again whenever its instance runs,
// so an instance is reused only by later runs of the same step: another
// step of the same workflow, module, grant and environment gets a fresh
// instance and sees no ticks. The same step does reuse it, which shows the
// goroutine was really left running.
func TestGoGuestLeftoverGoroutineStaysWithItsStep(t *testing.T) {
	r := goGuestRunner(t)
	ticks := func(stepName string) float64 {
		t.Helper()
		req := goStep(t, "bg_ticks")
		req.Workflow, req.Step = "leftover", stepName
		out := decode(t, mustRun(t, r, req, &testHost{}))
		return out["ticks"].(float64)
	}
	start := goStep(t, "bg_start")
	start.Workflow, start.Step = "leftover", "start"
	if out := mustRun(t, r, start, &testHost{}); string(out) != `{"started":true}` {
		t.Fatalf("bg_start: %s", out)
	}
	if n := ticks("check"); n != 0 {
		t.Errorf("a goroutine left by step start ran %v times during step check", n)
	}
	if n := ticks("start"); n == 0 {
		t.Errorf("a later run of step start saw no ticks: its instance was not reused, so this test shows nothing")
	}
}

// The Go SDK's example step computes statistics from its inputs.
func TestGoSDKExampleStep(t *testing.T) {
	r := goGuestRunner(t)
	req := step(filepath.Join(repoRoot(t), "workflows", "wasm_go_stats.wasm"), "stats")
	req.Inputs = inputs("generate", `{"numbers":[3,1,4,1,5,9,2,6]}`)
	host := &testHost{}
	out := mustRun(t, r, req, host)
	want := `{"computed_by":"wasm (Go guest SDK)","count":8,"max":9,"mean":3.875,"median":3.5,"min":1,` +
		`"primes":[2,3,5],"sorted":[1,1,2,3,4,5,6,9],"source":"generate","stddev":2.571,"sum":31}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if fmt.Sprint(host.logLines()) != "[log: computing statistics of 8 numbers from generate]" {
		t.Errorf("logs %q", host.logLines())
	}
	req.Inputs = nil
	mustFail(t, r, req, host, `stats needs a dependency that outputs {"numbers": [...]}`)
}

// A guest asleep is stopped at its timeout too: the sleep ends with the call.
func TestGoGuestSleepStoppedAtTimeout(t *testing.T) {
	r := goGuestRunner(t)
	req := goStep(t, "sleep")
	req.Inputs = inputs("ms", "60000")
	req.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := mustFail(t, r, req, &testHost{}, "did not finish within 300ms")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping a sleeping guest took %s", took)
	}
	var limit *api.LimitError
	if !errors.As(err, &limit) || limit.Limit != "timeout" {
		t.Errorf("%T %v is not a timeout LimitError", err, err)
	}
	req.Inputs = inputs("ms", "10")
	req.Timeout = 0
	mustRun(t, r, req, &testHost{})
}
