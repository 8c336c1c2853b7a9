package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/store"
	"github.com/hwe-run/hwe/host/workflow"
)

const source = `workflow = {
  name = "chain",
  steps = {
    a = { language = "lua", code = [[ function run() return {n = 1} end ]] },
    b = { language = "lua", depends_on = {"a"}, code = [[ function run(i) return {n = 2} end ]] },
    c = { language = "lua", depends_on = {"b"}, code = [[ function run(i) return {n = 3} end ]] },
  },
}
`

// flaky fails step b until ok is set, and counts calls per step.
type flaky struct {
	ok    atomic.Bool
	calls map[string]*atomic.Int32
}

func (f *flaky) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	f.calls[req.Step].Add(1)
	host.Log("stdout", "running "+req.Step)
	if req.Step == "b" && !f.ok.Load() {
		return nil, &api.StepError{Message: "b is broken"}
	}
	return json.RawMessage(fmt.Sprintf(`{"step":%q}`, req.Step)), nil
}

func TestRecordAndResume(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wf, err := workflow.LoadSource("chain.lua", []byte(source), workflow.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &flaky{calls: map[string]*atomic.Int32{"a": {}, "b": {}, "c": {}}}

	rec, err := Create(ctx, st, wf, Meta{Tenant: "local", Trigger: "cli", Origin: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	var live []store.Event
	rec.OnStored(func(ev store.Event) { live = append(live, ev) })
	res := engine.Run(ctx, wf, engine.Options{RunID: rec.ID(), Executor: ex, OnEvent: rec.OnEvent})
	if res.Status != engine.StatusFailed || rec.Err() != nil {
		t.Fatalf("first attempt: %s %v", res.Status, rec.Err())
	}
	run, err := st.GetRun(ctx, rec.ID())
	if err != nil {
		t.Fatal(err)
	}
	if run.WorkflowID != "chain" || run.Workflow != "chain" || run.Status != store.StatusFailed || !strings.Contains(run.Error, "b is broken") {
		t.Fatalf("run = %+v", run)
	}
	want := map[string]string{"a": "succeeded", "b": "failed", "c": "skipped"}
	for _, s := range run.Steps {
		if s.Status != want[s.Name] {
			t.Fatalf("step %s is %s, want %s", s.Name, s.Status, want[s.Name])
		}
	}
	if len(live) == 0 || live[len(live)-1].Type != store.EventRunFinished || live[0].Seq != 1 {
		t.Fatalf("live events = %+v", live)
	}

	// Resume re-runs b and c only, reusing a's stored output.
	ex.ok.Store(true)
	r, err := Resume(ctx, st, rec.ID(), "tester", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Previous["a"]) != `{"step":"a"}` || len(r.Previous) != 1 || r.Attempt != 2 {
		t.Fatalf("resumable = %+v", r)
	}
	res = engine.Run(ctx, r.Workflow, engine.Options{RunID: rec.ID(), Executor: ex, Previous: r.Previous, OnEvent: r.Recorder.OnEvent})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("resume: %+v", res)
	}
	if ex.calls["a"].Load() != 1 || ex.calls["b"].Load() != 2 || ex.calls["c"].Load() != 1 {
		t.Fatalf("calls a=%d b=%d c=%d", ex.calls["a"].Load(), ex.calls["b"].Load(), ex.calls["c"].Load())
	}
	run, _ = st.GetRun(ctx, rec.ID())
	if run.Status != store.StatusSucceeded || run.Attempt != 2 || run.Error != "" {
		t.Fatalf("resumed run = %+v", run)
	}
	for _, s := range run.Steps {
		if s.Status != store.StatusSucceeded || string(s.Output) != fmt.Sprintf(`{"step":%q}`, s.Name) {
			t.Fatalf("step %+v", s)
		}
	}
	// a kept its first attempt's figures.
	if run.Steps[0].Attempts != 1 {
		t.Fatalf("a attempts = %d", run.Steps[0].Attempts)
	}
	// A succeeded run cannot be resumed.
	var se *store.StateError
	if _, err := Resume(ctx, st, rec.ID(), "", nil); !errors.As(err, &se) {
		t.Fatalf("resume of succeeded run: %v", err)
	}
	logs, _ := st.Events(ctx, rec.ID(), store.EventFilter{Types: []string{store.EventStepLog}})
	if len(logs) != 4 {
		t.Fatalf("%d log lines stored", len(logs))
	}
}
