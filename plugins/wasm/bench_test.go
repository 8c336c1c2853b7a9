package wasm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Per-step overhead of a cached no-op module: everything hwe does around a
// call (resolve and stat the file, find the compiled module, get an
// instance, set up limits, call, build the result). The target is at most
// 150 µs per step. The reference recompiled the module on every step; the
// "recompile" baseline does that (a fresh runtime, compile, instantiate,
// call) with an in-memory cache only, so the ratio shows what caching buys.
func BenchmarkStepOverhead(b *testing.B) {
	ctx := context.Background()
	r := newTestRunner(b, Options{})
	host := api.NopHost{}
	cases := []struct{ name, module, fn string }{
		{"native_noop", "native.wasm", "noop"},
		{"native_echo", "native.wasm", "echo"},
		{"reference_rc0", "reference.wasm", "rc0"},
	}
	for _, c := range cases {
		b.Run("cached/"+c.name, func(b *testing.B) {
			req := step(fixture(b, c.module), c.fn)
			req.Inputs = inputs("generate_input", `{"numbers":[1,2,3,4,5,6,7,8,9,10]}`)
			mustRun(b, r, req, host) // compile and warm the pool
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Run(ctx, req, host); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Instances are reused only by later runs of the same step (scopeOf):
	// every other step of a workflow instantiates the cached module afresh.
	for _, c := range cases[:1] {
		b.Run("cached_new_instance/"+c.name, func(b *testing.B) {
			req := step(fixture(b, c.module), c.fn)
			mustRun(b, r, req, host)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				req.Step = "s" + strconv.Itoa(i)
				if _, err := r.Run(ctx, req, host); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, c := range cases[:1] {
		b.Run("recompile_every_step/"+c.name, func(b *testing.B) {
			req := step(fixture(b, c.module), c.fn)
			b.ReportAllocs()
			for b.Loop() {
				fresh := New(Options{NoDiskCache: true})
				if _, err := fresh.Run(ctx, req, host); err != nil {
					b.Fatal(err)
				}
				_ = fresh.Close()
			}
		})
	}
}

// loadHelperEnv makes the test binary a helper process that loads one
// module through a fresh Runner and reports how long the first step took
// (see BenchmarkGoGuestLoad).
const loadHelperEnv = "HWE_WASM_LOAD_HELPER"

func loadHelper() int {
	start := time.Now()
	r := New(Options{CacheDir: os.Getenv("HWE_WASM_CACHE_DIR")})
	req := &api.StepRequest{Step: "stats", Module: os.Getenv("HWE_WASM_MODULE"), Function: "stats",
		Inputs: inputs("generate", `{"numbers":[1,2,3]}`)}
	_, err := r.Run(context.Background(), req, api.NopHost{})
	took := time.Since(start)
	_ = r.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("first_step_ns=%d\n", took.Nanoseconds())
	return 0
}

// runLoadHelper starts a new process that runs the Go guest's first step
// with cacheDir and returns the time that step took inside the process.
func runLoadHelper(b *testing.B, module, cacheDir string) time.Duration {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadHelperEnv+"=1", "HWE_WASM_CACHE_DIR="+cacheDir, "HWE_WASM_MODULE="+module)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("helper: %v\n%s", err, out)
	}
	var ns int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "first_step_ns=%d", &ns); err != nil {
		b.Fatalf("helper output %q: %v", out, err)
	}
	return time.Duration(ns)
}

// A multi-megabyte Go guest (the Go SDK's example step) in a new process:
// compiled cold (an empty cache directory), and served from a disk cache an
// earlier process filled. ns/op is the first step's time inside the new
// process (create the Runner, load or compile, instantiate, initialise the
// Go runtime, call); the target from the cache is at most 150 ms.
func BenchmarkGoGuestLoad(b *testing.B) {
	module := filepath.Join(repoRoot(b), "workflows", "wasm_go_stats.wasm")
	if fi, err := os.Stat(module); err == nil {
		b.Logf("module %s: %.1f MB", filepath.Base(module), float64(fi.Size())/1e6)
	}
	b.Run("new_process/cold_compile", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			total += runLoadHelper(b, module, b.TempDir())
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	})
	b.Run("new_process/disk_cache", func(b *testing.B) {
		dir := b.TempDir()
		runLoadHelper(b, module, dir) // an earlier process fills the cache
		var total time.Duration
		for b.Loop() {
			total += runLoadHelper(b, module, dir)
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	})
}
