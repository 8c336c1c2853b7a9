package server

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of the server's
// own (so two servers in one process, as in tests, never collide).
type metrics struct {
	active  atomic.Int64 // runs executing
	queued  atomic.Int64 // runs waiting for a slot (queue depth)
	streams atomic.Int64 // open event streams
	events  atomic.Int64 // events recorded and published

	registry     *prometheus.Registry
	handler      http.Handler
	runsStarted  *prometheus.CounterVec
	runsFinished *prometheus.CounterVec
	runDuration  prometheus.Histogram
	steps        *prometheus.CounterVec
	stepDuration *prometheus.HistogramVec
	requests     *prometheus.CounterVec
}

var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

func newMetrics() *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.runsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hwe_runs_started_total", Help: "Runs started, by trigger."}, []string{"trigger"})
	m.runsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hwe_runs_finished_total", Help: "Runs finished, by status."}, []string{"status"})
	m.runDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hwe_run_duration_seconds", Help: "Run durations.", Buckets: durationBuckets})
	m.steps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hwe_steps_total", Help: "Steps finished, by runner and status."}, []string{"runner", "status"})
	m.stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hwe_step_duration_seconds", Help: "Step durations, by runner.", Buckets: durationBuckets}, []string{"runner"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hwe_http_requests_total", Help: "HTTP requests, by status class."}, []string{"code"})
	gauge := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	m.registry.MustRegister(
		m.runsStarted, m.runsFinished, m.runDuration, m.steps, m.stepDuration, m.requests,
		gauge("hwe_runs_active", "Runs executing now.", &m.active),
		gauge("hwe_runs_queued", "Runs waiting for a slot (queue depth).", &m.queued),
		gauge("hwe_event_streams", "Open server-sent event streams.", &m.streams),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hwe_events_total", Help: "Run events recorded."}, func() float64 { return float64(m.events.Load()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) runStarted(trigger string) { m.runsStarted.WithLabelValues(trigger).Inc() }

func (m *metrics) runFinished(status string, d time.Duration) {
	m.runsFinished.WithLabelValues(status).Inc()
	m.runDuration.Observe(d.Seconds())
}

func (m *metrics) stepFinished(runner, status string, d time.Duration) {
	m.steps.WithLabelValues(runner, status).Inc()
	m.stepDuration.WithLabelValues(runner).Observe(d.Seconds())
}

func (m *metrics) request(code int) { m.requests.WithLabelValues(fmt.Sprintf("%dxx", code/100)).Inc() }

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ *identity) {
	s.metrics.handler.ServeHTTP(w, r)
}
