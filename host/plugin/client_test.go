package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hwe-run/hwe/host/api"
)

func newEchoClient(t testing.TB) *Client {
	t.Helper()
	cfg := BuiltinConfig(echoRunner{}.Info())
	// A -race binary sleeps a second on exit unless told not to.
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func run(t testing.TB, c *Client, code string, host api.Host) map[string]any {
	t.Helper()
	out, err := c.Run(context.Background(), &api.StepRequest{Step: "s", Code: code}, host)
	if err != nil {
		t.Fatalf("Run(%q): %v", code, err)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	return v
}

func pidOf(t testing.TB, v map[string]any, key string) int {
	t.Helper()
	n, ok := v[key].(float64)
	if !ok {
		t.Fatalf("no %s in %v", key, v)
	}
	return int(n)
}

// processGone reports whether pid has exited (a zombie waiting for a reaper
// counts as gone: it runs nothing and holds nothing but its pid).
func processGone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRoundTripThroughSubprocess(t *testing.T) {
	c := newEchoClient(t)
	if info := c.Info(); info.Kind != "builtin-plugin" || info.Name != "echo" || info.Version != "1.2.3" {
		t.Errorf("Info before launch = %+v", info)
	}
	host := newFakeHost()
	host.kv["greeting"] = []byte("hi")
	req := &api.StepRequest{
		Step:     "second",
		Code:     "echo",
		Inputs:   map[string]json.RawMessage{"first": json.RawMessage(`{"a":[1,2.5,"x"]}`), "it's odd": json.RawMessage(`null`)},
		Env:      map[string]string{"K": "v"},
		CodeLine: 12,
		Grant:    api.Grant{KV: true, Net: []string{"example.com:443"}, CPU: time.Second},
	}
	out, err := c.Run(context.Background(), req, host)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Step    string
		Inputs  map[string]any
		KV      string
		KVFound bool `json:"kv_found"`
		PID     int
		Env     map[string]string
		Line    int `json:"code_line"`
		Grant   api.Grant
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Step != "second" || got.KV != "hi" || !got.KVFound || got.Env["K"] != "v" || got.Line != 12 {
		t.Errorf("plugin saw %+v", got)
	}
	if fmt.Sprint(got.Inputs) != "map[first:map[a:[1 2.5 x]] it's odd:<nil>]" {
		t.Errorf("inputs = %v", got.Inputs)
	}
	if !got.Grant.KV || got.Grant.CPU != time.Second || !slices.Equal(got.Grant.Net, []string{"example.com:443"}) {
		t.Errorf("grant = %+v", got.Grant)
	}
	if got.PID == os.Getpid() || got.PID == 0 {
		t.Errorf("step ran in pid %d, the test is %d: not a subprocess", got.PID, os.Getpid())
	}
	if want := fmt.Sprintf("log: hello from pid %d", got.PID); !slices.Contains(host.logs, want) {
		t.Errorf("logs = %q, want %q", host.logs, want)
	}
	if info := c.Info(); info.Version != "1.2.3" || info.Kind != "builtin-plugin" || info.Path == "" {
		t.Errorf("Info after launch = %+v", info)
	}

	t.Run("host writes", func(t *testing.T) {
		h := newFakeHost()
		out, err := c.Run(context.Background(), &api.StepRequest{Code: "kvput"}, h)
		if err != nil || string(out) != `"ok"` {
			t.Fatalf("kvput = %s, %v", out, err)
		}
		if string(h.kv["written"]) != "by plugin" || !slices.Equal(h.progress, []string{"0.50 half"}) {
			t.Errorf("kv = %q, progress = %q", h.kv, h.progress)
		}
	})
	t.Run("http fetch", func(t *testing.T) {
		v := run(t, c, "http", newFakeHost())
		if v["status"] != 200.0 || v["body"] != "fetched b" || fmt.Sprint(v["h"]) != "map[X:y]" {
			t.Errorf("fetch = %v", v)
		}
	})
	t.Run("step error keeps its type", func(t *testing.T) {
		_, err := c.Run(context.Background(), &api.StepRequest{Code: "fail", WorkflowFile: "/w/f.lua", CodeLine: 10}, host)
		var se *api.StepError
		if !errors.As(err, &se) || se.Line != 12 || se.File != "/w/f.lua" || se.Trace != "trace here" {
			t.Fatalf("err = %#v", err)
		}
		if err.Error() != "/w/f.lua:12: boom" {
			t.Errorf("message = %q", err)
		}
	})
	t.Run("denied host call keeps its type", func(t *testing.T) {
		_, err := c.Run(context.Background(), &api.StepRequest{Code: "secret"}, host)
		var de *api.DeniedError
		if !errors.As(err, &de) || de.Capability != "secrets" {
			t.Fatalf("err = %#v", err)
		}
		host.secrets["token"] = "s3cret"
		out, err := c.Run(context.Background(), &api.StepRequest{Code: "secret"}, host)
		if err != nil || string(out) != `"s3cret"` {
			t.Errorf("secret = %s, %v", out, err)
		}
	})
	t.Run("nil host denies", func(t *testing.T) {
		_, err := c.Run(context.Background(), &api.StepRequest{Code: "secret"}, nil)
		var de *api.DeniedError
		if !errors.As(err, &de) {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("runner failures", func(t *testing.T) {
		for code, want := range map[string]string{
			"panic":      "runner panicked: runner bug",
			"badjson":    "runner echo returned an output that is not JSON",
			"plainerror": "plain runner failure",
		} {
			_, err := c.Run(context.Background(), &api.StepRequest{Code: code}, host)
			if err == nil || err.Error() != want || api.IsStepError(err) {
				t.Errorf("%s: err = %v, want runner error %q", code, err, want)
			}
		}
		// The panic did not take the plugin down.
		if v := run(t, c, "echo", host); pidOf(t, v, "pid") != got.PID {
			t.Errorf("plugin restarted after a recovered panic")
		}
	})
}

func TestConcurrentRunsShareOnePlugin(t *testing.T) {
	c := newEchoClient(t)
	var wg sync.WaitGroup
	pids := make([]int, 16)
	errs := make([]error, 16)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newFakeHost()
			h.kv["greeting"] = []byte(fmt.Sprint(i))
			out, err := c.Run(context.Background(), &api.StepRequest{Code: "echo"}, h)
			if err != nil {
				errs[i] = err
				return
			}
			var v struct {
				KV  string
				PID int
			}
			_ = json.Unmarshal(out, &v)
			if v.KV != fmt.Sprint(i) {
				errs[i] = fmt.Errorf("run %d got the KV of another run: %q", i, v.KV)
			}
			pids[i] = v.PID
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, pid := range pids {
		if pid != pids[0] {
			t.Errorf("pids = %v, want one plugin process", pids)
			break
		}
	}
}

// startBlocking runs a "block" step in the background and returns the
// plugin's pid once the step is running, and the Run's result channel.
func startBlocking(t *testing.T, c *Client, ctx context.Context, env map[string]string) (int, chan error) {
	t.Helper()
	started := make(chan int, 1)
	host := newFakeHost()
	host.onLog = func(line string) {
		var pid int
		if _, err := fmt.Sscanf(line, "blocking pid %d", &pid); err == nil {
			started <- pid
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, &api.StepRequest{Code: "block", Env: env}, host)
		done <- err
	}()
	select {
	case pid := <-started:
		return pid, done
	case err := <-done:
		t.Fatalf("block step ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("block step did not start")
	}
	return 0, nil
}

func TestPluginKilledMidStep(t *testing.T) {
	c := newEchoClient(t)
	pid, done := startBlocking(t, c, context.Background(), nil)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its plugin was killed")
	}
	var exited *api.RunnerExitedError
	if !errors.As(err, &exited) || exited.Runner != "echo" || exited.Reason != "signal: killed" {
		t.Fatalf("err = %#v, want RunnerExitedError{echo, signal: killed}", err)
	}
	if err.Error() != "runner echo exited: signal: killed" {
		t.Errorf("message = %q", err)
	}
	// The next step gets a fresh plugin.
	v := run(t, c, "echo", newFakeHost())
	if next := pidOf(t, v, "pid"); next == pid {
		t.Errorf("next step ran in the killed process %d", pid)
	}
	waitGone(t, pid)
}

func TestKilledPluginTakesItsWorkersAlong(t *testing.T) {
	c := newEchoClient(t)
	v := run(t, c, "spawn", nil)
	pid, child := pidOf(t, v, "pid"), pidOf(t, v, "child")
	if processGone(child) {
		t.Fatal("worker did not start")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
}

func TestCancelStopsRemoteStep(t *testing.T) {
	c := newEchoClient(t)
	marker := filepath.Join(t.TempDir(), "cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	pid, done := startBlocking(t, c, ctx, map[string]string{"MARKER": marker})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// The step inside the plugin saw its context end.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "cancelled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the plugin's step was not cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Cancelling a step does not cost the plugin.
	if v := run(t, c, "echo", newFakeHost()); pidOf(t, v, "pid") != pid {
		t.Error("plugin was restarted after a cancelled step")
	}

	// A deadline works the same way.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Run(ctx, &api.StepRequest{Code: "block"}, newFakeHost())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestCloseLeavesNothingBehind(t *testing.T) {
	c := newEchoClient(t)
	v := run(t, c, "spawn", nil)
	pid, child := pidOf(t, v, "pid"), pidOf(t, v, "child")

	c.mu.Lock()
	dir := c.dir
	c.mu.Unlock()
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("socket folder %s: %v, mode %v; want private 0700", dir, err, st.Mode())
	}
	var sockets []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeSocket != 0 {
			sockets = append(sockets, path)
		}
		return nil
	})
	if len(sockets) < 2 { // the plugin's listener and the host API's
		t.Errorf("sockets in %s: %q, want the plugin's and the host API's", dir, sockets)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	waitGone(t, child)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket folder %s left behind: %v", dir, err)
	}
	if _, err := c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestCrashedPluginLeavesNoSockets(t *testing.T) {
	c := newEchoClient(t)
	pid := pidOf(t, run(t, c, "echo", newFakeHost()), "pid")
	c.mu.Lock()
	first, exited := c.cur.dir, c.cur.proc.exited
	c.mu.Unlock()
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-exited                         // the client has seen it die
	run(t, c, "echo", newFakeHost()) // relaunches, cleaning up after the dead one
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("dead plugin's socket folder %s left behind: %v", first, err)
	}
}

func TestHostEnvironmentNotInherited(t *testing.T) {
	t.Setenv("HWE_TEST_HOST_SECRET", "must-not-leak")
	cfg := BuiltinConfig(echoRunner{}.Info())
	cfg.Env = []string{"GRANTED=yes"}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := run(t, c, "environ", nil)
	for _, kv := range v["environ"].([]any) {
		if strings.Contains(kv.(string), "must-not-leak") {
			t.Errorf("host variable reached the plugin: %s", kv)
		}
	}
	// Only go-plugin's own variables, the fixed PATH and what Config.Env gave.
	want := []any{"GRANTED", "HWE_RUNNER_PLUGIN", "PATH", "PLUGIN_MAX_PORT", "PLUGIN_MIN_PORT", "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_UNIX_SOCKET_DIR"}
	if fmt.Sprint(v["names"]) != fmt.Sprint(want) {
		t.Errorf("plugin environment = %v, want %v", v["names"], want)
	}
	if !slices.Contains(v["environ"].([]any), any("PATH="+DefaultPATH)) {
		t.Errorf("PATH is not the fixed default: %v", v["environ"])
	}
}

func TestStartFailureIsReported(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "hwe-runner-bogus")
	if err := os.WriteFile(bogus, []byte("#!/bin/sh\necho not a plugin\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(bogus)
	c, err := NewClient(Config{Name: "bogus", Path: bogus, Checksum: sum, StartTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil)
	if err == nil || !strings.Contains(err.Error(), "runner bogus: starting "+bogus) {
		t.Fatalf("err = %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPluginOutputGoesToDebugLog(t *testing.T) {
	var logs syncBuffer
	cfg := BuiltinConfig(echoRunner{}.Info())
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), &api.StepRequest{Code: "print"}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := logs.String()
		if strings.Contains(out, "[DEBUG] echo.stdout: printed to stdout") && strings.Contains(out, "[DEBUG] echo.stderr: printed to stderr") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin output not in the debug log:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
