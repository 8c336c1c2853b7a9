package main

// What the OS sandbox costs per step, through the real runners as `hwe run`
// wires them (plugins of this binary, warm workers, the sandbox spawn hook):
// a warm Python step (a worker reused from step to step, so the sandbox is
// paid once per worker), a Python step with isolation = "process" (a fresh
// sandboxed worker every step) and a shell step (a fresh sandboxed bash
// every step).
//
// BenchmarkSandboxOff* is the baseline. BenchmarkSandboxOn* measures the
// default sandbox and then the baseline again in the same run, for the same
// number of steps, and reports the ratio as on/off.
//
//	go test -run '^$' -bench Sandbox ./host/cmd/hwe

import (
	"context"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/policy"
	"github.com/hwe-run/hwe/host/registry"
)

type sandboxBenchStep struct {
	lang, code, isolation string
}

var (
	benchPythonWarm    = sandboxBenchStep{lang: api.LangPython, code: "def run():\n    return {\"ok\": True}\n"}
	benchPythonProcess = sandboxBenchStep{lang: api.LangPython, code: benchPythonWarm.code, isolation: "process"}
	benchShell         = sandboxBenchStep{lang: api.LangShell, code: `echo '{"ok": true}'`}
)

func BenchmarkSandboxOffPythonWarm(b *testing.B)    { benchSandbox(b, benchPythonWarm, false) }
func BenchmarkSandboxOnPythonWarm(b *testing.B)     { benchSandbox(b, benchPythonWarm, true) }
func BenchmarkSandboxOffPythonProcess(b *testing.B) { benchSandbox(b, benchPythonProcess, false) }
func BenchmarkSandboxOnPythonProcess(b *testing.B)  { benchSandbox(b, benchPythonProcess, true) }
func BenchmarkSandboxOffShell(b *testing.B)         { benchSandbox(b, benchShell, false) }
func BenchmarkSandboxOnShell(b *testing.B)          { benchSandbox(b, benchShell, true) }

// benchSandbox times b.N steps with the sandbox on or off; with it on, it
// then times as many with it off and reports the ratio.
func benchSandbox(b *testing.B, step sandboxBenchStep, on bool) {
	run := newBenchRunner(b, step, on)
	defer run.close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run.step(b)
	}
	b.StopTimer()
	perStep := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perStep.Microseconds()), "µs/step")
	if !on {
		return
	}
	off := newBenchRunner(b, step, false)
	defer off.close()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		off.step(b)
	}
	offPerStep := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(offPerStep.Microseconds()), "off-µs/step")
	b.ReportMetric(float64(perStep)/float64(offPerStep), "on/off")
}

type benchRunner struct {
	reg *registry.Registry
	req *api.StepRequest
}

// newBenchRunner builds the runners `hwe run` uses with the sandbox setting
// given, and runs the step once so the plugin (and a warm worker) is up.
func newBenchRunner(b *testing.B, step sandboxBenchStep, on bool) *benchRunner {
	b.Helper()
	needInterpreters(b)
	setting := "off"
	if on {
		setting = "on"
	}
	cfg, err := config.Load(b.TempDir(), func(k string) string {
		if k == "HWE_SANDBOX" {
			return setting
		}
		return ""
	})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := runners(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r := &benchRunner{reg: reg, req: &api.StepRequest{
		RunID: "bench", Workflow: "sandbox_bench", Step: "s", Attempt: 1,
		Language: step.lang, LanguageAsWritten: step.lang, Code: step.code, Isolation: step.isolation,
		Grant: policy.Local().Effective(api.Grant{}), TempDir: b.TempDir(), Timeout: time.Minute,
	}}
	r.step(b)
	return r
}

func (r *benchRunner) step(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.reg.Execute(ctx, r.req, api.NopHost{})
	if err != nil {
		b.Fatalf("step failed: %v", err)
	}
	if string(out) != `{"ok": true}` && string(out) != `{"ok":true}` {
		b.Fatalf("step output %s", out)
	}
}

func (r *benchRunner) close() { r.reg.Close() }
