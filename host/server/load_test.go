package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/store"
)

// wideWorkflow is a workflow of n Lua steps in layers of four: each step
// depends on every step of the layer before.
func wideWorkflow(n int) string {
	var b strings.Builder
	b.WriteString("workflow = {\n  name = \"wide\",\n  steps = {\n")
	for i := range n {
		deps := ""
		if layer := i / 4; layer > 0 {
			var ds []string
			for j := (layer - 1) * 4; j < layer*4; j++ {
				ds = append(ds, fmt.Sprintf("%q", fmt.Sprintf("s%02d", j)))
			}
			deps = "depends_on = {" + strings.Join(ds, ", ") + "}, "
		}
		fmt.Fprintf(&b, "    s%02d = { language = \"lua\", %scode = [[\nfunction run(inputs)\n  print(\"step %d\")\n  return { i = %d }\nend\n]] },\n", i, deps, i, i)
	}
	b.WriteString("  },\n}\n")
	return b.String()
}

// TestLoad50ConcurrentRuns starts 50 runs of a 20-step workflow at once
// through the API; every run must complete with every step, none lost.
func TestLoad50ConcurrentRuns(t *testing.T) {
	const runs, steps = 50, 20
	e := newEnv(t)
	e.writeWorkflow("wide", wideWorkflow(steps))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()

	ids := make([]string, runs)
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Post(e.ts.URL+"/api/v1/workflows/wide/runs", "application/json", nil)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 202 {
				errs <- fmt.Errorf("run %d: %d %s", i, resp.StatusCode, data)
				return
			}
			ids[i] = decode[map[string]string](t, data)["id"]
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var peak runtime.MemStats
	for _, id := range ids {
		run := e.waitRun(id, "")
		runtime.ReadMemStats(&peak)
		if run.Status != "succeeded" || len(run.Steps) != steps {
			t.Fatalf("run %s: %s with %d steps: %s", id, run.Status, len(run.Steps), run.Error)
		}
		for _, s := range run.Steps {
			if s.Status != "succeeded" || s.Output == nil {
				t.Fatalf("run %s step %s: %+v", id, s.Name, s)
			}
		}
	}
	elapsed := time.Since(start)
	list, total, _ := e.store.ListRuns(context.Background(), store.RunFilter{Status: "succeeded", Limit: 500})
	if total != runs || len(list) != runs {
		t.Fatalf("history has %d succeeded runs, want %d", total, runs)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("%d runs × %d steps in %s (%.0f steps/s); heap %d MiB before, %d MiB at the end, %d MiB total allocated, %d goroutines",
		runs, steps, elapsed.Round(time.Millisecond), float64(runs*steps)/elapsed.Seconds(),
		before.HeapAlloc>>20, after.HeapAlloc>>20, (after.TotalAlloc-before.TotalAlloc)>>20, runtime.NumGoroutine())
	m := string(e.must("GET", "/metrics", "", "", 200))
	if !strings.Contains(m, fmt.Sprintf(`hwe_steps_total{runner="lua",status="succeeded"} %d`, runs*steps)) {
		t.Fatalf("metrics disagree:\n%s", m)
	}
}

// BenchmarkRunStart measures POST /workflows/{name}/runs until the 202,
// against GET /healthz on the same server as the baseline; it reports the
// ratio as x-healthz.
func BenchmarkRunStart(b *testing.B) {
	e := newBenchEnv(b)
	e.writeWorkflow("one", "workflow = { name = 'one', steps = { a = { language = 'lua', code = [[ function run() return 1 end ]] } } }\n")
	client := e.ts.Client()
	do := func(method, path string, want int) {
		req, _ := http.NewRequest(method, e.ts.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != want {
			b.Fatalf("%s %s: %v %v", method, path, err, resp)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	const baselineN = 2000
	t0 := time.Now()
	for range baselineN {
		do("GET", "/healthz", 200)
	}
	baseline := time.Since(t0) / baselineN
	b.ResetTimer()
	for b.Loop() {
		do("POST", "/api/v1/workflows/one/runs", 202)
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perOp)/float64(baseline), "x-healthz")
	waitIdle(b, e.srv)
}

// BenchmarkEventsDelivered measures log events delivered to an SSE client
// while a step prints them, against appending the same number of events
// straight to the store (the baseline); it reports events/s and the ratio.
func BenchmarkEventsDelivered(b *testing.B) {
	const lines = 2000
	e := newBenchEnv(b)
	e.writeWorkflow("talk", fmt.Sprintf("workflow = { name = 'talk', steps = { a = { language = 'lua', code = [[ function run() for i = 1, %d do print('line ' .. i) end return 1 end ]] } } }\n", lines))
	open := e.exec.gate("a")
	// Baseline: the store alone.
	id0, _ := e.store.CreateRun(context.Background(), store.NewRun{Tenant: "local", WorkflowID: "x"})
	t0 := time.Now()
	for i := range lines {
		e.store.AppendEvent(context.Background(), &store.Event{RunID: id0, Type: store.EventStepLog, Step: "a", Line: fmt.Sprint("line ", i)})
	}
	storeRate := float64(lines) / time.Since(t0).Seconds()
	open()
	var delivered int
	b.ResetTimer()
	for b.Loop() {
		id := e.startRun("talk", "")
		resp := openStreamB(b, e, id)
		evs := readSSE(nil, resp.Body, nil)
		resp.Body.Close()
		delivered += len(evs)
	}
	b.StopTimer()
	rate := float64(delivered) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rate/storeRate, "x-store")
	waitIdle(b, e.srv)
}

func openStreamB(b *testing.B, e *testEnv, runID string) *http.Response {
	resp, err := e.ts.Client().Get(e.ts.URL + "/api/v1/runs/" + runID + "/events")
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("stream: %v %v", err, resp)
	}
	return resp
}

func waitIdle(b *testing.B, s *Server) {
	for s.runs.count() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
}
