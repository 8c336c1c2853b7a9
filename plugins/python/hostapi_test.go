package python

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

// hostFor is a real capability host for req with its own KV store and the
// secret API_TOKEN.
func hostFor(req *api.StepRequest, kv capability.KVStore) (*capability.Host, *events) {
	ev := &events{}
	return capability.ForStep(capability.Config{
		KV: kv, Secrets: capability.MapSecrets{"API_TOKEN": "s3cret"},
	}, req, ev), ev
}

func runHosted(t *testing.T, req *api.StepRequest, kv capability.KVStore) (string, *events, error) {
	t.Helper()
	host, ev := hostFor(req, kv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runner(t).Run(ctx, req, host)
	return string(out), ev, err
}

func mustRunHosted(t *testing.T, req *api.StepRequest, kv capability.KVStore) (string, *events) {
	t.Helper()
	out, ev, err := runHosted(t, req, kv)
	if err != nil {
		t.Fatalf("step failed: %v\nlog: %q", err, ev.all())
	}
	return out, ev
}

func TestHweCallsFromThreads(t *testing.T) {
	req := step("threads", `import hwe, threading
def run():
    errors = []
    def work(i):
        try:
            hwe.kv_put("k%d" % i, "v%d" % i)
            if hwe.kv_get("k%d" % i) != "v%d" % i:
                errors.append(i)
        except Exception as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads: t.start()
    for t in threads: t.join()
    return {"errors": errors}
`, nil)
	req.Grant.KV = true
	if out, _ := mustRunHosted(t, req, capability.NewMemoryKV()); out != `{"errors":[]}` {
		t.Fatalf("got %s", out)
	}
}

func TestHweBytesAndErrors(t *testing.T) {
	req := step("bytes", `import hwe
def run():
    hwe.kv_put("bin", b"\xff\x00ok")
    hwe.kv_put("text", "h\u00e9llo".encode())
    try:
        hwe.secret("NOPE")
        denied = None
    except PermissionError as e:
        denied = [type(e).__name__, e.capability, isinstance(e, hwe.DeniedError)]
    try:
        hwe.progress(2)
        bad = None
    except hwe.HostError as e:
        bad = str(e)
    return {"bin": list(hwe.kv_get("bin")), "text": hwe.kv_get("text"), "denied": denied, "bad": bad}
`, nil)
	req.Grant.KV = true
	out, _ := mustRunHosted(t, req, capability.NewMemoryKV())
	want := `{"bad":"progress: fraction 2 is outside 0..1","bin":[255,0,111,107],"denied":["DeniedError","secrets",true],"text":"héllo"}`
	if out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestHweHTTPFetchWithBodyAndHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got", r.Header.Get("X-Test"))
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	defer srv.Close()
	req := step("fetch", `import hwe
def run(inputs):
    r = hwe.http_fetch(inputs["url"], method="POST", headers={"X-Test": "yes"}, body=b'{"a": 1}')
    return {"status": r["status"], "body": r["body"], "got": r["headers"]["x-got"]}
`, map[string]string{"url": `"` + srv.URL + `"`})
	req.Grant.Net = []string{strings.TrimPrefix(srv.URL, "http://")}
	out, _ := mustRunHosted(t, req, nil)
	if want := `{"body":"POST {\"a\": 1}","got":"yes","status":200}`; out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestHweModuleIsFreshForEveryStep(t *testing.T) {
	// A step that changes the module (or keeps a thread that calls it after
	// the step) affects no later step on the same worker.
	first := step("first", `import hwe, threading, time
def late():
    time.sleep(0.2)
    try:
        hwe.log("late")
    except hwe.HostError as e:
        print("refused:", e)
def run():
    hwe.patched = True
    hwe.secret = lambda name: "fake"
    threading.Thread(target=late, daemon=True).start()
    return {"pid": os.getpid()}
`, nil)
	first.Code = "import os\n" + first.Code
	firstOut, _ := mustRunHosted(t, first, nil)
	second := step("second", `import hwe, os, time
def run():
    time.sleep(0.4)
    return {"pid": os.getpid(), "patched": hasattr(hwe, "patched"), "secret": hwe.secret("API_TOKEN")}
`, nil)
	second.Grant.Secrets = []string{"API_TOKEN"}
	out, ev := mustRunHosted(t, second, nil)
	pid := strings.TrimSuffix(strings.TrimPrefix(firstOut, `{"pid":`), "}")
	if want := `{"patched":false,"pid":` + pid + `,"secret":"s3cret"}`; out != want {
		t.Fatalf("got %s, want %s (the same worker)", out, want)
	}
	refused := false
	for _, l := range ev.all() {
		if l == "log: late" {
			t.Fatalf("the first step's thread logged through the second step: %q", ev.all())
		}
		refused = refused || strings.HasPrefix(l, "stdout: refused: hwe: the host API is only available")
	}
	if !refused {
		t.Fatalf("the late call was not refused: %q", ev.all())
	}
}

func TestHweLogKeepsOrderAndSplitsLines(t *testing.T) {
	req := step("log", `import hwe
def run():
    for i in range(200):
        hwe.log("line %d" % i)
    hwe.log("a\nb")
    return {}
`, nil)
	_, ev := mustRunHosted(t, req, nil)
	var got []string
	for _, l := range ev.all() {
		if strings.HasPrefix(l, "log: ") {
			got = append(got, strings.TrimPrefix(l, "log: "))
		}
	}
	if len(got) != 202 || got[0] != "line 0" || got[199] != "line 199" || got[200] != "a" || got[201] != "b" {
		t.Fatalf("log: %q", got)
	}
	for i := range 200 {
		if got[i] != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q", i, got[i])
		}
	}
}

func TestHweWithoutHostIsRefused(t *testing.T) {
	// Run with no host (tools, tests): the module works and refuses calls.
	out := mustRun(t, runner(t), step("nohost", `import hwe
def run():
    try:
        hwe.kv_get("x")
    except hwe.DeniedError as e:
        return {"capability": e.capability}
`, nil))
	if out != `{"capability":"kv"}` {
		t.Fatalf("got %s", out)
	}
}
