package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/workflow"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
)

const noop = "function run() return 1 end"

func chainSource(n int) string {
	var b strings.Builder
	b.WriteString("local steps = {}\n")
	fmt.Fprintf(&b, "for i = 1, %d do\n", n)
	b.WriteString(`  local s = { code = "function run() return 1 end" }
  if i > 1 then s.depends_on = { string.format("s%05d", i - 1) } end
  steps[string.format("s%05d", i)] = s
end
workflow = { name = "chain", steps = steps }
`)
	return b.String()
}

func fanoutSource(n int) string {
	return fmt.Sprintf(`local steps = { root = { code = %q } }
for i = 1, %d do steps["w" .. i] = { depends_on = { "root" }, code = %q } end
workflow = { name = "fanout", steps = steps }
`, noop, n, noop)
}

func benchWorkflow(b *testing.B, src string, steps int) {
	w, err := workflow.LoadSource("bench.lua", []byte(src), workflow.LoadOptions{EvalTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New()
	reg.Register(luarunner.New(luarunner.Options{}))
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := engine.Run(context.Background(), w, engine.Options{Executor: reg, TempDir: dir})
		if res.Status != engine.StatusSucceeded {
			b.Fatal(res.Error)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*steps), "µs/step")
}

// The baseline: the same no-op Lua step called directly on the runner, no engine.
func BenchmarkLuaStepDirect(b *testing.B) {
	r := luarunner.New(luarunner.Options{})
	req := &api.StepRequest{Step: "s", Code: noop}
	for i := 0; i < b.N; i++ {
		if _, err := r.Run(context.Background(), req, api.NopHost{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/step")
}

func BenchmarkChainLua1000(b *testing.B)  { benchWorkflow(b, chainSource(1000), 1000) }
func BenchmarkChainLua10000(b *testing.B) { benchWorkflow(b, chainSource(10000), 10000) }
func BenchmarkFanoutLua1000(b *testing.B) { benchWorkflow(b, fanoutSource(1000), 1001) }

// BenchmarkColdRun is `hwe run` of a one-step Lua workflow as a new process,
// against the baseline of starting /bin/true.
func BenchmarkColdRun(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "hwe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	wf := filepath.Join(dir, "one.lua")
	os.WriteFile(wf, []byte(`workflow = { name = "one", steps = { a = { code = "function run() return 1 end" } } }`), 0o644)
	var base time.Duration
	for i := 0; i < 5; i++ {
		t := time.Now()
		exec.Command("/bin/true").Run()
		base += time.Since(t)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "run", "--quiet", wf)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/run")
	b.ReportMetric(float64(base.Microseconds())/5000, "ms/true")
}
