package hostapitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/host/sandbox"
	"github.com/hwe-run/hwe/plugins/lua"
	"github.com/hwe-run/hwe/plugins/node"
	"github.com/hwe-run/hwe/plugins/proc"
	"github.com/hwe-run/hwe/plugins/python"
	"github.com/hwe-run/hwe/plugins/shell"
	"github.com/hwe-run/hwe/plugins/wasm"
)

// hostCase is one row of the table: the same step written in every
// language, what it is granted, and what must come of it.
type hostCase struct {
	name   string
	grant  func(server string) api.Grant // server: the test server's host:port
	inputs func(url string) map[string]string
	code   map[string]string // by language; for wasm the guest's export

	want     string // the step's output (canonical JSON), or
	wantErr  string // a substring of the step's error
	wantLog  string // a line the step's log must have ("stream: line")
	wantProg string // a progress event the host must get ("0.5 halfway")
	denied   string // the capability the host must have recorded as refused
}

const (
	secretValue = "s3cret"
	pongBody    = "pong"
)

// Shell steps read string inputs from INPUT_<NAME> (a JSON string).
const (
	shellSecret = `name=${INPUT_NAME//\"/}
v=$(hwe-host secret "$name")
printf '{"value":"%s"}\n' "$v"`
	shellFetch = `resp=$(hwe-host http-fetch --json "${INPUT_URL//\"/}")
[[ $resp =~ \"status\":([0-9]+) ]] && status=${BASH_REMATCH[1]}
[[ $resp =~ \"body\":\"([^\"]*)\" ]] && body=${BASH_REMATCH[1]}
printf '{"status":%s,"body":"%s"}\n' "$status" "$body"`
	shellKV = `hwe-host kv-put greeting hello
v=$(hwe-host kv-get greeting)
printf '{"value":"%s"}\n' "$v"`
)

var (
	luaSecret = `function run(inputs) return {value = hwe.secret(inputs.name)} end`
	pySecret  = "import hwe\n\ndef run(inputs):\n    return {\"value\": hwe.secret(inputs[\"name\"])}\n"
	jsSecret  = "const hwe = require('hwe');\n\nasync function run(inputs) {\n  return { value: await hwe.secret(inputs.name) };\n}\n"

	luaFetch = `function run(inputs) local r = hwe.http_fetch(inputs.url) return {status = r.status, body = r.body} end`
	pyFetch  = "import hwe\n\ndef run(inputs):\n    r = hwe.http_fetch(inputs[\"url\"])\n    return {\"status\": r[\"status\"], \"body\": r[\"body\"]}\n"
	jsFetch  = "const hwe = require('hwe');\n\nasync function run(inputs) {\n  const r = await hwe.http_fetch(inputs.url);\n  return { status: r.status, body: r.body };\n}\n"

	luaKV = `function run() hwe.kv_put("greeting", "hello") return {value = hwe.kv_get("greeting")} end`
	pyKV  = "import hwe\n\ndef run():\n    hwe.kv_put(\"greeting\", \"hello\")\n    return {\"value\": hwe.kv_get(\"greeting\")}\n"
	jsKV  = "const hwe = require('hwe');\n\nasync function run() {\n  await hwe.kv_put('greeting', 'hello');\n  return { value: await hwe.kv_get('greeting') };\n}\n"
)

func named(name string) func(string) map[string]string {
	return func(string) map[string]string { return map[string]string{"name": name} }
}

func fetchURL(url string) map[string]string { return map[string]string{"url": url} }

var cases = []hostCase{
	{
		name: "log line reaches the step log",
		code: map[string]string{
			api.LangLua:        `function run() hwe.log("hello from the step") return {logged = true} end`,
			api.LangPython:     "import hwe\n\ndef run():\n    hwe.log(\"hello from the step\")\n    return {\"logged\": True}\n",
			api.LangJavaScript: "const hwe = require('hwe');\n\nasync function run() {\n  await hwe.log('hello from the step');\n  return { logged: true };\n}\n",
			api.LangShell:      "hwe-host log hello from the step\necho '{\"logged\":true}'",
			api.LangWasm:       "log_line",
		},
		want:    `{"logged":true}`,
		wantLog: "log: hello from the step",
	},
	{
		name: "progress event",
		code: map[string]string{
			api.LangLua:        `function run() hwe.progress(0.5, "halfway") return {reported = true} end`,
			api.LangPython:     "import hwe\n\ndef run():\n    hwe.progress(0.5, \"halfway\")\n    return {\"reported\": True}\n",
			api.LangJavaScript: "const hwe = require('hwe');\n\nasync function run() {\n  await hwe.progress(0.5, 'halfway');\n  return { reported: true };\n}\n",
			api.LangShell:      "hwe-host progress 0.5 halfway\necho '{\"reported\":true}'",
			api.LangWasm:       "progress",
		},
		want:     `{"reported":true}`,
		wantProg: "0.5 halfway",
	},
	{
		name:  "kv put then get",
		grant: func(string) api.Grant { return api.Grant{KV: true} },
		code: map[string]string{
			api.LangLua: luaKV, api.LangPython: pyKV, api.LangJavaScript: jsKV, api.LangShell: shellKV,
			api.LangWasm: "kv_round_trip",
		},
		want: `{"value":"hello"}`,
	},
	{
		name:  "kv get of a missing key is null",
		grant: func(string) api.Grant { return api.Grant{KV: true} },
		code: map[string]string{
			api.LangLua:        `function run() return {missing = hwe.kv_get("nothing-here") == nil} end`,
			api.LangPython:     "import hwe\n\ndef run():\n    return {\"missing\": hwe.kv_get(\"nothing-here\") is None}\n",
			api.LangJavaScript: "const hwe = require('hwe');\n\nasync function run() {\n  return { missing: (await hwe.kv_get('nothing-here')) === null };\n}\n",
			api.LangShell: `status=0
hwe-host kv-get nothing-here || status=$?
if [ "$status" -eq 1 ]; then echo '{"missing":true}'; else echo '{"missing":false}'; fi`,
			api.LangWasm: "kv_missing",
		},
		want: `{"missing":true}`,
	},
	{
		name: "kv without a grant is refused",
		code: map[string]string{
			api.LangLua: luaKV, api.LangPython: pyKV, api.LangJavaScript: jsKV, api.LangShell: shellKV,
			api.LangWasm: "kv_round_trip",
		},
		wantErr: "capability kv denied",
		denied:  "kv",
	},
	{
		name:   "granted secret",
		grant:  func(string) api.Grant { return api.Grant{Secrets: []string{"API_TOKEN"}} },
		inputs: named("API_TOKEN"),
		code: map[string]string{
			api.LangLua: luaSecret, api.LangPython: pySecret, api.LangJavaScript: jsSecret, api.LangShell: shellSecret,
			api.LangWasm: "secret",
		},
		want: `{"value":"` + secretValue + `"}`,
	},
	{
		name:   "secret not granted fails the step",
		grant:  func(string) api.Grant { return api.Grant{Secrets: []string{"API_TOKEN"}} },
		inputs: named("OTHER"),
		code: map[string]string{
			api.LangLua: luaSecret, api.LangPython: pySecret, api.LangJavaScript: jsSecret, api.LangShell: shellSecret,
			api.LangWasm: "secret",
		},
		wantErr: "capability secrets denied",
		denied:  "secrets",
	},
	{
		name: "a refused call can be caught",
		code: map[string]string{
			api.LangLua:        `function run() local ok, err = pcall(hwe.secret, "OTHER") return {caught = string.match(err, "capability (%a+) denied")} end`,
			api.LangPython:     "import hwe\n\ndef run():\n    try:\n        hwe.secret(\"OTHER\")\n    except hwe.DeniedError as e:\n        return {\"caught\": e.capability}\n    return {}\n",
			api.LangJavaScript: "const hwe = require('hwe');\n\nasync function run() {\n  try {\n    await hwe.secret('OTHER');\n  } catch (e) {\n    if (e instanceof hwe.DeniedError) return { caught: e.capability };\n    throw e;\n  }\n  return {};\n}\n",
			api.LangShell: `status=0
msg=$(hwe-host secret OTHER 2>&1) || status=$?
if [ "$status" -eq 77 ] && [[ $msg =~ capability\ ([a-z]+)\ denied ]]; then
  printf '{"caught":"%s"}\n' "${BASH_REMATCH[1]}"
fi`,
			api.LangWasm: "denied_is_caught",
		},
		want:   `{"caught":"secrets"}`,
		denied: "secrets",
	},
	{
		name:   "http fetch granted by address",
		grant:  func(server string) api.Grant { return api.Grant{Net: []string{server}} },
		inputs: fetchURL,
		code: map[string]string{
			api.LangLua: luaFetch, api.LangPython: pyFetch, api.LangJavaScript: jsFetch, api.LangShell: shellFetch,
			api.LangWasm: "http_fetch",
		},
		want: `{"body":"` + pongBody + `","status":200}`,
	},
	{
		name:   "http fetch without a net grant fails the step",
		inputs: fetchURL,
		code: map[string]string{
			api.LangLua: luaFetch, api.LangPython: pyFetch, api.LangJavaScript: jsFetch, api.LangShell: shellFetch,
			api.LangWasm: "http_fetch",
		},
		wantErr: "capability net denied",
		denied:  "net",
	},
}

var languages = []string{api.LangLua, api.LangPython, api.LangJavaScript, api.LangShell, api.LangWasm}

// events records what the capability host reports for a step.
type events struct {
	mu       sync.Mutex
	lines    []string
	progress []string
}

func (e *events) Log(stream, line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, stream+": "+line)
}

func (e *events) Progress(fraction float64, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.progress = append(e.progress, fmt.Sprintf("%g %s", fraction, message))
}

func (e *events) snapshot() (lines, progress []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.lines), slices.Clone(e.progress)
}

// fixture is what every run of the table shares: the runners, the HTTP
// server the fetch cases call, and the built WASM guest.
type fixture struct {
	runners map[string]api.Runner
	server  *httptest.Server
	guest   string // path of the built guest module
}

func newServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ping" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, pongBody)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runTable runs every case in every language of f.runners.
func runTable(t *testing.T, f *fixture, tempDir func(t *testing.T) string) {
	addr := strings.TrimPrefix(f.server.URL, "http://")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, lang := range languages {
				runner, ok := f.runners[lang]
				if !ok {
					continue
				}
				t.Run(lang, func(t *testing.T) {
					var grant api.Grant
					if c.grant != nil {
						grant = c.grant(addr)
					}
					req := &api.StepRequest{
						RunID: "run-1", Workflow: "hostapi", Step: "s", Attempt: 1,
						Language: lang, LanguageAsWritten: lang, Code: c.code[lang],
						Grant: grant, Timeout: time.Minute,
					}
					if lang == api.LangWasm {
						req.Code, req.Module, req.Function = "", f.guest, c.code[lang]
						req.WorkflowDir = filepath.Dir(f.guest)
					}
					if c.inputs != nil {
						req.Inputs = map[string]json.RawMessage{}
						for k, v := range c.inputs(f.server.URL + "/ping") {
							b, _ := json.Marshal(v)
							req.Inputs[k] = b
						}
					}
					if tempDir != nil {
						req.TempDir = tempDir(t)
					}
					checkCase(t, c, runner, req)
				})
			}
		})
	}
}

// checkCase runs req on a fresh capability host and checks everything the
// case expects.
func checkCase(t *testing.T, c hostCase, runner api.Runner, req *api.StepRequest) {
	t.Helper()
	ev := &events{}
	host := capability.ForStep(capability.Config{
		KV:      capability.NewMemoryKV(),
		Secrets: capability.MapSecrets{"API_TOKEN": secretValue, "OTHER": "must not leak"},
	}, req, ev)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runner.Run(ctx, req, host)
	lines, progress := ev.snapshot()

	switch {
	case c.wantErr != "":
		if err == nil {
			t.Fatalf("the step succeeded with %s; want an error containing %q\nlog: %q", out, c.wantErr, lines)
		}
		if !api.IsStepError(err) {
			t.Errorf("error %v (%T) is not a step error", err, err)
		}
		if !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("error %q does not contain %q", err, c.wantErr)
		}
		if strings.Contains(err.Error(), "must not leak") {
			t.Errorf("error %q shows a secret that was not granted", err)
		}
	case err != nil:
		t.Fatalf("step failed: %v\nlog: %q", err, lines)
	default:
		got, cerr := api.Canonicalize(out)
		if cerr != nil {
			t.Fatalf("output %q is not JSON: %v", out, cerr)
		}
		want, _ := api.Canonicalize([]byte(c.want))
		if string(got) != string(want) {
			t.Errorf("output %s, want %s\nlog: %q", got, want, lines)
		}
	}
	if c.wantLog != "" && !slices.Contains(lines, c.wantLog) {
		t.Errorf("log %q lacks %q", lines, c.wantLog)
	}
	if c.wantProg != "" && !slices.Contains(progress, c.wantProg) {
		t.Errorf("progress %q lacks %q", progress, c.wantProg)
	}
	var refused []string
	for _, d := range host.Denials() {
		refused = append(refused, d.Capability)
	}
	switch {
	case c.denied == "" && len(refused) > 0:
		t.Errorf("calls refused: %q; want none", refused)
	case c.denied != "" && !slices.Contains(refused, c.denied):
		t.Errorf("refused calls %q lack %q", refused, c.denied)
	}
}

// TestHostAPI runs the table through all five runners.
func TestHostAPI(t *testing.T) {
	f := &fixture{server: newServer(t), guest: buildGuest(t)}
	f.runners = map[string]api.Runner{
		api.LangLua:        lua.New(lua.Options{}),
		api.LangPython:     python.New(python.Options{Interpreter: needProgram(t, "/usr/bin/python3", "python3")}),
		api.LangJavaScript: node.New(node.Options{Interpreter: needProgram(t, "/usr/bin/node", "node")}),
		api.LangShell:      shell.New(shell.Options{Bash: needProgram(t, "/bin/bash", "bash")}),
		api.LangWasm:       wasm.New(wasm.Options{CacheDir: t.TempDir()}),
	}
	closeAll(t, f.runners)
	runTable(t, f, nil)
}

// TestHostAPISandboxed runs the table through the subprocess runners inside
// the OS sandbox hwe uses by default, with a private folder per step and
// with a run's shared TempDir.
func TestHostAPISandboxed(t *testing.T) {
	t.Log(strings.Join(sandbox.Probe().ActiveLayers(), " "))
	spawn := func(cmd *exec.Cmd, info proc.SpawnInfo) (func(), error) {
		return sandbox.Start(cmd, sandbox.SpecForGrant(info.Grant, info.Workdir, info.TempDir))
	}
	key := func(req *api.StepRequest) string { return sandbox.SpecForGrant(req.Grant, "", req.TempDir).Key() }
	inside := func(info proc.SpawnInfo, hostPath string) string {
		return sandbox.SpecForGrant(info.Grant, info.Workdir, info.TempDir).Inside(hostPath)
	}
	f := &fixture{server: newServer(t)}
	f.runners = map[string]api.Runner{
		api.LangPython: python.New(python.Options{
			Interpreter: needProgram(t, "/usr/bin/python3", "python3"),
			WorkerOptions: proc.WorkerOptions{
				Spawn:     spawn,
				WorkerKey: key,
				Inside:    inside,
			},
		}),
		api.LangJavaScript: node.New(node.Options{
			Interpreter: needProgram(t, "/usr/bin/node", "node"),
			WorkerOptions: proc.WorkerOptions{
				Spawn:     spawn,
				WorkerKey: key,
				Inside:    inside,
			},
		}),
		api.LangShell: shell.New(shell.Options{Bash: needProgram(t, "/bin/bash", "bash"),
			Spawn: spawn, Inside: inside}),
	}
	closeAll(t, f.runners)
	t.Run("private folder", func(t *testing.T) { runTable(t, f, nil) })
	runDir := t.TempDir()
	t.Run("run TempDir", func(t *testing.T) {
		runTable(t, f, func(*testing.T) string { return runDir })
	})
}

func closeAll(t *testing.T, runners map[string]api.Runner) {
	t.Cleanup(func() {
		for name, r := range runners {
			if c, ok := r.(api.Closer); ok {
				if err := c.Close(); err != nil {
					t.Errorf("close %s: %v", name, err)
				}
			}
		}
	})
}

// needProgram returns path, or fails the test saying what to install.
func needProgram(t *testing.T, path, name string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("these tests need %s (install it, e.g. apt-get install %s)", name, map[string]string{
		"python3": "python3", "node": "nodejs", "bash": "bash"}[name])
	return ""
}

// guestOnce builds the WASM guest once per test binary.
var guestOnce struct {
	sync.Once
	path string
	err  error
}

// buildGuest builds testdata/guest with the Go toolchain running the tests.
func buildGuest(t testing.TB) string {
	t.Helper()
	guestOnce.Do(func() {
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		dir, err := os.MkdirTemp("", "hwe-hostapi-guest-")
		if err != nil {
			guestOnce.err = err
			return
		}
		out := filepath.Join(dir, "guest.wasm")
		cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
		cmd.Dir = filepath.Join("testdata", "guest")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			guestOnce.err = fmt.Errorf("build the WASM guest: %v\n%s", err, b)
			return
		}
		guestOnce.path = out
	})
	if guestOnce.err != nil {
		t.Fatal(guestOnce.err)
	}
	return guestOnce.path
}

func TestMain(m *testing.M) {
	// The test binary doubles as the sandbox helper, as hwe does.
	sandbox.MaybeRunHelper()
	code := m.Run()
	if guestOnce.path != "" {
		_ = os.RemoveAll(filepath.Dir(guestOnce.path))
	}
	os.Exit(code)
}
