package queue

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
)

// BenchmarkDispatchRoundTrip is one no-op step at a time through the queue
// (publish, a worker process takes it, result, run state) against the same
// step on the in-process executor, measured in the same run.
func BenchmarkDispatchRoundTrip(b *testing.B) {
	emb := startNATS(b, b.TempDir())
	ex := newExecutor(b, ExecutorConfig{URL: emb.ClientURL()})
	startWorkerProcess(b, emb.ClientURL(), "p1", 8, "")
	local := testRegistry("local")
	ctx := context.Background()
	req := func(run string, i int) *api.StepRequest {
		return &api.StepRequest{RunID: run, Workflow: "bench", Step: fmt.Sprintf("s%d", i), Attempt: 1, Language: langTest, Code: "{}"}
	}
	// Warm up the connection and the worker.
	for i := range 50 {
		if _, err := ex.Execute(ctx, req("warm", i), nil); err != nil {
			b.Fatal(err)
		}
	}
	run := engine.NewRunID()
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if _, err := ex.Execute(ctx, req(run, i), nil); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t))
	}
	b.StopTimer()
	base := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := local.Execute(ctx, req(run, i), api.NopHost{}); err != nil {
			b.Fatal(err)
		}
	}
	baseline := time.Since(base)
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs/step")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs/step")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/step")
	b.ReportMetric(float64(baseline.Nanoseconds())/1e3/float64(b.N), "inprocess-µs/step")
}

// BenchmarkThroughputTwoWorkers runs a fan-out of 2,000 no-op steps on two
// worker processes with 8 slots each, against the same workflow on the
// in-process executor, in the same run.
func BenchmarkThroughputTwoWorkers(b *testing.B) {
	const steps = 2000
	emb := startNATS(b, b.TempDir())
	ex := newExecutor(b, ExecutorConfig{URL: emb.ClientURL()})
	startWorkerProcess(b, emb.ClientURL(), "p1", 8, "")
	startWorkerProcess(b, emb.ClientURL(), "p2", 8, "")
	wf := fanout(steps, command{})
	local := testRegistry("local")
	ctx := context.Background()
	dir := b.TempDir()

	// Warm up.
	if res := engine.Run(ctx, fanout(200, command{}), engine.Options{Executor: ex, Concurrency: 256, TempDir: dir}); res.Status != engine.StatusSucceeded {
		b.Fatal(res.Error)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := engine.Run(ctx, wf, engine.Options{Executor: ex, Concurrency: 256, TempDir: dir})
		if res.Status != engine.StatusSucceeded {
			b.Fatal(res.Error)
		}
	}
	b.StopTimer()
	queued := b.Elapsed()
	base := time.Now()
	for i := 0; i < b.N; i++ {
		res := engine.Run(ctx, wf, engine.Options{Executor: local, Concurrency: 256, TempDir: dir})
		if res.Status != engine.StatusSucceeded {
			b.Fatal(res.Error)
		}
	}
	baseline := time.Since(base)
	b.ReportMetric(float64(b.N*(steps+1))/queued.Seconds(), "steps/s")
	b.ReportMetric(float64(b.N*(steps+1))/baseline.Seconds(), "inprocess-steps/s")
}
