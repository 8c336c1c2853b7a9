package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/store"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
	"github.com/urfave/cli/v2"
)

// fileGateExecutor runs Lua steps, but step "b" waits until the file
// DIR/release exists: a gate that survives across processes.
type fileGateExecutor struct {
	lua   *luarunner.Runner
	dir   string
	calls map[string]*atomic.Int32
}

func newFileGateExecutor(dir string) *fileGateExecutor {
	return &fileGateExecutor{lua: luarunner.New(luarunner.Options{}), dir: dir,
		calls: map[string]*atomic.Int32{"a": {}, "b": {}, "c": {}}}
}

func (f *fileGateExecutor) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	if c := f.calls[req.Step]; c != nil {
		c.Add(1)
	}
	if req.Step == "b" {
		for {
			if _, err := os.Stat(filepath.Join(f.dir, "release")); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return f.lua.Run(ctx, req, host)
}

// TestHelperServe is not a test: it is `hwe serve` in a child process for
// TestCrashAndResume (the test binary re-executes itself).
func TestHelperServe(t *testing.T) {
	dir := os.Getenv("HWE_HELPER_SERVE_DIR")
	if dir == "" {
		return
	}
	st, err := store.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := Config{Addr: "127.0.0.1:0", Executor: newFileGateExecutor(dir), Store: st, WorkflowsDir: filepath.Join(dir, "workflows"),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	err = Serve(ctx, cfg, func(a net.Addr) {
		os.WriteFile(filepath.Join(dir, "addr.tmp"), []byte(a.String()), 0o644)
		os.Rename(filepath.Join(dir, "addr.tmp"), filepath.Join(dir, "addr"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startHelper starts a server process over dir and returns it and its URL.
func startHelper(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	os.Remove(filepath.Join(dir, "addr"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HWE_HELPER_SERVE_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "addr")); err == nil {
			return cmd, "http://" + string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper server did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getRun(t *testing.T, base, id string) store.Run {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/runs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return decode[store.Run](t, data)
}

// TestCrashAndResume kills `hwe serve` (SIGKILL) in the middle of a run,
// restarts it on the same data folder, finds the finished step in the
// history and the run marked interrupted, and completes it with
// `hwe runs resume`, which does not run the finished step again.
func TestCrashAndResume(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "workflows"), 0o755)
	os.WriteFile(filepath.Join(dir, "workflows", "chain.lua"), []byte(chainWorkflow), 0o644)

	proc, base := startHelper(t, dir)
	resp, err := http.Post(base+"/api/v1/workflows/chain/runs", "application/json", nil)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("start: %v %v", err, resp)
	}
	var started map[string]string
	json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	id := started["id"]
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := stepsByName(getRun(t, base, id))
		if s["a"].Status == "succeeded" && s["b"].Status == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run never reached step b: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	proc.Process.Kill() // no chance to record anything more
	proc.Wait()

	_, base = startHelper(t, dir)
	run := getRun(t, base, id)
	s := stepsByName(run)
	if run.Status != "interrupted" || s["a"].Status != "succeeded" || string(s["a"].Output) != `{"n":1}` ||
		s["b"].Status == "succeeded" || s["c"].Status == "succeeded" {
		t.Fatalf("after the crash: %+v", run)
	}

	// `hwe runs resume ID`, in process, with an executor that now lets b through.
	os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
	ex := newFileGateExecutor(dir)
	var out, errOut bytes.Buffer
	app := &cli.App{Writer: &out, ErrWriter: &errOut, Commands: Commands(Deps{
		Runtime: func(*cli.Context) (*Runtime, error) { return &Runtime{Executor: ex}, nil },
	})}
	if err := app.Run([]string{"hwe", "runs", "resume", "--data", filepath.Join(dir, "data"), "--json", id}); err != nil {
		t.Fatalf("resume: %v\n%s%s", err, out.String(), errOut.String())
	}
	if ex.calls["a"].Load() != 0 || ex.calls["b"].Load() != 1 || ex.calls["c"].Load() != 1 {
		t.Fatalf("resume ran a=%d b=%d c=%d; a had already succeeded", ex.calls["a"].Load(), ex.calls["b"].Load(), ex.calls["c"].Load())
	}
	var resumed store.Run
	if err := json.Unmarshal(out.Bytes(), &resumed); err != nil {
		t.Fatalf("resume --json printed %q: %v", out.String(), err)
	}
	if resumed.Status != "succeeded" || string(stepsByName(resumed)["c"].Output) != `{"n":3}` {
		t.Fatalf("resumed run = %+v", resumed)
	}
	// The restarted server sees the completed run too.
	if got := getRun(t, base, id); got.Status != "succeeded" || got.Attempt != 2 {
		t.Fatalf("server view after resume: %+v", got)
	}
	// `hwe runs list` and `show` read the same history.
	out.Reset()
	if err := app.Run([]string{"hwe", "runs", "list", "--data", filepath.Join(dir, "data")}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "succeeded") {
		t.Fatalf("runs list:\n%s", out.String())
	}
	out.Reset()
	if err := app.Run([]string{"hwe", "runs", "show", "--logs", "--data", filepath.Join(dir, "data"), id}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "a says hi") || !strings.Contains(out.String(), `{"n":3}`) {
		t.Fatalf("runs show:\n%s", out.String())
	}
}

// TestGracefulShutdownRecordsRunning: a server shut down mid-run records
// the run as interrupted with its finished steps; a new server on the same
// history retries it to completion.
func TestGracefulShutdownRecordsRunning(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wfDir := filepath.Join(dir, "workflows")
	os.MkdirAll(wfDir, 0o755)
	os.WriteFile(filepath.Join(wfDir, "chain.lua"), []byte(chainWorkflow), 0o644)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	ex := newGateExecutor()
	open := ex.gate("b")
	defer open()
	srv, err := New(Config{Executor: ex, Store: st, WorkflowsDir: wfDir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptestServer(srv)
	e := &testEnv{t: t, srv: srv, ts: ts, store: st, exec: ex}
	id := e.startRun("chain", "")
	e.waitStep(id, "b", "running", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	run, _ := st.GetRun(context.Background(), id)
	s := stepsByName(*run)
	if run.Status != "interrupted" || !strings.Contains(run.Error, "shut down") || s["a"].Status != "succeeded" || s["b"].Status != "cancelled" {
		t.Fatalf("after shutdown: %+v", run)
	}
	// New runs are refused while shutting down.
	if _, err := srv.runs.start(context.Background(), startRequest{tenant: srv.order[0]}); err != errShutdown {
		t.Fatalf("start after shutdown: %v", err)
	}

	ex2 := newGateExecutor()
	srv2, err := New(Config{Executor: ex2, Store: st, WorkflowsDir: wfDir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptestServer(srv2)
	defer ts2.Close()
	defer srv2.Shutdown(context.Background())
	e2 := &testEnv{t: t, srv: srv2, ts: ts2, store: st, exec: ex2}
	e2.must("POST", "/api/v1/runs/"+id+"/retry", "", "", 202)
	run2 := e2.waitRun(id, "")
	if run2.Status != "succeeded" || ex2.callCount("a") != 0 || ex2.callCount("b") != 1 {
		t.Fatalf("retry after shutdown: %+v (a ran %d times)", run2, ex2.callCount("a"))
	}
}
