package server

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are the server's Prometheus metrics, written in the text
// exposition format by hand: a handful of counters and histograms do not
// need client_golang's dependency tree.
type metrics struct {
	active  atomic.Int64 // runs executing
	queued  atomic.Int64 // runs waiting for a slot (queue depth)
	streams atomic.Int64 // open event streams
	events  atomic.Int64 // events recorded and published

	mu           sync.Mutex
	runsStarted  map[string]float64 // by trigger
	runsFinished map[string]float64 // by status
	runDuration  *histogram
	steps        map[[2]string]float64 // by runner, status
	stepDuration map[string]*histogram // by runner
	requests     map[string]float64    // by status code class
}

var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

func newMetrics() *metrics {
	return &metrics{
		runsStarted: map[string]float64{}, runsFinished: map[string]float64{}, runDuration: newHistogram(durationBuckets),
		steps: map[[2]string]float64{}, stepDuration: map[string]*histogram{}, requests: map[string]float64{},
	}
}

func (m *metrics) runStarted(trigger string) {
	m.mu.Lock()
	m.runsStarted[trigger]++
	m.mu.Unlock()
}

func (m *metrics) runFinished(status string, d time.Duration) {
	m.mu.Lock()
	m.runsFinished[status]++
	m.runDuration.observe(d.Seconds())
	m.mu.Unlock()
}

func (m *metrics) stepFinished(runner, status string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.steps[[2]string{runner, status}]++
	h := m.stepDuration[runner]
	if h == nil {
		h = newHistogram(durationBuckets)
		m.stepDuration[runner] = h
	}
	h.observe(d.Seconds())
}

func (m *metrics) request(code int) {
	m.mu.Lock()
	m.requests[fmt.Sprintf("%dxx", code/100)]++
	m.mu.Unlock()
}

// write renders every metric.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	counterVec(w, "hwe_runs_started_total", "Runs started, by trigger.", "trigger", m.runsStarted)
	counterVec(w, "hwe_runs_finished_total", "Runs finished, by status.", "status", m.runsFinished)
	m.runDuration.write(w, "hwe_run_duration_seconds", "Run durations.", "")
	fmt.Fprintf(w, "# HELP hwe_steps_total Steps finished, by runner and status.\n# TYPE hwe_steps_total counter\n")
	keys := make([][2]string, 0, len(m.steps))
	for k := range m.steps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "hwe_steps_total{runner=%s,status=%s} %g\n", quote(k[0]), quote(k[1]), m.steps[k])
	}
	runners := make([]string, 0, len(m.stepDuration))
	for r := range m.stepDuration {
		runners = append(runners, r)
	}
	sort.Strings(runners)
	fmt.Fprintf(w, "# HELP hwe_step_duration_seconds Step durations, by runner.\n# TYPE hwe_step_duration_seconds histogram\n")
	for _, r := range runners {
		m.stepDuration[r].write(w, "hwe_step_duration_seconds", "", "runner="+quote(r))
	}
	gauge(w, "hwe_runs_active", "Runs executing now.", float64(m.active.Load()))
	gauge(w, "hwe_runs_queued", "Runs waiting for a slot (queue depth).", float64(m.queued.Load()))
	gauge(w, "hwe_event_streams", "Open server-sent event streams.", float64(m.streams.Load()))
	fmt.Fprintf(w, "# HELP hwe_events_total Run events recorded.\n# TYPE hwe_events_total counter\nhwe_events_total %d\n", m.events.Load())
	counterVec(w, "hwe_http_requests_total", "HTTP requests, by status class.", "code", m.requests)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge(w, "hwe_go_heap_bytes", "Go heap in use.", float64(ms.HeapAlloc))
	gauge(w, "hwe_go_goroutines", "Goroutines.", float64(runtime.NumGoroutine()))
}

func counterVec(w io.Writer, name, help, label string, values map[string]float64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s{%s=%s} %g\n", name, label, quote(k), values[k])
	}
}

func gauge(w io.Writer, name, help string, v float64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
}

// quote renders a label value: backslash, double quote and newline escaped.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, not cumulative
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *histogram) observe(v float64) {
	h.sum += v
	h.count++
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
			return
		}
	}
}

// write renders the histogram; help "" skips the HELP/TYPE header (for the
// second and later label sets of one metric).
func (h *histogram) write(w io.Writer, name, help, labels string) {
	if help != "" {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	}
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%g\"} %d\n", name, labels, sep, b, cum)
	}
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.count)
	brace := func(s string) string {
		if s == "" {
			return ""
		}
		return "{" + s + "}"
	}
	sum := h.sum
	if math.IsNaN(sum) {
		sum = 0
	}
	fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", name, brace(labels), sum, name, brace(labels), h.count)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ *identity) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
}
