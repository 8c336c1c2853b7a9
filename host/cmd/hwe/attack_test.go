package main

// The attack battery: every attack of issue 5 run as a real workflow through
// `hwe run --json --keep-going` with the real runners and the default
// sandbox, one workflow per attack (testdata/attacks/*.lua) with a step per
// runner that can express it. For each attack the test checks that
//
//   - every attack step fails (or, where the attack is a side effect, that
//     the side effect is gone) with an error that says why;
//   - nothing got out: the listeners it aimed at saw nothing, no file
//     appeared on the host, no process it started is left;
//   - the other steps of the workflow succeeded: bystanders running at the
//     same time, and after_* steps that run strictly after the attacks on
//     the same plugins and warm workers (testdata/attacks/harness.lua.in);
//   - each step ended within its limits (its timeout), and a flood did not
//     grow hwe's memory with its size.
//
// `go test -run TestAttacks -update` also writes the results into the table
// in docs/SECURITY.md. Linux only: the sandbox it tests is Linux's.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/cli"
	"github.com/hwe-run/hwe/host/sandbox"
)

// runners are the table's columns, in order.
var attackRunners = []string{"python", "javascript", "shell", "lua", "wasm"}

// stepWant is what must come of one attack step.
type stepWant struct {
	step    string // the step's name in the workflow
	runner  string // the table column it belongs to
	variant string // shown in the table when a runner has several steps
	// succeeds: the attack is a side effect (a background process), so the
	// step itself may succeed; what matters is checked elsewhere.
	succeeds bool
	// mayFail with succeeds: the step may also fail, if its error matches err.
	mayFail bool
	err     string // regexp (case-insensitive) the error must match
	notErr  string // regexp the error must not match
	timeout time.Duration
	// checkedBy names a later step that checks the attack's side effect
	// is gone; it must succeed, and it decides the table cell.
	checkedBy string
}

// attackCase is one attack: a workflow file and what each step must do.
type attackCase struct {
	file   string // testdata/attacks/FILE.lua
	title  string
	steps  []stepWant
	absent map[string]string // runner -> why the attack cannot be written for it
	// mustSucceed lists steps besides the harness's that must succeed (controls, checkers).
	mustSucceed []string
	// check runs the host-side checks after the run; it returns a line for
	// the table's host column.
	check func(t *testing.T, b *battery, r *attackRun) string
	// flood: check the log cap and hwe's memory; inProcess: the steps run
	// in hwe's own memory (Lua, WASM), bounded by their memory limit.
	flood, inProcess bool
	// row merges this case into another's row of the table ("" = its own).
	row string
}

// battery is the state shared by the attacks of one test run.
type battery struct {
	id      string // random, in every file name and marker of this run
	root    string // repository root
	dir     string // composed workflows
	wasm    string // the built attack guest
	granted string // the folder write_outside's steps are granted (outside /tmp)

	tcp       *countingServer // connect_tcp's listener
	udp       *udpCounter     // connect_udp's listener
	allowed   *countingServer // redirect: the granted server
	forbidden *countingServer // redirect: where it redirects to

	mu   sync.Mutex
	rows map[string]*tableRow
}

// tableRow is one attack's results for docs/SECURITY.md.
type tableRow struct {
	title string
	cells map[string][]string // runner -> one line per step
	host  string
	order int
}

func TestAttacks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatal("the attack battery tests the Linux sandbox; run it on Linux")
	}
	needInterpreters(t)
	report := sandbox.Probe()
	for _, layer := range []string{sandbox.LayerMountNS, sandbox.LayerPIDNS, sandbox.LayerNetNS, sandbox.LayerSeccomp} {
		if !report.Active(layer) {
			t.Errorf("sandbox layer %s is off on this machine (%s): the battery tests the sandbox hwe ships; see `hwe doctor`",
				layer, report.Detail(layer))
		}
	}

	b := newBattery(t)
	for i, c := range attackCases() {
		t.Run(c.file, func(t *testing.T) { b.runCase(t, c, i) })
	}
	t.Run("hwe goes on", func(t *testing.T) {
		r := b.run(t, "healthy", b.compose(t, "", nil), nil, nil)
		for _, lang := range attackRunners {
			if s := r.step("after_" + lang); s == nil || s.Status != "succeeded" {
				t.Errorf("a normal %s step after the battery: %+v", lang, s)
			}
		}
	})
	if *update {
		b.writeTable(t, report)
	}
}

// attackCases lists the battery. The regexps are what a clear error says.
func attackCases() []attackCase {
	noProcesses := "no way to start a process (no os.execute, io.popen; WASI preview 1 has none)"
	return []attackCase{
		{
			file: "read_shadow", title: "read /etc/shadow",
			steps: []stepWant{
				{step: "python", err: `PermissionError: \[Errno 13\] Permission denied: '/etc/shadow'`},
				{step: "javascript", err: `EACCES: permission denied, open '/etc/shadow'`},
				{step: "shell", err: `cat: /etc/shadow: Permission denied`},
				{step: "lua", err: `attempt to index a non-table object\(nil\) with key 'open'`},
				{step: "wasm", err: `open /etc/shadow: `},
			},
		},
		{
			file: "other_run_read", title: "read another run's files (its /tmp and working folders, while it runs)",
			steps: []stepWant{
				{step: "python", err: `all \d+ reads refused: .*No such file or directory`, notErr: `private data`},
				{step: "javascript", err: `all \d+ reads refused: .*ENOENT`, notErr: `private data`},
				{step: "shell", err: `all \d+ reads refused.*No such file or directory`, notErr: `private data`},
				{step: "wasm", err: `all \d+ attempts refused: .*/tmp/hwe-run-`, notErr: `private data`},
			},
			absent: map[string]string{"lua": "no file API (io, dofile, loadfile are absent)"},
		},
		{
			file: "write_outside", title: "write outside the workdir: directly, through `..`, through symlinks",
			steps: []stepWant{
				{step: "python", err: `all 10 writes refused: .*(Read-only file system|Permission denied|No such file)`},
				{step: "javascript", err: `all 10 writes refused: .*(EROFS|EACCES|ENOENT)`},
				{step: "shell", err: `all 10 writes refused.*(Read-only file system|Permission denied|No such file)`},
				{step: "wasm", err: `all 10 attempts refused: `},
			},
			absent: map[string]string{"lua": "no file API (io, os.remove, os.rename are absent)"},
			check:  checkNoEscapedFiles,
		},
		{
			file: "connect_tcp", title: "TCP connection to a listener on 127.0.0.1",
			steps: []stepWant{
				{step: "python", err: `PermissionError: \[Errno 1\] Operation not permitted`},
				{step: "javascript", err: `connect EPERM 127\.0\.0\.1`},
				{step: "shell", err: `/dev/tcp/127\.0\.0\.1/\d+: Operation not permitted`},
				{step: "lua", variant: "hwe.http_fetch, no grant", err: `capability net denied: the step has no net grant`},
				{step: "wasm", variant: "hwe_v1_http_fetch, no grant", err: `capability net denied: the step has no net grant`},
				{step: "wasm_extism", runner: "wasm", variant: "Extism's http_request", err: `Extism's http_request, which hwe does not allow`},
			},
			mustSucceed: []string{"control_lua"},
			check:       checkTCPListener,
		},
		{
			file: "connect_udp", title: "UDP datagrams to a listener on 127.0.0.1",
			steps: []stepWant{
				{step: "python", err: `PermissionError: \[Errno 1\] Operation not permitted`},
				{step: "javascript", err: `EPERM`},
				{step: "shell", err: `/dev/udp/127\.0\.0\.1/\d+: Operation not permitted`},
			},
			absent: map[string]string{
				"lua":  "no sockets; the host API speaks only HTTP",
				"wasm": "WASI preview 1 cannot open sockets; the host API speaks only HTTP",
			},
			check: checkUDPListener,
		},
		{
			file: "redirect", title: "fetch a granted URL that redirects to a forbidden port and to 169.254.169.254",
			steps: []stepWant{
				{step: "python", err: redirectErr},
				{step: "javascript", err: redirectErr},
				{step: "shell", err: redirectErr},
				{step: "lua", err: redirectErr},
				{step: "wasm", err: redirectErr},
			},
			mustSucceed: []string{"control_python", "control_javascript", "control_shell", "control_lua", "control_wasm"},
			check:       checkRedirectTarget,
		},
		{
			file: "secret_env", title: "read a secret (HWE_SECRET_X) and a variable (PLAIN_X) of hwe's environment",
			steps: []stepWant{
				{step: "python", err: secretErr},
				{step: "javascript", err: secretErr},
				{step: "shell", err: secretErr},
				{step: "lua", err: secretErr},
				{step: "wasm", err: secretErr},
			},
			mustSucceed: []string{"control_python", "control_javascript", "control_shell", "control_lua", "control_wasm"},
			check:       checkSecretControls,
		},
		{
			file: "fork_bomb", title: "fork bomb",
			steps: []stepWant{
				{step: "python", err: `Resource temporarily unavailable|timed out after`, timeout: 10 * time.Second},
				{step: "javascript", err: `EAGAIN|timed out after`, timeout: 10 * time.Second},
				{step: "shell", err: `Resource temporarily unavailable|timed out after`, timeout: 10 * time.Second},
			},
			absent: map[string]string{"lua": noProcesses, "wasm": noProcesses},
		},
		{
			file: "alloc_4gib", title: "allocate 4 GiB: at once, and in 1 MiB pieces under a 256 MiB grant",
			steps: []stepWant{
				{step: "python", variant: "at once", err: `MemoryError`},
				{step: "python_pieces", runner: "python", variant: "pieces", err: `memory limit exceeded`},
				{step: "javascript", variant: "at once", err: `Array buffer allocation failed|memory limit exceeded`},
				{step: "javascript_pieces", runner: "javascript", variant: "pieces", err: `memory limit exceeded`},
				{step: "shell", variant: "pieces", err: `memory limit exceeded|cannot allocate`},
				{step: "lua", variant: "at once", err: `string\.rep: result of \d+ bytes exceeds`},
				{step: "lua_pieces", runner: "lua", variant: "pieces", err: `memory limit exceeded.*\b256 MiB`},
				{step: "wasm", variant: "at once", err: `memory`},
				{step: "wasm_pieces", runner: "wasm", variant: "pieces", err: `memory limit of 256 MiB`},
			},
			mustSucceed: []string{"lua_neighbour"},
		},
		{
			file: "spin", title: "spin past a 1 s timeout, and past a 1 s CPU grant",
			steps: []stepWant{
				{step: "python", variant: "timeout", err: `timed out after 1s`, timeout: time.Second},
				{step: "python_cpu", runner: "python", variant: "cpu grant", err: `cpu limit exceeded`, timeout: 20 * time.Second},
				{step: "javascript", err: `timed out after 1s`, timeout: time.Second},
				{step: "shell", variant: "timeout", err: `timed out after 1s`, timeout: time.Second},
				{step: "shell_cpu", runner: "shell", variant: "cpu grant", err: `cpu limit exceeded`, timeout: 20 * time.Second},
				{step: "lua", err: `timed out after 1s`, timeout: time.Second},
				{step: "wasm", err: `timed out after 1s`, timeout: time.Second},
			},
		},
		{
			file: "stdout_flood", title: "write 100 MB to stdout: in 1 KiB lines, and as one line",
			steps: []stepWant{
				// A flood may also be stopped at its timeout.
				{step: "python", variant: "lines", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
				{step: "python_one_line", runner: "python", variant: "one line", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
				{step: "javascript", variant: "lines", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
				{step: "javascript_one_line", runner: "javascript", variant: "one line", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
				// A shell step's output is parsed from its stdout.
				{step: "shell", variant: "lines", succeeds: true, mayFail: true, err: `output limit exceeded|` + floodStopped, timeout: time.Minute},
				{step: "shell_one_line", runner: "shell", variant: "one line", succeeds: true, mayFail: true, err: `output limit exceeded|` + floodStopped, timeout: time.Minute},
			},
			flood: true,
		},
		{
			file: "stdout_flood_inprocess", row: "stdout_flood",
			steps: []stepWant{
				{step: "lua", variant: "lines", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
				{step: "lua_one_line", runner: "lua", variant: "one line", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
				{step: "wasm", variant: "lines", succeeds: true, mayFail: true, err: floodStopped, timeout: time.Minute},
			},
			flood: true, inProcess: true,
		},
		{
			file: "giant_output", title: "return a 100 MB output (limit 16 MiB)",
			steps: []stepWant{
				{step: "python", err: `output limit exceeded`, timeout: time.Minute},
				{step: "javascript", err: `output limit exceeded`, timeout: time.Minute},
				{step: "shell", err: `output limit exceeded`, timeout: time.Minute},
			},
			flood: true,
		},
		{
			file: "giant_output_inprocess", row: "giant_output",
			steps: []stepWant{
				{step: "lua", err: `output limit exceeded`, timeout: time.Minute},
				{step: "wasm", err: `output limit exceeded`, timeout: time.Minute},
			},
			flood: true, inProcess: true,
		},
		{
			file: "deep_recursion", title: "unbounded recursion (Python's recursion limit lifted first)",
			steps: []stepWant{
				{step: "python", err: `RecursionError|stack overflow|memory limit exceeded`, notErr: `^runner python exited`, timeout: time.Minute},
				{step: "javascript", err: `Maximum call stack size exceeded`, timeout: time.Minute},
				{step: "shell", err: `stack|recursion|segmentation fault|memory limit exceeded`, notErr: `^runner shell exited`, timeout: time.Minute},
				{step: "lua", err: `stack overflow`, timeout: time.Minute},
				{step: "lua_vararg", runner: "lua", variant: "vararg", err: `stack overflow|memory limit exceeded|timed out after`, timeout: 30 * time.Second},
				{step: "wasm", err: `stack overflow`, timeout: time.Minute},
			},
		},
		{
			file: "background", title: "a background process that outlives the step (setsid, nohup, &; Lua: tampered libraries and globals; WASM: a goroutine)",
			steps: []stepWant{
				{step: "python", succeeds: true, checkedBy: "check_python"},
				{step: "javascript", succeeds: true, checkedBy: "check_javascript"},
				{step: "shell", succeeds: true, checkedBy: "check_shell"},
				{step: "lua", succeeds: true, checkedBy: "check_lua"},
				{step: "wasm", succeeds: true, checkedBy: "check_wasm"},
			},
			check: checkBackgroundGone,
		},
	}
}

const (
	// Both hops refused: the redirect to another port of the granted address
	// and the one to the cloud metadata address.
	redirectErr = `capability net denied: http://127\.0\.0\.1:@FORBIDDEN_PORT@ not in the step's net grant.*capability net denied: http://169\.254\.169\.254:80 not in the step's net grant`
	secretErr   = `capability secrets denied: secret X not granted`
	// A flood stopped at the step's timeout is contained too.
	floodStopped = `timed out after`
)

// floodBytes and giantBytes size the stdout flood and the gigantic output:
// 100 MB, less under the race detector, which makes hwe's side of a flood
// (this test binary is also the runner plugins) several times slower.
func floodSizes() (flood, giant string) {
	if raceEnabled() {
		return "20000000", "32000000"
	}
	return "100000000", "100000000"
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

func newBattery(t *testing.T) *battery {
	idb := make([]byte, 4)
	_, _ = rand.Read(idb)
	b := &battery{id: hex.EncodeToString(idb), root: repoRoot(t), dir: t.TempDir(), rows: map[string]*tableRow{}}
	b.wasm = buildAttackGuest(t, b.dir)
	// Outside /tmp: a step's /tmp is its run's scratch folder.
	parent := filepath.Join("/var/tmp", "hwe-attacks-"+b.id)
	b.granted = filepath.Join(parent, "granted")
	if err := os.MkdirAll(b.granted, 0o755); err != nil {
		t.Fatal(err)
	}
	// The step runs as a uid of its own: the granted folder must be writable by it.
	if err := os.Chmod(b.granted, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })

	b.tcp = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	b.udp = newUDPCounter(t)
	b.forbidden = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "forbidden data") }))
	b.allowed = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://"+b.forbidden.addr+"/secret", http.StatusFound)
		case "/redirect-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	}))
	return b
}

// placeholders fills in a workflow's @NAME@ placeholders.
func (b *battery) placeholders(extra map[string]string) *strings.Replacer {
	pairs := []string{
		"@ID@", b.id, "@WASM@", b.wasm, "@REPO@", b.root, "@GRANTED@", b.granted,
		"@TCP_PORT@", port(b.tcp.addr), "@UDP_PORT@", port(b.udp.addr),
		"@ALLOWED_PORT@", port(b.allowed.addr), "@FORBIDDEN_PORT@", port(b.forbidden.addr),
	}
	flood, giant := floodSizes()
	pairs = append(pairs, "@FLOOD_BYTES@", flood, "@GIANT_BYTES@", giant)
	for k, v := range extra {
		pairs = append(pairs, "@"+k+"@", v)
	}
	return strings.NewReplacer(pairs...)
}

// compose returns an attack workflow with the harness appended and the
// placeholders filled in ("" = the harness alone, a workflow of normal steps).
func (b *battery) compose(t *testing.T, file string, extra map[string]string) string {
	t.Helper()
	harness, err := os.ReadFile(filepath.Join(b.root, "testdata/attacks/harness.lua.in"))
	if err != nil {
		t.Fatal(err)
	}
	src := "workflow = { name = \"healthy\", steps = {} }\n"
	if file != "" {
		data, err := os.ReadFile(filepath.Join(b.root, "testdata/attacks", file+".lua"))
		if err != nil {
			t.Fatal(err)
		}
		src = string(data)
	}
	return b.placeholders(extra).Replace(src + "\n" + string(harness))
}

func (b *battery) runCase(t *testing.T, c attackCase, order int) {
	var extra map[string]string
	var victim *victimRun
	switch c.file {
	case "other_run_read":
		victim = b.startVictim(t)
		extra = map[string]string{"TARGETS": strings.Join(victim.targets, "|")}
	case "secret_env":
		t.Setenv("HWE_SECRET_X", "sekrit-"+b.id)
		t.Setenv("PLAIN_X", "plain-"+b.id)
	}
	attackSteps := make([]string, len(c.steps))
	for i, s := range c.steps {
		attackSteps[i] = s.step
	}
	r := b.run(t, c.file, b.compose(t, c.file, extra), attackSteps, victim)

	key := c.row
	if key == "" {
		key = c.file
	}
	b.mu.Lock()
	row := b.rows[key]
	if row == nil {
		row = &tableRow{title: c.title, cells: map[string][]string{}, order: order}
		b.rows[key] = row
	}
	b.mu.Unlock()
	for runner, why := range c.absent {
		row.cells[runner] = []string{"n/a: " + why}
	}
	for _, want := range c.steps {
		if want.runner == "" {
			want.runner = want.step
		}
		line := b.checkStep(t, r, want)
		if want.variant != "" {
			line = "*" + want.variant + "*: " + line
		}
		row.cells[want.runner] = append(row.cells[want.runner], line)
	}
	var host []string
	for _, name := range r.harnessSteps() {
		if s := r.step(name); s == nil || s.Status != "succeeded" {
			t.Errorf("%s: step %s must succeed alongside and after the attacks, got %s", c.file, name, describe(s))
			host = append(host, "❌ "+name+" "+describe(s))
			// Charge it to its runner's cell too: after_python_2 -> python.
			for _, lang := range attackRunners {
				if strings.HasSuffix(name, "_"+lang) || strings.Contains(name, "_"+lang+"_") {
					row.cells[lang] = append(row.cells[lang], "❌ a normal "+lang+" step ("+name+") failed: "+quoteCell(b.sanitize(describe(s))))
				}
			}
		}
	}
	for _, name := range c.mustSucceed {
		if s := r.step(name); s == nil || s.Status != "succeeded" {
			t.Errorf("%s: step %s must succeed, got %s", c.file, name, describe(s))
			host = append(host, "❌ "+name+" "+describe(s))
		}
	}
	if len(host) == 0 {
		host = append(host, "✅ bystanders and later steps succeeded")
	}
	if victim != nil {
		host = append(host, b.finishVictim(t, victim))
	}
	if c.check != nil {
		host = append(host, c.check(t, b, r))
	}
	if c.flood {
		host = append(host, b.checkFlood(t, c, r))
	}
	if len(r.leftovers) > 0 {
		t.Errorf("%s: processes left after the run: %s", c.file, strings.Join(r.leftovers, "; "))
		host = append(host, "❌ processes left: "+strings.Join(r.leftovers, "; "))
	} else {
		host = append(host, fmt.Sprintf("✅ no process left (%d sandboxes watched)", r.namespaces))
	}
	if row.host != "" {
		row.host += "<br>"
	}
	row.host += strings.Join(host, "<br>")
}

// checkStep checks one attack step and returns its table line.
func (b *battery) checkStep(t *testing.T, r *attackRun, want stepWant) string {
	t.Helper()
	s := r.step(want.step)
	if s == nil {
		t.Errorf("step %s is missing from the result", want.step)
		return "❌ missing"
	}
	errText := b.sanitize(s.Error)
	outcome := func(mark string) string {
		if s.Status == "succeeded" {
			out := string(s.Output)
			if len(out) > 120 {
				out = out[:120] + "…"
			}
			return fmt.Sprintf("%s succeeded: `%s`", mark, b.sanitize(out))
		}
		return fmt.Sprintf("%s %s: %s", mark, s.Status, quoteCell(errText))
	}
	if want.timeout > 0 && time.Duration(s.DurationMS)*time.Millisecond > want.timeout+3*time.Second {
		t.Errorf("step %s ran %d ms, past its timeout of %s", want.step, s.DurationMS, want.timeout)
		return outcome("❌ past its limit:")
	}
	switch {
	case s.Status == "succeeded" && want.succeeds && want.checkedBy != "":
		c := r.step(want.checkedBy)
		if c == nil || c.Status != "succeeded" {
			t.Errorf("step %s: %s found its side effect still there: %s", want.step, want.checkedBy, describe(c))
			return "❌ outlived the step: " + quoteCell(b.sanitize(describe(c)))
		}
		return "✅ gone when the step ended (" + want.checkedBy + " succeeded)"
	case s.Status == "succeeded" && want.succeeds:
		if strings.Contains(string(s.Output), "escaped") {
			t.Errorf("step %s got through: %s", want.step, s.Output)
			return outcome("❌")
		}
		return outcome("✅")
	case s.Status == "succeeded":
		t.Errorf("attack step %s was not stopped: it succeeded with %s", want.step, truncate(string(s.Output), 300))
		return outcome("❌ not stopped:")
	case want.succeeds && !want.mayFail:
		t.Errorf("step %s should succeed (its attack is checked on the host), got %s: %s", want.step, s.Status, s.Error)
		return outcome("❌")
	}
	re := regexp.MustCompile("(?is)" + b.placeholders(nil).Replace(want.err))
	if !re.MatchString(s.Error) {
		t.Errorf("step %s failed with an error that does not say why (want /%s/):\n%s", want.step, re, truncate(s.Error, 600))
		return outcome("❌ unclear error:")
	}
	if want.notErr != "" && regexp.MustCompile("(?is)"+want.notErr).MatchString(s.Error) {
		t.Errorf("step %s failed with a misleading error (it must not match /%s/):\n%s", want.step, want.notErr, truncate(s.Error, 600))
		return outcome("❌ misleading error:")
	}
	return outcome("✅")
}

// attackRun is one `hwe run` of an attack workflow and what was seen while it ran.
type attackRun struct {
	result     runResult
	stdout     string
	log        *logWatch
	exit       int
	elapsed    time.Duration
	pluginPeak int64 // largest peak RSS of a runner plugin process, bytes
	heapGrowth int64 // largest growth of this process's Go heap, bytes
	namespaces int   // sandboxes (PID namespaces) seen
	leftovers  []string
}

type runResult struct {
	Workflow string       `json:"workflow"`
	Status   string       `json:"status"`
	Error    string       `json:"error"`
	Steps    []stepResult `json:"steps"`
}

type stepResult struct {
	Name       string          `json:"name"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output"`
	Error      string          `json:"error"`
	DurationMS int64           `json:"duration_ms"`
}

func (r *attackRun) step(name string) *stepResult {
	for i := range r.result.Steps {
		if r.result.Steps[i].Name == name {
			return &r.result.Steps[i]
		}
	}
	return nil
}

// harnessSteps are the steps harness.lua.in adds.
func (r *attackRun) harnessSteps() []string {
	var out []string
	for _, s := range r.result.Steps {
		if strings.HasPrefix(s.Name, "bystander_") || strings.HasPrefix(s.Name, "after_") || s.Name == "gate" {
			out = append(out, s.Name)
		}
	}
	return out
}

func describe(s *stepResult) string {
	if s == nil {
		return "(missing)"
	}
	if s.Error != "" {
		return s.Status + ": " + truncate(s.Error, 300)
	}
	return s.Status
}

// run runs a composed workflow with `hwe run --json --keep-going`, opening
// its gate once every attack step has finished, and watches the host while
// it runs. victim, if set, is another run whose processes belong to the
// same watch.
func (b *battery) run(t *testing.T, name, src string, attackSteps []string, victim *victimRun) *attackRun {
	t.Helper()
	path := filepath.Join(b.dir, name+".lua")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	log := newLogWatch([]string{"sekrit-" + b.id, "plain-" + b.id})
	watch := startHostWatch()
	gateDone := make(chan struct{})
	go b.openGate(ctx, log, attackSteps, gateDone)

	start := time.Now()
	stdout, code := runHWE(ctx, b.dir, log, "run", "--json", "--keep-going", path)
	r := &attackRun{stdout: stdout, log: log, exit: code, elapsed: time.Since(start)}
	cancel()
	<-gateDone
	if victim != nil {
		// Its processes belong to this watch too: let it end first.
		_ = os.WriteFile(filepath.Join(victim.tempDir, "release-"+b.id), nil, 0o644)
		<-victim.done
	}
	watch.stop()
	r.pluginPeak, r.heapGrowth, r.namespaces = watch.pluginPeak, watch.heapGrowth, len(watch.namespaces)
	r.leftovers = watch.leftovers(3 * time.Second)

	if code != 0 && code != 1 {
		t.Fatalf("hwe run exited %d (0 or 1 expected)\nstdout: %s\nstderr: %s", code, truncate(stdout, 2000), log.head())
	}
	if err := json.Unmarshal([]byte(stdout), &r.result); err != nil {
		t.Fatalf("hwe run --json printed no result: %v\nstdout: %s\nstderr: %s", err, truncate(stdout, 2000), log.head())
	}
	for _, leak := range log.leaks() {
		t.Errorf("%s: the value of %s appears in hwe's output", name, leak)
	}
	if strings.Contains(stdout, "sekrit-"+b.id) || strings.Contains(stdout, "plain-"+b.id) {
		t.Errorf("%s: a value of hwe's environment appears in the step outputs", name)
	}
	return r
}

// openGate creates /tmp/attacks-done-ID in the run's /tmp once every attack
// step has finished and the gate step has shown where that /tmp is.
func (b *battery) openGate(ctx context.Context, log *logWatch, attackSteps []string, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !log.finished(attackSteps) {
			continue
		}
		gates, _ := filepath.Glob(filepath.Join(os.TempDir(), "hwe-run-*", "gate-"+b.id))
		for _, g := range gates {
			_ = os.WriteFile(filepath.Join(filepath.Dir(g), "attacks-done-"+b.id), nil, 0o644)
			_ = os.Remove(g)
		}
		if len(gates) > 0 {
			return
		}
	}
}

// runHWE runs the hwe command line in process, as runCLI does, with the
// real runners and default sandbox, except that the secret store sees
// HWE_SECRET_* from this process's environment (settings stay at their
// defaults) and stderr goes to a watcher.
func runHWE(ctx context.Context, dir string, stderr io.Writer, args ...string) (string, int) {
	var out bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: stderr, Context: ctx, Dir: dir,
		Getenv: func(k string) string {
			if strings.HasPrefix(k, "HWE_") && !strings.HasPrefix(k, "HWE_SECRET_") {
				return ""
			}
			return os.Getenv(k)
		},
		Runners: runners, PluginInfos: pluginInfos}
	code := cli.Main(env, append([]string{"hwe"}, args...))
	return out.String(), code
}

// logWatch is hwe's stderr during a run: it notes which steps finished, how
// much each step logged and whether watched values appear, and keeps only
// the start of the text (a flood must not fill the test's memory).
type logWatch struct {
	mu       sync.Mutex
	carry    []byte
	headBuf  bytes.Buffer
	done     map[string]bool
	logBytes map[string]int64
	notices  map[string][]string // step -> hwe's own notices in its log
	watched  []string
	seen     map[string]bool
}

const logHeadBytes = 64 << 10

var finishedLine = regexp.MustCompile(`^\[[^\]]*\] [✓✗-] (\S+) `)

func newLogWatch(watched []string) *logWatch {
	return &logWatch{done: map[string]bool{}, logBytes: map[string]int64{},
		notices: map[string][]string{}, watched: watched, seen: map[string]bool{}}
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := logHeadBytes - w.headBuf.Len(); room > 0 {
		w.headBuf.Write(p[:min(room, len(p))])
	}
	data := append(w.carry, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		w.line(string(data[:i]))
		data = data[i+1:]
	}
	w.carry = append([]byte(nil), data...)
	return len(p), nil
}

func (w *logWatch) line(l string) {
	for _, v := range w.watched {
		if strings.Contains(l, v) {
			w.seen[v] = true
		}
	}
	if m := finishedLine.FindStringSubmatch(l); m != nil {
		w.done[m[1]] = true
		return
	}
	// "[workflow]   step | text"
	i := strings.Index(l, "]   ")
	if !strings.HasPrefix(l, "[") || i < 0 {
		return
	}
	step, text, ok := strings.Cut(l[i+4:], " | ")
	if !ok {
		return
	}
	w.logBytes[step] += int64(len(text)) + 1
	if strings.HasPrefix(text, "hwe: ") || strings.HasSuffix(text, "[line truncated]") {
		if n := w.notices[step]; len(n) < 5 {
			w.notices[step] = append(n, truncate(text[max(0, len(text)-120):], 120))
		}
	}
}

func (w *logWatch) finished(steps []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range steps {
		if !w.done[s] {
			return false
		}
	}
	return true
}

func (w *logWatch) head() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.headBuf.String()
}

func (w *logWatch) leaks() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for v := range w.seen {
		out = append(out, v)
	}
	return out
}

// hostWatch samples the host while a run goes on: the PID namespaces of
// this process's descendants (each sandbox has its own), the peak memory of
// the runner plugin processes, and this process's heap.
type hostWatch struct {
	stopped    chan struct{}
	done       chan struct{}
	self       string
	namespaces map[string]string // PID namespace -> a command line seen in it
	pluginPeak int64
	heapGrowth int64
}

func startHostWatch() *hostWatch {
	runtime.GC()
	w := &hostWatch{stopped: make(chan struct{}), done: make(chan struct{}), namespaces: map[string]string{}}
	w.self, _ = os.Readlink("/proc/self/ns/pid")
	base := heapObjects()
	go func() {
		defer close(w.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if g := int64(heapObjects()) - int64(base); g > w.heapGrowth {
				w.heapGrowth = g
			}
			if i%2 == 0 {
				w.scan()
			}
			select {
			case <-w.stopped:
				w.scan()
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *hostWatch) stop() {
	close(w.stopped)
	<-w.done
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

type procEntry struct {
	pid, ppid int
	ns        string
	cmd       string
}

func readProcs() []procEntry {
	ents, _ := os.ReadDir("/proc")
	var out []procEntry
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		out = append(out, procEntry{pid: pid, ppid: ppid})
	}
	return out
}

func procNS(pid int) string {
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return ns
}

func procCmd(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return truncate(strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")), 100)
}

// scan records the namespaces of this process's descendants and the
// plugins' peak memory.
func (w *hostWatch) scan() {
	procs := readProcs()
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	queue := []int{os.Getpid()}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			queue = append(queue, c)
			if ns := procNS(c); ns != "" && ns != w.self {
				if _, ok := w.namespaces[ns]; !ok {
					w.namespaces[ns] = procCmd(c)
				}
			}
			cmd := procCmd(c)
			if strings.Contains(cmd, "__runner") {
				if peak := vmHWM(c); peak > w.pluginPeak {
					w.pluginPeak = peak
				}
			}
		}
	}
}

// vmHWM is a process's peak resident memory in bytes.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// leftovers lists processes still alive in a sandbox the run made, waiting
// up to grace for them to go.
func (w *hostWatch) leftovers(grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for {
		var left []string
		for _, p := range readProcs() {
			if _, ok := w.namespaces[procNS(p.pid)]; ok {
				left = append(left, fmt.Sprintf("pid %d %q", p.pid, procCmd(p.pid)))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The other run of other_run_read: a victim run that leaves files and
// waits, in the background.
type victimRun struct {
	tempDir string
	targets []string
	done    chan struct{}
	log     *logWatch
	stdout  string
}

func (b *battery) startVictim(t *testing.T) *victimRun {
	t.Helper()
	v := &victimRun{done: make(chan struct{}), log: newLogWatch(nil)}
	src := b.placeholders(nil).Replace(mustRead(t, filepath.Join(b.root, "testdata/attacks/other_run_leave.lua")))
	path := filepath.Join(b.dir, "other_run_leave.lua")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	go func() {
		defer close(v.done)
		defer cancel()
		v.stdout, _ = runHWE(ctx, b.dir, v.log, "run", "--json", path)
	}()
	t.Cleanup(func() { // if the test stops early, the victim must not linger
		cancel()
		<-v.done
	})
	// Wait for its three steps to have left their files, then find them on
	// the host by name.
	deadline := time.Now().Add(time.Minute)
	for _, r := range []string{"python", "javascript", "shell"} {
		for {
			files, _ := filepath.Glob(filepath.Join(os.TempDir(), "hwe-run-*", "cwd-"+r+"-"+b.id))
			if len(files) == 1 {
				v.tempDir = filepath.Dir(files[0])
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the victim run did not start its steps: %s", v.log.head())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, r := range []string{"python", "javascript", "shell"} {
		name := "private-" + r + "-" + b.id + ".txt"
		found := findFiles(name, os.TempDir(), 5)
		found = append(found, findFiles(name, "/var/tmp", 4)...)
		if len(found) < 2 {
			t.Fatalf("the victim's %s step left %d files on the host (%v), want 2: its /tmp and its private folder", r, len(found), found)
		}
		// Where the host has them, and the same name in the reader's own /tmp.
		v.targets = append(v.targets, found...)
		v.targets = append(v.targets, "/tmp/"+name)
	}
	return v
}

// finishVictim lets the victim run end and checks it was unharmed.
func (b *battery) finishVictim(t *testing.T, v *victimRun) string {
	t.Helper()
	// run() released it once the attacks were done, and waited for it.
	var r runResult
	if err := json.Unmarshal([]byte(v.stdout), &r); err != nil || r.Status != "succeeded" {
		t.Errorf("the victim run did not succeed: %s %s", v.stdout, v.log.head())
		return "❌ the other run failed"
	}
	return "✅ the other run's files were on the host at the paths tried, and it succeeded"
}

// findFiles lists the files under root, at most depth folders down, whose
// names contain part.
func findFiles(part, root string, depth int) []string {
	var found []string
	rootDepth := strings.Count(filepath.Clean(root), "/")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.Contains(d.Name(), part) {
			found = append(found, p)
		}
		if d.IsDir() && p != root && strings.Count(p, "/")-rootDepth >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

func checkNoEscapedFiles(t *testing.T, b *battery, _ *attackRun) string {
	marker := "hwe-attack-" + b.id
	var found []string
	for _, where := range []struct {
		root  string
		depth int
	}{{"/etc", 1}, {"/var/tmp", 3}, {"/root", 1}, {b.root, 1}, {filepath.Dir(b.granted), 3}} {
		found = append(found, findFiles(marker, where.root, where.depth)...)
	}
	for _, f := range found {
		os.Remove(f)
	}
	if len(found) > 0 {
		t.Errorf("files written outside the sandbox: %v", found)
		return "❌ escaped: " + strings.Join(found, ", ")
	}
	for _, r := range []string{"python", "javascript", "shell", "wasm"} {
		if _, err := os.Stat(filepath.Join(b.granted, "control-"+r+"-"+b.id)); err != nil {
			t.Errorf("the %s step could not write in its granted folder (the control): %v", r, err)
			return "❌ control write missing"
		}
	}
	return "✅ no file named hwe-attack-ID on the host; every step wrote its control file in the granted folder"
}

func checkTCPListener(t *testing.T, b *battery, _ *attackRun) string {
	if n, paths := b.tcp.count(); n != 1 || !slices.Equal(paths, []string{"/control"}) {
		t.Errorf("the TCP listener saw %d connections (requests %v); only the control step's 1 was allowed", n, paths)
		return fmt.Sprintf("❌ listener saw %d connections", n)
	}
	return "✅ the listener saw only the granted control step's connection"
}

func checkUDPListener(t *testing.T, b *battery, _ *attackRun) string {
	time.Sleep(200 * time.Millisecond)
	if n := b.udp.count.Load(); n != 0 {
		t.Errorf("the UDP listener received %d datagrams", n)
		return fmt.Sprintf("❌ listener received %d datagrams", n)
	}
	return "✅ the listener received nothing"
}

func checkRedirectTarget(t *testing.T, b *battery, _ *attackRun) string {
	if n, paths := b.forbidden.count(); n != 0 {
		t.Errorf("the forbidden server got %d connections (%v)", n, paths)
		return fmt.Sprintf("❌ the forbidden server got %d connections", n)
	}
	return "✅ the forbidden server got no connection; the control steps fetched the granted one"
}

func checkSecretControls(t *testing.T, b *battery, r *attackRun) string {
	want := map[string]int{"secret": len("sekrit-" + b.id), "plain": len("plain-" + b.id)}
	for _, lang := range attackRunners {
		s := r.step("control_" + lang)
		if s == nil || s.Status != "succeeded" {
			continue // reported by mustSucceed
		}
		var got map[string]int
		_ = json.Unmarshal(s.Output, &got)
		for k, n := range want {
			if _, asked := got[k]; asked && got[k] != n {
				t.Errorf("control_%s got %s of %d bytes, want %d", lang, k, got[k], n)
			}
		}
	}
	return "✅ granted steps got both values; neither appears in any output or log"
}

func checkBackgroundGone(t *testing.T, b *battery, _ *attackRun) string {
	marker := "hwe-bg-" + b.id
	deadline := time.Now().Add(3 * time.Second)
	for {
		var left []string
		for _, p := range readProcs() {
			if strings.Contains(procCmd(p.pid), marker) {
				left = append(left, strconv.Itoa(p.pid))
			}
		}
		if len(left) == 0 {
			return "✅ no process named hwe-bg-ID on the host after the run"
		}
		if time.Now().After(deadline) {
			t.Errorf("background processes alive after the run: pids %v", left)
			return "❌ background processes alive after the run"
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// floodLimit bounds what a 100 MB flood may cost hwe and its plugins: a
// few times the 16 MiB caps, not the flood's size.
const floodLimit = 64 << 20

// inProcessLimit bounds the in-process runners' floods: their memory is
// hwe's heap, capped by the step's memory limit (the policy's 1 GiB).
const inProcessLimit = 1<<30 + 64<<20

func (b *battery) checkFlood(t *testing.T, c attackCase, r *attackRun) string {
	ok := true
	if strings.HasPrefix(c.file, "stdout_flood") {
		for _, want := range c.steps {
			got := r.log.logBytes[want.step]
			if got > 16<<20+64<<10 {
				t.Errorf("step %s logged %d bytes, past the 16 MiB log cap", want.step, got)
				ok = false
			}
			notice := "log limit of"
			if strings.HasSuffix(want.step, "_one_line") {
				notice = "[line truncated]"
			}
			if !slices.ContainsFunc(r.log.notices[want.step], func(n string) bool { return strings.Contains(n, notice) }) {
				t.Errorf("step %s: no %q notice in its log (notices: %q)", want.step, notice, r.log.notices[want.step])
				ok = false
			}
		}
	}
	heapLimit := int64(floodLimit)
	if c.inProcess {
		heapLimit = inProcessLimit
	}
	if r.heapGrowth > heapLimit {
		t.Errorf("hwe's heap grew by %d MiB during the %s run (the flood is 100 MB; the caps are 16 MiB)", r.heapGrowth>>20, c.file)
		ok = false
	}
	if !c.inProcess && r.pluginPeak > floodLimit+64<<20 {
		t.Errorf("a runner plugin process peaked at %d MiB resident during the %s run", r.pluginPeak>>20, c.file)
		ok = false
	}
	mark := "✅"
	if !ok {
		mark = "❌"
	}
	if c.inProcess {
		return fmt.Sprintf("%s %s: hwe's heap grew by at most %d MiB (the steps' own memory); the run took %.1f s",
			mark, strings.Join(stepNames(c), ", "), r.heapGrowth>>20, r.elapsed.Seconds())
	}
	return fmt.Sprintf("%s %s: hwe's heap grew by at most %d MiB, a plugin process peaked at %d MiB resident; the run took %.1f s",
		mark, strings.Join(stepNames(c), ", "), r.heapGrowth>>20, r.pluginPeak>>20, r.elapsed.Seconds())
}

func stepNames(c attackCase) []string {
	var out []string
	for _, s := range c.steps {
		r := s.runner
		if r == "" {
			r = s.step
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// The servers the attacks aim at.

type countingServer struct {
	addr  string
	mu    sync.Mutex
	conns int
	paths []string
}

func newCountingServer(t *testing.T, h http.Handler) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.paths = append(s.paths, r.URL.Path)
			s.mu.Unlock()
			h.ServeHTTP(w, r)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.conns++
				s.mu.Unlock()
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *countingServer) count() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, slices.Clone(s.paths)
}

type udpCounter struct {
	addr  string
	count atomic.Int64
}

func newUDPCounter(t *testing.T) *udpCounter {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &udpCounter{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			u.count.Add(1)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return u
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// needInterpreters fails (never skips) when an interpreter the runners use
// is missing.
func needInterpreters(t testing.TB) {
	t.Helper()
	for _, need := range []struct{ path, name, pkg string }{
		{"/usr/bin/python3", "python3", "python3"},
		{"", "node", "nodejs"},
		{"/bin/bash", "bash", "bash"},
	} {
		if need.path != "" {
			if _, err := os.Stat(need.path); err == nil {
				continue
			}
		}
		if _, err := exec.LookPath(need.name); err != nil {
			t.Fatalf("the attack battery needs %s: install it (apt-get install %s)", need.name, need.pkg)
		}
	}
}

// buildAttackGuest builds testdata/attacks/wasmguest into dir with the Go
// toolchain running the tests.
func buildAttackGuest(t *testing.T, dir string) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	out := filepath.Join(dir, "attacks.wasm")
	cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join(repoRoot(t), "testdata/attacks/wasmguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the WASM attack guest: %v\n%s", err, b)
	}
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sanitize makes an error stable for the published table: the run's id,
// ports and temporary paths vary.
func (b *battery) sanitize(s string) string {
	s = strings.ReplaceAll(s, b.id, "ID")
	s = strings.ReplaceAll(s, b.granted, "GRANTED")
	s = strings.ReplaceAll(s, b.root, "REPO")
	s = strings.ReplaceAll(s, b.dir, "WFDIR")
	for _, a := range []string{b.tcp.addr, b.allowed.addr, b.forbidden.addr, b.udp.addr} {
		s = strings.ReplaceAll(s, a, "127.0.0.1:PORT")
		s = strings.ReplaceAll(s, port(a), "PORT")
	}
	s = regexp.MustCompile(`/tmp/hwe-run-\d+`).ReplaceAllString(s, "/tmp/hwe-run-N")
	s = regexp.MustCompile(`/tmp/hwe-steps-\d+/([a-z]+)-worker-\d+`).ReplaceAllString(s, "/tmp/hwe-steps-N/$1-worker-N")
	s = regexp.MustCompile(`/var/tmp/hwe-sandbox/[^/\s'"]+`).ReplaceAllString(s, "/var/tmp/hwe-sandbox/STEP")
	s = regexp.MustCompile(`\d+ processes`).ReplaceAllString(s, "N processes")
	return s
}

func quoteCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = truncate(s, 220)
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "`", "'")
	return "`" + s + "`"
}

// writeTable puts the results and the active layers into docs/SECURITY.md,
// between its generated-section markers.
func (b *battery) writeTable(t *testing.T, report sandbox.Report) {
	var tb strings.Builder
	fmt.Fprintf(&tb, "| attack | %s | host |\n|---|", strings.Join(attackRunners, " | "))
	for range attackRunners {
		tb.WriteString("---|")
	}
	tb.WriteString("---|\n")
	rows := make([]*tableRow, 0, len(b.rows))
	for _, r := range b.rows {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].order < rows[j].order })
	for _, r := range rows {
		fmt.Fprintf(&tb, "| %s |", r.title)
		for _, lang := range attackRunners {
			fmt.Fprintf(&tb, " %s |", strings.Join(r.cells[lang], "<br>"))
		}
		fmt.Fprintf(&tb, " %s |\n", r.host)
	}
	var layers strings.Builder
	fmt.Fprintf(&layers, "Kernel %s, hwe running as %s, mode %s.\n\n| layer | state | detail |\n|---|---|---|\n", report.Kernel, report.User, report.Mode)
	for _, l := range report.Layers {
		state := "active"
		if !l.Active {
			state = "off"
		}
		fmt.Fprintf(&layers, "| %s | %s | %s |\n", l.Name, state, strings.ReplaceAll(l.Detail, "|", "\\|"))
	}
	path := filepath.Join(b.root, "docs/SECURITY.md")
	doc := mustRead(t, path)
	doc = replaceSection(t, doc, "attack-table", tb.String())
	doc = replaceSection(t, doc, "layers", layers.String())
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceSection(t *testing.T, doc, name, body string) string {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("docs/SECURITY.md has no %s ... %s markers", begin, end)
	}
	return doc[:i+len(begin)] + "\n" + body + doc[j:]
}
