package queue

import (
	"context"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/engine"
)

// TestStepsRunOnWorker: steps go through NATS to an in-process worker and
// come back with their outputs, in DAG order.
func TestStepsRunOnWorker(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "w1", Slots: 4})

	wf := testWorkflow("basic", []stepSpec{
		{name: "a"},
		{name: "b", deps: []string{"a"}},
		{name: "c", deps: []string{"a"}},
		{name: "d", deps: []string{"b", "c"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, _ := runWorkflow(t, ctx, wf, engine.Options{Executor: ex})
	requireSucceeded(t, res)
	for _, s := range res.Steps {
		out := stepOutput(t, s)
		if out["step"] != s.Name || out["worker"] != "w1" {
			t.Errorf("step %s output %v", s.Name, out)
		}
	}
	d := stepOutput(t, res.Steps[3])
	if got := d["inputs"].([]any); len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Errorf("d's inputs: %v", got)
	}
	st := waitStats(ex, func(st Stats) bool { return st.Applied == 4 })
	if st.Published != 4 || st.Applied != 4 || st.Duplicates != 0 {
		t.Errorf("stats %+v", st)
	}
}
