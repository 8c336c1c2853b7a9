package python

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

const benchCode = "def run(inputs):\n    return {'n': inputs['prev']['n'] + 1}\n"

// spawnStep is the baseline: a fresh interpreter per step (the real binary,
// not a shim), inputs on stdin, the result on stdout.
func spawnStep(interpreter, code string, inputs json.RawMessage) (json.RawMessage, error) {
	script := code + "\nimport json, sys\nprint(json.dumps(run(json.load(sys.stdin))))\n"
	cmd := exec.Command(interpreter, "-I", "-c", script)
	cmd.Stdin = strings.NewReader(string(inputs))
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	return api.Canonicalize(out)
}

// spawnBaseline measures the spawn-per-step cost now, so a warm benchmark
// reports its speed-up against a baseline from the same run.
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

// BenchmarkWarmPython is one small step on a warm worker. "tempdir" is how
// the engine runs steps (in the run's scratch folder); "private-dir" is a
// step given no folder (it runs in the worker's own, emptied afterwards).
// x-vs-spawn is the speed-up over a fresh interpreter per step.
func BenchmarkWarmPython(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	interp, err := r.Interpreter()
	if err != nil {
		b.Fatal(err)
	}
	tempDir := b.TempDir()
	for _, mode := range []string{"tempdir", "private-dir"} {
		b.Run(mode, func(b *testing.B) {
			req := step("bench", benchCode, map[string]string{"prev": `{"n":1}`})
			if mode == "tempdir" {
				req.TempDir = tempDir
			}
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
		})
	}
}

func BenchmarkSpawnPerStepPython(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	interp, err := r.Interpreter()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		out, err := spawnStep(interp, benchCode, json.RawMessage(`{"prev":{"n":1}}`))
		if err != nil || string(out) != `{"n":2}` {
			b.Fatalf("%s %v", out, err)
		}
	}
}

// BenchmarkPythonFib40 is Windmill's "40 lightweight tasks": 40 sequential
// Python steps computing fib(10), each fed the previous step's output. One
// op is the whole chain.
func BenchmarkPythonFib40(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	tempDir := b.TempDir()
	const code = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\ndef run(inputs=None):\n    prev = inputs['prev']['step'] if inputs else 0\n    return {'step': prev + 1, 'fib': fib(10)}\n"
	ctx := context.Background()
	host := api.NopHost{}
	if _, err := r.Run(ctx, step("warmup", code, nil), host); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var prev json.RawMessage
		for s := 1; s <= 40; s++ {
			req := step(fmt.Sprintf("fib%d", s), code, nil)
			req.TempDir = tempDir
			if prev != nil {
				req.Inputs = map[string]json.RawMessage{"prev": prev}
			}
			out, err := r.Run(ctx, req, host)
			if err != nil {
				b.Fatal(err)
			}
			prev = out
		}
		if string(prev) != `{"fib":55,"step":40}` {
			b.Fatalf("chain ended with %s", prev)
		}
	}
}
