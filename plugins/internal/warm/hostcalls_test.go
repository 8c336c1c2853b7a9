package warm

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// callWorker is a worker in Python that makes host calls the request
// describes, the way the real workers do:
//
//	"calls": [[op, args], ...]   made one after the other, each answer awaited
//	"burst": N                   N log calls sent before any answer is read
//	"stale": true                also sends a call with another token first
//	"no_wait": [op, args]        sent last, its answer not awaited
//
// It replies {"answers": [...], "first_line": ...} where first_line is the
// raw first line it read for this request's step (must be the request).
const callWorker = `
import json, os, sys
req_in = os.fdopen(3, "rb")
rep = os.fdopen(4, "wb")
def send(o):
    rep.write(json.dumps(o, separators=(",", ":")).encode() + b"\n"); rep.flush()
def answer(call_id):
    while True:
        msg = json.loads(req_in.readline())
        if msg.get("reply_to") == call_id:
            return msg
send({"ready": True})
n = 0
while True:
    line = req_in.readline()
    if not line:
        break
    req = json.loads(line)
    token = req["host_token"]
    answers = []
    if req.get("stale"):
        send({"call": "log", "id": 999999, "token": "not-" + token, "args": {"line": "stale"}})
    for op, args in req.get("calls", []):
        n += 1
        send({"call": op, "id": n, "token": token, "args": args})
        answers.append(answer(n))
    burst = req.get("burst", 0)
    ids = []
    for i in range(burst):
        n += 1
        ids.append(n)
        send({"call": "log", "id": n, "token": token, "args": {"line": "burst %d" % i}})
    got = 0
    for call_id in ids:
        answer(call_id)
        got += 1
    if req.get("no_wait"):
        n += 1
        send({"call": req["no_wait"][0], "id": n, "token": token, "args": req["no_wait"][1]})
    os.write(1, (req["sentinel"] + "\n").encode())
    os.write(2, (req["sentinel"] + "\n").encode())
    send({"answers": answers, "burst_answered": got, "first_line": line.decode()[:20]})
`

// blockingHost logs, answers kv_get after release is closed, and refuses
// secrets.
type blockingHost struct {
	api.NopHost
	mu      sync.Mutex
	lines   []string
	release chan struct{}
}

func (h *blockingHost) Log(stream, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, stream+": "+line)
}

func (h *blockingHost) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	select {
	case <-h.release:
		return []byte("v:" + key), true, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (h *blockingHost) logged() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

func callPool(t *testing.T) *Pool {
	return newTestPool(t, Config{NewCmd: pythonCmd(t, callWorker), Spares: -1, MaxWorkers: 1})
}

func do(t *testing.T, p *Pool, host api.Host, req map[string]any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, _, err := p.Do(ctx, &api.StepRequest{Step: "s"}, func(string) map[string]any { return req }, host, false)
	if err != nil {
		t.Fatal(err)
	}
	var reply map[string]any
	if err := json.Unmarshal(raw, &reply); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return reply
}

func TestHostCallsAreServedAndAnswered(t *testing.T) {
	p := callPool(t)
	h := &blockingHost{release: make(chan struct{})}
	close(h.release)
	reply := do(t, p, h, map[string]any{"stale": true, "calls": [][]any{
		{"log", map[string]any{"line": "hello"}},
		{"kv_get", map[string]any{"key": "k"}},
		{"secret", map[string]any{"name": "X"}},
		{"nonsense", nil},
	}})
	b, _ := json.Marshal(reply["answers"])
	want := `[{"reply_to":1,"value":null},` +
		`{"found":true,"reply_to":2,"value":"v:k"},` +
		`{"error":{"capability":"secrets","message":"capability secrets denied: secret X not granted"},"reply_to":3},` +
		`{"error":{"message":"nonsense: unknown host API call \"nonsense\""},"reply_to":4}]`
	if string(b) != want {
		t.Fatalf("answers\n got  %s\n want %s", b, want)
	}
	if lines := h.logged(); len(lines) != 1 || lines[0] != "log: hello" {
		t.Fatalf("logged %q: the stale call must be ignored", lines)
	}
}

func TestManyCallsWithoutReadingAnswersDoNotDeadlock(t *testing.T) {
	// 20000 calls are far more than the pipes hold in either direction.
	p := callPool(t)
	h := &blockingHost{}
	reply := do(t, p, h, map[string]any{"burst": 20000})
	if reply["burst_answered"] != float64(20000) {
		t.Fatalf("reply %v", reply)
	}
	lines := h.logged()
	if len(lines) != 20000 || lines[0] != "log: burst 0" || lines[19999] != "log: burst 19999" {
		t.Fatalf("%d lines logged", len(lines))
	}
}

func TestNoAnswerIsWrittenAfterTheStep(t *testing.T) {
	// The step ends with a kv_get still in flight. Its answer must not be
	// written afterwards, where the worker would read it in place of its
	// next request.
	p := callPool(t)
	h := &blockingHost{release: make(chan struct{})}
	do(t, p, h, map[string]any{"no_wait": []any{"kv_get", map[string]any{"key": "slow"}}})
	close(h.release)
	time.Sleep(50 * time.Millisecond)
	reply := do(t, p, h, map[string]any{"calls": [][]any{{"log", map[string]any{"line": "second"}}}})
	if first, _ := reply["first_line"].(string); strings.Contains(first, "reply_to") {
		t.Fatalf("the worker read an old answer as its request: %q", first)
	}
	b, _ := json.Marshal(reply["answers"])
	if string(b) != `[{"reply_to":2,"value":null}]` {
		t.Fatalf("answers %s", b)
	}
}
