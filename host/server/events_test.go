package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/store"
)

func openStream(t *testing.T, e *testEnv, runID, token, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/runs/"+runID+"/events", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp
}

func TestSSEReplaysThenStreamsLive(t *testing.T) {
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	open := e.exec.gate("b")
	id := e.startRun("chain", "")
	e.waitStep(id, "b", "running", "")

	resp := openStream(t, e, id, "", "")
	defer resp.Body.Close()
	// History first: everything up to b waiting at its gate.
	early := readSSE(t, resp.Body, func(ev sseEvent) bool {
		return ev.Event == "log" && strings.Contains(ev.Data, "waiting at gate")
	})
	open() // now b and c run while the stream is open
	rest := readSSE(t, resp.Body, nil)
	all := append(early, rest...)
	if all[len(all)-1].Event != "end" || !strings.Contains(all[len(all)-1].Data, `"succeeded"`) {
		t.Fatalf("stream did not end with end/succeeded: %+v", all[len(all)-1])
	}
	var types []string
	for i, ev := range all[:len(all)-1] {
		if ev.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %s: events must arrive in order without gaps", i, ev.ID)
		}
		var se store.Event
		if err := json.Unmarshal([]byte(ev.Data), &se); err != nil || se.Type != ev.Event || se.RunID != id {
			t.Fatalf("event %d: %+v (%v)", i, ev, err)
		}
		types = append(types, ev.Event)
	}
	joined := strings.Join(types, ",")
	for _, want := range []string{
		"run_started,step_started,log,output,step_finished,step_started,log",  // a, then b waiting
		"output,step_finished,step_started,output,step_finished,run_finished", // b and c live
	} {
		if !strings.Contains(joined, want) {
			t.Fatalf("events %s lack %s", joined, want)
		}
	}
	var out store.Event
	for _, ev := range all {
		if ev.Event == "output" {
			json.Unmarshal([]byte(ev.Data), &out)
		}
	}
	if out.Step != "c" || string(out.Output) != `{"n":3}` {
		t.Fatalf("last output = %+v", out)
	}

	// After the run: a new stream replays everything and ends; Last-Event-ID skips what was seen.
	resp2 := openStream(t, e, id, "", "")
	replay := readSSE(t, resp2.Body, nil)
	resp2.Body.Close()
	if len(replay) != len(all) {
		t.Fatalf("replay has %d events, live had %d", len(replay), len(all))
	}
	resp3 := openStream(t, e, id, "", strconv.Itoa(len(all)-3))
	tail := readSSE(t, resp3.Body, nil)
	resp3.Body.Close()
	if len(tail) != 3 || tail[0].ID != strconv.Itoa(len(all)-2) {
		t.Fatalf("after Last-Event-ID: %+v", tail)
	}
}

// A stream that is slower than the run must still get every event, from
// the store, in order.
func TestSSESlowClientLosesNothing(t *testing.T) {
	e := newEnv(t)
	var steps strings.Builder
	steps.WriteString("workflow = { name = 'noisy', steps = {\n")
	steps.WriteString("  gate = { language = 'lua', code = [[ function run() return 1 end ]] },\n")
	steps.WriteString("  talk = { language = 'lua', depends_on = {'gate'}, code = [[ function run() for i = 1, 2000 do print('line ' .. i) end return 2 end ]] },\n")
	steps.WriteString("} }\n")
	e.writeWorkflow("noisy", steps.String())
	open := e.exec.gate("gate")
	id := e.startRun("noisy", "")
	e.waitStep(id, "gate", "running", "")
	resp := openStream(t, e, id, "", "")
	defer resp.Body.Close()
	first := readSSE(t, resp.Body, func(ev sseEvent) bool { return ev.Event == "log" })
	open()
	// Do not read while 2000 lines are produced: the hub's buffer overflows.
	e.waitRun(id, "")
	rest := readSSE(t, resp.Body, nil)
	all := append(first, rest...)
	logs := 0
	for i, ev := range all[:len(all)-1] {
		if ev.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %s", i, ev.ID)
		}
		if ev.Event == "log" {
			logs++
		}
	}
	if logs != 2001 || all[len(all)-1].Event != "end" {
		t.Fatalf("got %d log events (want 2001), last %+v", logs, all[len(all)-1])
	}
}
