package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// BenchmarkNoopRun compares one no-op step through the plugin (gRPC over a
// unix socket to a subprocess and back) with calling the same runner in
// process. The plugin case also reports its cost as a multiple of the
// in-process call measured in the same run.
func BenchmarkNoopRun(b *testing.B) {
	ctx := context.Background()
	req := &api.StepRequest{Step: "s", Code: "noop"}
	inProcess := func(n int) time.Duration {
		r := echoRunner{}
		start := time.Now()
		for range n {
			if _, err := r.Run(ctx, req, api.NopHost{}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / time.Duration(n)
	}
	b.Run("in-process", func(b *testing.B) {
		r := echoRunner{}
		for b.Loop() {
			if _, err := r.Run(ctx, req, api.NopHost{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin", func(b *testing.B) {
		c := newEchoClient(b)
		if _, err := c.Run(ctx, req, nil); err != nil { // launch outside the timing
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Run(ctx, req, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		perOp := b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(perOp)/float64(inProcess(100000)), "x-in-process")
	})
}

// BenchmarkEchoRun is a step with 1 KiB of inputs that logs a line and reads
// a KV key: three round trips across the process boundary.
func BenchmarkEchoRun(b *testing.B) {
	ctx := context.Background()
	req := &api.StepRequest{Step: "s", Code: "echo", Inputs: map[string]json.RawMessage{
		"prev": json.RawMessage(`"` + strings.Repeat("x", 1024) + `"`),
	}}
	host := newFakeHost()
	host.kv["greeting"] = []byte("hi")
	c := newEchoClient(b)
	if _, err := c.Run(ctx, req, host); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Run(ctx, req, host); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLaunch is the cost of starting a plugin process, handshaking,
// configuring it and running its first step: what a crash costs the next step.
func BenchmarkLaunch(b *testing.B) {
	req := &api.StepRequest{Step: "s", Code: "noop"}
	for b.Loop() {
		c := newEchoClient(b)
		if _, err := c.Run(context.Background(), req, nil); err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
}
