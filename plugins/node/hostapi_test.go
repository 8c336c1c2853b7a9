package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
)

// events records a capability host's log lines.
type events struct {
	mu    sync.Mutex
	lines []string
}

func (e *events) Log(stream, line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, stream+": "+line)
}

func (e *events) Progress(float64, string) {}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.lines...)
}

func mustRunHosted(t *testing.T, req *api.StepRequest) (string, *events) {
	t.Helper()
	ev := &events{}
	host := capability.ForStep(capability.Config{
		KV: capability.NewMemoryKV(), Secrets: capability.MapSecrets{"API_TOKEN": "s3cret"},
	}, req, ev)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runner(t).Run(ctx, req, host)
	if err != nil {
		t.Fatalf("step failed: %v\nlog: %q", err, ev.all())
	}
	return string(out), ev
}

func TestHweUnawaitedLogsKeepTheirOrder(t *testing.T) {
	req := step("logs", `const hwe = require('hwe');
function run() {
  for (let i = 0; i < 2000; i++) hwe.log('line ' + i);
  return {};
}
`, nil)
	_, ev := mustRunHosted(t, req)
	var got []string
	for _, l := range ev.all() {
		if s, ok := strings.CutPrefix(l, "log: "); ok {
			got = append(got, s)
		}
	}
	if len(got) != 2000 {
		t.Fatalf("%d lines logged, want 2000", len(got))
	}
	for i, l := range got {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
}

func TestHweConcurrentCallsAndBuffers(t *testing.T) {
	req := step("kv", `const hwe = require('hwe');
const fs = require('fs');
async function run() {
  await Promise.all(Array.from({ length: 50 }, (_, i) => hwe.kv_put('k' + i, 'v' + i)));
  const values = await Promise.all(Array.from({ length: 50 }, (_, i) => hwe.kv_get('k' + i)));
  await hwe.kv_put('bin', Buffer.from([0xff, 0, 1]));
  const bin = await hwe.kv_get('bin');
  return {
    ok: values.every((v, i) => v === 'v' + i),
    bin: Buffer.isBuffer(bin) ? [...bin] : bin,
    missing: await hwe.kv_get('none'),
    fs: typeof fs.readFileSync, resolve: typeof require.resolve,
  };
}
`, nil)
	req.Grant.KV = true
	out, _ := mustRunHosted(t, req)
	if want := `{"bin":[255,0,1],"fs":"function","missing":null,"ok":true,"resolve":"function"}`; out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestHweErrors(t *testing.T) {
	req := step("errors", `const hwe = require('hwe');
async function run() {
  const out = {};
  try { await hwe.secret('NOPE'); } catch (e) {
    out.denied = [e.name, e.capability, e instanceof hwe.DeniedError, e.message.startsWith('capability secrets denied')];
  }
  try { await hwe.progress(7); } catch (e) { out.bad = [e.name, e.message]; }
  return out;
}
`, nil)
	out, _ := mustRunHosted(t, req)
	if want := `{"bad":["HostError","progress: fraction 7 is outside 0..1"],"denied":["DeniedError","secrets",true,true]}`; out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestHweHTTPFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got", r.Header.Get("X-Test"))
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	defer srv.Close()
	req := step("fetch", `const hwe = require('hwe');
async function run(inputs) {
  const r = await hwe.http_fetch(inputs.url, { method: 'put', headers: { 'X-Test': 1 }, body: 'data' });
  return { status: r.status, body: r.body, got: r.headers['x-got'] };
}
`, map[string]string{"url": `"` + srv.URL + `"`})
	req.Grant.Net = []string{strings.TrimPrefix(srv.URL, "http://")}
	out, _ := mustRunHosted(t, req)
	if want := `{"body":"PUT data","got":"1","status":200}`; out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestHweCallsAfterTheStepAreRefused(t *testing.T) {
	// The first step returns while its calls are still in flight and keeps
	// a reference to its module; none of it may reach the next step, which
	// runs on the same worker.
	first := step("first", `const hwe = require('hwe');
function run() {
  globalThis.leaked = hwe;
  hwe.kv_get('slow').then(() => hwe.log('late from first'));
  return { pid: process.pid };
}
`, nil)
	first.Grant.KV = true
	firstOut, _ := mustRunHosted(t, first)
	second := step("second", `async function run() {
  await new Promise((r) => setTimeout(r, 100));
  return { pid: process.pid, leaked: typeof leaked, secret: await require('hwe').secret('API_TOKEN') };
}
`, nil)
	second.Grant.Secrets = []string{"API_TOKEN"}
	out, ev := mustRunHosted(t, second)
	pid := strings.TrimSuffix(strings.TrimPrefix(firstOut, `{"pid":`), "}")
	if want := `{"leaked":"undefined","pid":` + pid + `,"secret":"s3cret"}`; out != want {
		t.Fatalf("got %s, want %s (the same worker)", out, want)
	}
	for _, l := range ev.all() {
		if strings.Contains(l, "late from first") {
			t.Fatalf("the first step logged through the second: %q", ev.all())
		}
	}
}

func TestHweModuleOutsideAStepRefuses(t *testing.T) {
	// A module kept by a step refuses calls once its step is over.
	first := step("keep", `const hwe = require('hwe');
function run() {
  process.hweKept = hwe;
  return {};
}
`, nil)
	mustRunHosted(t, first)
	second := step("use", `async function run() {
  try { await process.hweKept.log('x'); return { refused: false }; }
  catch (e) { return { refused: true, name: e.name }; }
}
`, nil)
	out, ev := mustRunHosted(t, second)
	if out != `{"name":"HostError","refused":true}` {
		t.Fatalf("got %s (log %q)", out, ev.all())
	}
}
