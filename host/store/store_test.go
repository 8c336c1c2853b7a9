package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNewIDSortsByTime(t *testing.T) {
	a := NewID()
	time.Sleep(2 * time.Millisecond)
	b := NewID()
	if len(a) != 26 || len(b) != 26 {
		t.Fatalf("id lengths %d %d", len(a), len(b))
	}
	if !(a < b) {
		t.Fatalf("ids do not sort by time: %s !< %s", a, b)
	}
	if !ValidID(a) || ValidID("../x") || ValidID("") {
		t.Fatal("ValidID is wrong")
	}
}

func TestRunLifecycleFoldsEvents(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	id, err := s.CreateRun(ctx, NewRun{Tenant: "local", WorkflowID: "wf", Workflow: "demo", File: "workflows/wf.lua",
		Trigger: "api", Source: []byte("src"),
		Plan: []PlannedStep{{Name: "a", Language: "lua"}, {Name: "b", Language: "python", DependsOn: []string{"a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.StartRun(ctx, id, now); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []Event{
		{Type: EventRunStarted},
		{Type: EventStepStarted, Step: "a", Attempt: 1},
		{Type: EventStepLog, Step: "a", Stream: "stdout", Line: "hello"},
		{Type: EventStepFinished, Step: "a", Status: StatusSucceeded, Attempt: 1, DurationMS: 5},
		{Type: EventStepOutput, Step: "a", Output: json.RawMessage(`{"x":1}`)},
		{Type: EventStepLog, Step: "a", Stream: "stdout", Line: "<b>&</b>"},
		{Type: EventStepStarted, Step: "b", Attempt: 1},
		{Type: EventStepRetry, Step: "b", Attempt: 2, Error: "boom"},
		{Type: EventStepFinished, Step: "b", Status: StatusFailed, Attempt: 2, Error: "boom again", DurationMS: 7},
	} {
		ev.RunID = id
		ev.Time = now
		if err := s.AppendEvent(ctx, &ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRun(ctx, id, StatusFailed, "step b failed", now, 12); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusFailed || r.Error != "step b failed" || r.DurationMS != 12 || string(r.Source) != "src" {
		t.Fatalf("run = %+v", r)
	}
	if len(r.Steps) != 2 {
		t.Fatalf("steps = %+v", r.Steps)
	}
	a, b := r.Steps[0], r.Steps[1]
	if a.Status != StatusSucceeded || string(a.Output) != `{"x":1}` || a.Attempts != 1 || a.DurationMS != 5 {
		t.Fatalf("step a = %+v", a)
	}
	if b.Status != StatusFailed || b.Error != "boom again" || b.Attempts != 2 || b.Output != nil {
		t.Fatalf("step b = %+v", b)
	}
	if got := r.Outputs(); len(got) != 1 || string(got["a"]) != `{"x":1}` {
		t.Fatalf("outputs = %v", got)
	}
	// The JSON shape is `hwe run --json` plus id.
	data, _ := json.Marshal(r)
	for _, want := range []string{`"id":"` + id, `"workflow":"demo"`, `"file":"workflows/wf.lua"`, `"status":"failed"`,
		`"duration_ms":12`, `"steps":[{"name":"a","language":"lua","status":"succeeded","output":{"x":1},"attempts":1,"duration_ms":5`,
		`"output":null`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s:\n%s", want, data)
		}
	}

	// Events replay in order with sequence numbers, and can be filtered.
	evs, err := s.Events(ctx, id, EventFilter{})
	if err != nil || len(evs) != 9 {
		t.Fatalf("events = %d, %v", len(evs), err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.RunID != id {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
	logs, _ := s.Events(ctx, id, EventFilter{Types: []string{EventStepLog}})
	if len(logs) != 2 || logs[0].Line != "hello" || logs[0].Seq != 3 || logs[1].Line != "<b>&</b>" {
		t.Fatalf("logs = %+v", logs)
	}
	var raw string
	s.db.QueryRow(`SELECT data FROM events WHERE run_id = ? AND seq = 6`, id).Scan(&raw)
	if !strings.Contains(raw, `"line":"<b>&</b>"`) {
		t.Fatalf("stored with HTML escaping: %s", raw)
	}
	after, _ := s.Events(ctx, id, EventFilter{After: 7})
	if len(after) != 2 || after[0].Seq != 8 {
		t.Fatalf("after 6 = %+v", after)
	}

	// A new attempt puts the failed step back to pending and keeps a's output.
	attempt, err := s.BeginAttempt(ctx, id, "tester")
	if err != nil || attempt != 2 {
		t.Fatalf("BeginAttempt = %d, %v", attempt, err)
	}
	r, _ = s.GetRun(ctx, id)
	if r.Status != StatusQueued || r.Steps[0].Status != StatusSucceeded || r.Steps[1].Status != StatusPending || r.Steps[1].Error != "" {
		t.Fatalf("after BeginAttempt: %+v", r)
	}
	// A run that is not finished cannot be resumed.
	var se *StateError
	if _, err := s.BeginAttempt(ctx, id, ""); !errors.As(err, &se) {
		t.Fatalf("second BeginAttempt err = %v", err)
	}
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing run err = %v", err)
	}
}

func TestListRunsFiltersAndPages(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for i := range 7 {
		tenant := "t1"
		if i%2 == 1 {
			tenant = "t2"
		}
		id, err := s.CreateRun(ctx, NewRun{Tenant: tenant, WorkflowID: fmt.Sprintf("w%d", i%3), Workflow: "declared"})
		if err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			s.FinishRun(ctx, id, StatusSucceeded, "", time.Now(), 1)
		}
		time.Sleep(time.Millisecond)
	}
	all, total, err := s.ListRuns(ctx, RunFilter{})
	if err != nil || total != 7 || len(all) != 7 {
		t.Fatalf("all: %d %d %v", len(all), total, err)
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].ID > all[j].ID }) {
		t.Fatal("runs are not newest first")
	}
	t1, total, _ := s.ListRuns(ctx, RunFilter{Tenant: "t1"})
	if total != 4 || len(t1) != 4 {
		t.Fatalf("t1: %d", total)
	}
	for _, r := range t1 {
		if r.Tenant != "t1" {
			t.Fatalf("tenant filter leaked %+v", r)
		}
	}
	page, total, _ := s.ListRuns(ctx, RunFilter{Limit: 3, Offset: 6})
	if total != 7 || len(page) != 1 || page[0].ID != all[6].ID {
		t.Fatalf("page: %d %+v", total, page)
	}
	done, total, _ := s.ListRuns(ctx, RunFilter{Status: StatusSucceeded})
	if total != 3 || len(done) != 3 {
		t.Fatalf("status filter: %d", total)
	}
	w0, total, _ := s.ListRuns(ctx, RunFilter{Workflow: "w0"})
	if total != 3 || len(w0) != 3 {
		t.Fatalf("workflow filter: %d", total)
	}
	_, total, _ = s.ListRuns(ctx, RunFilter{Workflow: "declared"})
	if total != 7 {
		t.Fatalf("declared-name filter: %d", total)
	}
}

func TestInterruptAndPrune(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	running, _ := s.CreateRun(ctx, NewRun{Tenant: "t", WorkflowID: "w", Origin: "serve"})
	s.StartRun(ctx, running, time.Now())
	cli, _ := s.CreateRun(ctx, NewRun{Tenant: "t", WorkflowID: "w", Origin: "cli"})
	ids, err := s.UnfinishedRuns(ctx, "serve")
	if err != nil || len(ids) != 1 || ids[0] != running {
		t.Fatalf("unfinished = %v %v", ids, err)
	}
	if err := s.Interrupt(ctx, running, "server stopped"); err != nil {
		t.Fatal(err)
	}
	r, _ := s.GetRun(ctx, running)
	if r.Status != StatusInterrupted || r.Error != "server stopped" {
		t.Fatalf("interrupted run = %+v", r)
	}
	evs, _ := s.Events(ctx, running, EventFilter{})
	if len(evs) != 1 || evs[0].Type != EventRunInterrupted {
		t.Fatalf("events = %+v", evs)
	}

	for range 5 {
		id, _ := s.CreateRun(ctx, NewRun{Tenant: "t", WorkflowID: "w"})
		s.AppendEvent(ctx, &Event{RunID: id, Type: EventRunStarted})
		s.FinishRun(ctx, id, StatusSucceeded, "", time.Now(), 1)
		time.Sleep(time.Millisecond)
	}
	// 6 finished runs (5 + the interrupted one) and 1 queued; keep 2 finished.
	n, err := s.Prune(ctx, Retention{MaxRuns: 2})
	if err != nil || n != 4 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	_, total, _ := s.ListRuns(ctx, RunFilter{})
	if total != 3 {
		t.Fatalf("left %d runs", total)
	}
	if _, err := s.GetRun(ctx, cli); err != nil {
		t.Fatalf("queued run was pruned: %v", err)
	}
	var orphans int
	s.db.QueryRow(`SELECT COUNT(*) FROM events WHERE run_id NOT IN (SELECT id FROM runs)`).Scan(&orphans)
	if orphans != 0 {
		t.Fatalf("%d events outlived their runs", orphans)
	}
	time.Sleep(5 * time.Millisecond)
	n, _ = s.Prune(ctx, Retention{MaxAge: time.Millisecond})
	if n != 2 {
		t.Fatalf("age prune deleted %d", n)
	}
}

func TestVersionsAuditWebhooks(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	v1, err := s.SaveVersion(ctx, "t", "wf", "alice", "put", []byte("one"))
	if err != nil || v1.Version != 1 {
		t.Fatal(v1, err)
	}
	same, _ := s.SaveVersion(ctx, "t", "wf", "alice", "disk", []byte("one"))
	if same.Version != 1 {
		t.Fatalf("identical source made version %d", same.Version)
	}
	v2, _ := s.SaveVersion(ctx, "t", "wf", "bob", "put", []byte("two"))
	s.SaveVersion(ctx, "other", "wf", "eve", "put", []byte("x"))
	vs, err := s.Versions(ctx, "t", "wf")
	if err != nil || len(vs) != 2 || vs[0].Version != 2 || vs[0].Actor != "bob" || vs[1].Size != 3 {
		t.Fatalf("versions = %+v %v", vs, err)
	}
	got, err := s.GetVersion(ctx, "t", "wf", 1)
	if err != nil || string(got.Source) != "one" || v2.SHA256 == v1.SHA256 {
		t.Fatalf("version 1 = %+v %v", got, err)
	}
	if _, err := s.GetVersion(ctx, "t", "wf", 9); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}

	s.Audit(ctx, AuditEntry{Tenant: "t", Actor: "a", Action: "run.start", Target: "wf", Outcome: "ok"})
	s.Audit(ctx, AuditEntry{Tenant: "t", Action: "auth", Outcome: "denied", Detail: "bad token"})
	s.Audit(ctx, AuditEntry{Tenant: "u", Action: "run.start", Outcome: "ok"})
	log, _ := s.AuditLog(ctx, AuditFilter{Tenant: "t"})
	if len(log) != 2 || log[0].Outcome != "denied" {
		t.Fatalf("audit = %+v", log)
	}
	denied, _ := s.AuditLog(ctx, AuditFilter{Outcome: "denied"})
	if len(denied) != 1 {
		t.Fatalf("denied = %+v", denied)
	}

	if err := s.PutWebhook(ctx, Webhook{ID: "h1", Tenant: "t", Workflow: "wf", TokenHash: "x"}); err != nil {
		t.Fatal(err)
	}
	h, err := s.Webhook(ctx, "h1")
	if err != nil || h.Workflow != "wf" || h.TokenHash != "x" {
		t.Fatalf("webhook = %+v %v", h, err)
	}
	s.PutWebhook(ctx, Webhook{ID: "h2", Tenant: "t", Workflow: "wf", TokenHash: "y"})
	if _, err := s.Webhook(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatal("replaced webhook id still works")
	}
	if err := s.DeleteWebhook(ctx, "t", "wf"); err != nil {
		t.Fatal(err)
	}
}

// Concurrent writers (one per run, as the engine does) must not lose events.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const runs, events = 8, 50
	var wg sync.WaitGroup
	ids := make([]string, runs)
	for i := range runs {
		ids[i], _ = s.CreateRun(ctx, NewRun{Tenant: "t", WorkflowID: "w"})
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			for j := range events {
				if err := s.AppendEvent(ctx, &Event{RunID: id, Type: EventStepLog, Step: "s", Line: fmt.Sprint(j)}); err != nil {
					t.Error(err)
					return
				}
			}
		}(ids[i])
	}
	wg.Wait()
	for _, id := range ids {
		evs, _ := s.Events(ctx, id, EventFilter{})
		if len(evs) != events || evs[events-1].Line != fmt.Sprint(events-1) {
			t.Fatalf("run %s has %d events", id, len(evs))
		}
	}
}

func TestInMemoryStore(t *testing.T) {
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.CreateRun(context.Background(), NewRun{Tenant: "t", WorkflowID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRun(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	id, _ := s.CreateRun(ctx, NewRun{Tenant: "t", WorkflowID: "w"})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.AppendEvent(ctx, &Event{RunID: id, Type: EventStepLog, Step: "s", Line: "line"}); err != nil {
			b.Fatal(err)
		}
	}
}
