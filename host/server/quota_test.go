package server

import (
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/store"
)

// TestQueueBehindRunLimit: with one run slot, a second run waits queued
// (and shows in the queue-depth metric) until the first ends; a queued run
// can be cancelled before it starts.
func TestQueueBehindRunLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRuns = 1 })
	e.writeWorkflow("chain", chainWorkflow)
	open := e.exec.gate("b")
	first := e.startRun("chain", "")
	e.waitStep(first, "b", "running", "")
	second := e.startRun("chain", "")
	third := e.startRun("chain", "")
	time.Sleep(50 * time.Millisecond)
	if r := decode[store.Run](t, e.must("GET", "/api/v1/runs/"+second, "", "", 200)); r.Status != "queued" {
		t.Fatalf("second run is %s, want queued", r.Status)
	}
	if m := string(e.must("GET", "/metrics", "", "", 200)); !strings.Contains(m, "hwe_runs_queued 2") {
		t.Fatalf("queue depth not reported:\n%s", m)
	}
	e.must("POST", "/api/v1/runs/"+third+"/cancel", "", "", 202)
	if r := e.waitRun(third, ""); r.Status != "cancelled" || !strings.Contains(r.Error, "before it started") {
		t.Fatalf("cancelled queued run = %+v", r)
	}
	open()
	for _, id := range []string{first, second} {
		if r := e.waitRun(id, ""); r.Status != "succeeded" {
			t.Fatalf("run %s = %+v", id, r)
		}
	}
}

// TestScheduleSkipsOverlap: while a scheduled run is still going, the
// schedule does not start another one and the skip is audited.
func TestScheduleSkipsOverlap(t *testing.T) {
	e := newEnv(t)
	open := e.exec.gate("b")
	defer open()
	src := strings.Replace(chainWorkflow, `name = "chain",`, `name = "chain",
  schedule = "@every 1s",`, 1)
	e.must("PUT", "/api/v1/workflows/chain", "", src, 201)
	deadline := time.Now().Add(15 * time.Second)
	for {
		audit := decode[struct {
			Entries []store.AuditEntry `json:"entries"`
		}](t, e.must("GET", "/api/v1/audit", "", "", 200))
		skipped := 0
		for _, a := range audit.Entries {
			if a.Actor == "schedule" && a.Outcome == "skipped" {
				skipped++
			}
		}
		if skipped > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no skipped schedule in the audit log: %+v", audit.Entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
	runs := decode[struct {
		Total int `json:"total"`
	}](t, e.must("GET", "/api/v1/runs?workflow=chain", "", "", 200))
	if runs.Total != 1 {
		t.Fatalf("%d scheduled runs overlapped", runs.Total)
	}
}
