package wasm

import (
	"context"
	"testing"

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
