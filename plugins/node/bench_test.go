package node

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

const benchCode = "function run(inputs) {\n  return { n: inputs.prev.n + 1 };\n}\n"

// spawnStep is the baseline, the reference's way: a fresh node per step
// with the inputs, the code and the trailer in one script.
func spawnStep(interpreter, code string, inputs json.RawMessage) (json.RawMessage, error) {
	script := "const inputs = " + string(inputs) + ";\n" + code +
		"\nlet result = run(inputs);\nconsole.log(JSON.stringify(typeof result === 'object' ? result : { value: result }));\n"
	out, err := exec.Command(interpreter, "-e", script).Output()
	if err != nil {
		return nil, err
	}
	return ParseOutput(string(out))
}

func spawnBaseline(b *testing.B, interpreter string) time.Duration {
	const n = 5
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := spawnStep(interpreter, benchCode, json.RawMessage(`{"prev":{"n":1}}`)); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / n
}

// BenchmarkWarmNode is one small step on a warm worker, in the run's
// scratch folder as the engine runs it. x-vs-spawn is the speed-up over a
// fresh node per step measured in the same run.
func BenchmarkWarmNode(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	interp, err := r.Interpreter()
	if err != nil {
		b.Fatal(err)
	}
	req := step("bench", benchCode, map[string]string{"prev": `{"n":1}`})
	req.TempDir = b.TempDir()
	host := api.NopHost{}
	for i := 0; i < 5; i++ { // warm up, so -benchtime 1x is meaningful too
		if _, err := r.Run(context.Background(), req, host); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		out, err := r.Run(context.Background(), req, host)
		if err != nil || string(out) != `{"n":2}` {
			b.Fatalf("%s %v", out, err)
		}
	}
	perStep := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	b.ReportMetric(float64(spawnBaseline(b, interp))/float64(perStep), "x-vs-spawn")
}

func BenchmarkSpawnPerStepNode(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	interp, err := r.Interpreter()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		out, err := spawnStep(interp, benchCode, json.RawMessage(`{"prev":{"n":1}}`))
		if err != nil || !strings.Contains(string(out), `"n":2`) {
			b.Fatalf("%s %v", out, err)
		}
	}
}
