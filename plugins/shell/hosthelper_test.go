package shell

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// runWithHost runs a shell step against a real capability host granted
// KV, the secret API_TOKEN and the given net entries.
func runWithHost(t *testing.T, code string, net ...string) (string, *events, error) {
	t.Helper()
	req := step("s", code, nil)
	req.Grant = api.Grant{KV: true, Secrets: []string{"API_TOKEN"}, Net: net}
	ev := &events{}
	host := capability.ForStep(capability.Config{
		KV:      capability.NewMemoryKV(),
		Secrets: capability.MapSecrets{"API_TOKEN": "s3cret", "OTHER": "hidden"},
	}, req, ev)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runner(t).Run(ctx, req, host)
	return string(out), ev, err
}

func mustRunWithHost(t *testing.T, code string, net ...string) (string, *events) {
	t.Helper()
	out, ev, err := runWithHost(t, code, net...)
	if err != nil {
		t.Fatalf("step failed: %v\nlog: %q", err, ev.all())
	}
	return out, ev
}

func TestHostHelperFromProgramsTheStepStarts(t *testing.T) {
	// Python closes inherited descriptors and env -i drops PATH: hwe-host
	// needs neither.
	out, _ := mustRunWithHost(t, `h=$(command -v hwe-host)
a=$(python3 -c 'import subprocess; print(subprocess.run(["hwe-host", "secret", "API_TOKEN"], capture_output=True, text=True, check=True).stdout)')
b=$(env -i "$h" secret API_TOKEN)
echo "{\"a\":\"$a\",\"b\":\"$b\"}"`)
	if out != `{"a":"s3cret","b":"s3cret"}` {
		t.Fatalf("got %s", out)
	}
}

func TestHostHelperConcurrentCalls(t *testing.T) {
	out, _ := mustRunWithHost(t, `for i in $(seq 1 40); do hwe-host kv-put "k$i" "value $i" & done
wait
ok=0
for i in $(seq 1 40); do
  [ "$(hwe-host kv-get "k$i")" = "value $i" ] && ok=$((ok+1))
done
echo "{\"ok\":$ok}"`)
	if out != `{"ok":40}` {
		t.Fatalf("got %s", out)
	}
}

func TestHostHelperValuesFromStdinAreExact(t *testing.T) {
	// 1 MiB is more than one argument may hold (128 KiB); the value has a
	// NUL byte and no trailing newline, and must come back byte for byte.
	out, _ := mustRunWithHost(t, `{ head -c 1048000 /dev/zero | tr '\0' x; printf '\0end'; } > value
hwe-host kv-put big < value
hwe-host kv-get big > back
cmp value back
printf '\xff\xfe a\n\n' > small
hwe-host kv-put small < small
hwe-host kv-get small > small.back
cmp small small.back
echo "{\"size\":$(stat -c %s back)}"`)
	if out != `{"size":1048004}` {
		t.Fatalf("got %s", out)
	}
}

func TestHostHelperLogProgressAndUsage(t *testing.T) {
	out, ev := mustRunWithHost(t, `hwe-host log "two" "words"
hwe-host progress 0.25 a quarter
hwe-host help | grep -q kv-get
status=0; hwe-host 2>/dev/null || status=$?
bad=0; hwe-host progress lots 2>/dev/null || bad=$?
unknown=0; hwe-host frobnicate 2>/dev/null || unknown=$?
echo "{\"none\":$status,\"bad\":$bad,\"unknown\":$unknown}"`)
	if out != `{"bad":2,"none":2,"unknown":2}` {
		t.Fatalf("got %s", out)
	}
	found := false
	for _, l := range ev.all() {
		found = found || l == "log: two words"
	}
	if !found {
		t.Fatalf("log %q lacks the line", ev.all())
	}
}

func TestHostHelperExitCodes(t *testing.T) {
	out, ev := mustRunWithHost(t, `s1=0; hwe-host kv-get nothing || s1=$?
s2=0; hwe-host secret OTHER 2>err || s2=$?
named=false; grep -q '^hwe-host: capability secrets denied: secret OTHER not granted' err && named=true
echo "{\"missing\":$s1,\"denied\":$s2,\"named\":$named}"`)
	want := `{"denied":77,"missing":1,"named":true}`
	if out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if strings.Contains(strings.Join(ev.all(), "\n"), "hidden") {
		t.Fatalf("a secret that was not granted reached the log: %q", ev.all())
	}
}

func TestHostHelperHTTPFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Echo", r.Header.Get("X-Test"))
		fmt.Fprintf(w, "%s %s", r.Method, body)
	}))
	defer srv.Close()
	grant := strings.TrimPrefix(srv.URL, "http://")
	out, _ := mustRunWithHost(t, `plain=$(hwe-host http-fetch `+srv.URL+`/x)
posted=$(printf 'from stdin' | hwe-host http-fetch -X PUT -H 'X-Test: yes' -d @- `+srv.URL+`/x)
hwe-host http-fetch --json -H 'X-Test: hdr' `+srv.URL+`/x > resp.json
grep -q '"x-echo":"hdr"' resp.json
fail=0; hwe-host http-fetch --fail `+srv.URL+`/missing 2>/dev/null || fail=$?
echo "{\"plain\":\"$plain\",\"posted\":\"$posted\",\"fail\":$fail}"`, grant)
	if out != `{"fail":22,"plain":"GET ","posted":"PUT from stdin"}` {
		t.Fatalf("got %s", out)
	}
}

func TestHostHelperDeniedFailsTheStepWithTheCapability(t *testing.T) {
	_, _, err := runWithHost(t, "hwe-host http-fetch https://example.com/\necho '{}'")
	if err == nil || !api.IsStepError(err) || !strings.Contains(err.Error(), "capability net denied") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostHelperWithoutHostRefusesCalls(t *testing.T) {
	// A runner called with no host (tests, tools) still gives steps the
	// command; every call but log and progress is refused.
	out := mustRun(t, step("s", `s=0; hwe-host secret X 2>/dev/null || s=$?; echo "{\"s\":$s}"`, nil))
	if out != `{"s":77}` {
		t.Fatalf("got %s", out)
	}
}

// TestHostCallsRefuseFilesHweHostDidNotMake plays a step that tries to make
// the runner read or write something else: a symbolic link in place of the
// call file, and a regular file in place of the answer FIFO.
func TestHostCallsRefuseFilesHweHostDidNotMake(t *testing.T) {
	dir := t.TempDir()
	if _, err := installHostHelper("/bin/bash", dir, dir); err != nil {
		t.Fatal(err)
	}
	host := capability.ForStep(capability.Config{Secrets: capability.MapSecrets{"TOKEN": "x"}},
		&api.StepRequest{Grant: api.Grant{Secrets: []string{"TOKEN"}}}, nil)
	stop, err := serveHostCalls(context.Background(), host, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("2\nsecret\x00TOKEN\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	ring := func(id string) {
		bell, err := os.OpenFile(filepath.Join(dir, bellName), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(bell, id)
		bell.Close()
	}
	answer := func(id string) string {
		out := filepath.Join(dir, callPrefix+id+".out")
		if err := unix.Mkfifo(out, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(out, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ring(id)
		_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil {
			t.Fatalf("no answer to %s: %v", id, err)
		}
		return line
	}

	// The call file is a symbolic link to a file the step could not read.
	if err := os.Symlink(target, filepath.Join(dir, callPrefix+"1-1.req")); err != nil {
		t.Fatal(err)
	}
	if got := answer("1-1"); !strings.HasPrefix(got, "70 ") {
		t.Fatalf("a call through a symlink was served: %q", got)
	}

	// A hard link to it is refused too.
	if err := os.Link(target, filepath.Join(dir, callPrefix+"2-2.req")); err != nil {
		t.Fatal(err)
	}
	if got := answer("2-2"); !strings.HasPrefix(got, "70 ") {
		t.Fatalf("a call through a hard link was served: %q", got)
	}

	// The answer "FIFO" is a regular file: nothing is written to it.
	if err := os.WriteFile(filepath.Join(dir, callPrefix+"3-3.req"), []byte("2\nsecret\x00TOKEN\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, callPrefix+"3-3.out")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ring("3-3")
	// A real call made after it is answered, so the bad one has been handled.
	if err := os.WriteFile(filepath.Join(dir, callPrefix+"4-4.req"), []byte("2\nsecret\x00TOKEN\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := answer("4-4"); got != "0 1 t\n" {
		t.Fatalf("a good call got %q", got)
	}
	if b, _ := os.ReadFile(regular); len(b) != 0 {
		t.Fatalf("the runner wrote %q into a regular file", b)
	}
}

func TestParseCall(t *testing.T) {
	for _, c := range []struct {
		in    string
		args  []string
		stdin string
		bad   bool
	}{
		{in: "2\nlog\x00hi\x00", args: []string{"log", "hi"}},
		{in: "2\nkv-put\x00k\x00raw\x00data", args: []string{"kv-put", "k"}, stdin: "raw\x00data"},
		{in: "1\nlog\x00", args: []string{"log"}},
		{in: "3\nlog\x00hi\x00", bad: true},
		{in: "x\nlog\x00", bad: true},
		{in: "", bad: true},
	} {
		got, err := parseCall([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("%q: no error", c.in)
			}
			continue
		}
		if err != nil || strings.Join(got.args, "|") != strings.Join(c.args, "|") || got.stdin != c.stdin {
			t.Errorf("%q: got %q %q %v", c.in, got.args, got.stdin, err)
		}
	}
}
