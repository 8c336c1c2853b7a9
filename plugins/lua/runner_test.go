package lua_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
)

type logHost struct {
	api.NopHost
	mu    sync.Mutex
	lines []string
}

func (h *logHost) Log(stream, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, stream+":"+line)
}

func run(t *testing.T, r *luarunner.Runner, code string, inputs map[string]string, timeout time.Duration) (string, error) {
	t.Helper()
	req := &api.StepRequest{Step: "s", Language: api.LangLua, Code: code, WorkflowFile: "wf.lua", CodeLine: 10}
	if inputs != nil {
		req.Inputs = map[string]json.RawMessage{}
		for k, v := range inputs {
			req.Inputs[k] = json.RawMessage(v)
		}
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out, err := r.Run(ctx, req, &logHost{})
	return string(out), err
}

func TestConversionRules(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	cases := []struct{ code, want string }{
		{`function run() return "initialized" end`, `"initialized"`},
		{`function run() end`, `null`},
		{`function run() return {x=10/2, z=2^2, f=1.5} end`, `{"f":1.5,"x":5,"z":4}`},
		{`function run() return {[1]='a',[3]='c'} end`, `["a",null,"c"]`},
		{`function run() return {} end`, `{}`},
		{`function run() return {1,2,k='v'} end`, `{"1":1,"2":2,"k":"v"}`},
		{`function run() return 0/0 end`, `null`},
		{`function run() return {s="<&>"} end`, `{"s":"<&>"}`},
		{`function run() return true, 2 end`, `true`},
	}
	for _, c := range cases {
		got, err := run(t, r, c.code, nil, 0)
		if err != nil || got != c.want {
			t.Errorf("%s\n got %s (%v)\nwant %s", c.code, got, err, c.want)
		}
	}
}

func TestInputsNullsAndArrays(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	got, err := run(t, r, `function run(i) return { arr = i.a.arr, obj = i.a.obj, n = #i.a.arr, empty = i.a.empty } end`,
		map[string]string{"a": `{"arr":[1,null,3],"obj":{"k":null,"j":1},"empty":[]}`}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != `{"arr":[1,null,3],"empty":{},"n":3,"obj":{"j":1}}` {
		t.Fatalf("got %s", got)
	}
}

func TestRootCalledWithoutArgument(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	got, _ := run(t, r, `function run(...) return select('#', ...) end`, nil, 0)
	if got != "0" {
		t.Fatalf("root run got %s arguments", got)
	}
	got, _ = run(t, r, `function run(...) return select('#', ...) end`, map[string]string{"a": "1"}, 0)
	if got != "1" {
		t.Fatalf("dependent run got %s arguments", got)
	}
}

func TestErrorsPointAtWorkflowLine(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	_, err := run(t, r, "function run()\n  local x = nil\n  return x.y\nend", nil, 0)
	var se *api.StepError
	if !errors.As(err, &se) || se.Line != 12 || se.File != "wf.lua" {
		t.Fatalf("got %v (%#v)", err, se)
	}
	if !strings.HasPrefix(err.Error(), "wf.lua:12: ") {
		t.Fatalf("message %q", err)
	}
	_, err = run(t, r, "function run()\n  return 1 +\nend", nil, 0)
	if !errors.As(err, &se) || se.Line != 12 || !strings.Contains(se.Message, "syntax error") {
		t.Fatalf("syntax: %v", err)
	}
	_, err = run(t, r, `x = 1`, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "does not define a function run") {
		t.Fatalf("missing run: %v", err)
	}
}

func TestStepsAreIsolated(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	// Poison globals and library tables in one step...
	_, err := run(t, r, `leaked = 42; string.upper = function() return "pwned" end; math.pi = 3
		function run() return 1 end`, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// ...and the next step on the same pooled state sees none of it.
	for i := 0; i < 4; i++ {
		got, err := run(t, r, `function run() return { leaked = leaked == nil, up = string.upper("a"), meth = ("b"):upper(), pi = math.pi > 3.14 } end`, nil, 0)
		if err != nil || got != `{"leaked":true,"meth":"B","pi":true,"up":"A"}` {
			t.Fatalf("isolation broken: %s %v", got, err)
		}
	}
	got, err := run(t, r, `function run() return getmetatable("") end`, nil, 0)
	if err != nil || got != "false" {
		t.Fatalf("string metatable reachable: %s %v", got, err)
	}
}

func TestSandboxedLibraries(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	got, err := run(t, r, `function run() return { io = io == nil, exec = os.execute == nil, req = require == nil,
		load = loadstring == nil, dofile = dofile == nil, time = type(os.time()) } end`, nil, 0)
	if err != nil || got != `{"dofile":true,"exec":true,"io":true,"load":true,"req":true,"time":"number"}` {
		t.Fatalf("got %s %v", got, err)
	}
}

func TestPrintGoesToLog(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	h := &logHost{}
	_, err := r.Run(context.Background(), &api.StepRequest{Step: "p", Code: `function run() print("a", 1, nil) print("x\ny") end`}, h)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(h.lines, "|") != "stdout:a\t1\tnil|stdout:x|stdout:y" {
		t.Fatalf("log %q", h.lines)
	}
}

func TestHostileStepsFailAlone(t *testing.T) {
	r := luarunner.New(luarunner.Options{MemoryLimit: 256 << 20})
	hostile := map[string]string{
		"recursion":        `function f(n) return f(n+1) + 1 end function run() return f(1) end`,
		"vararg recursion": `local function f(...) return f(1, ...) end function run() return f() end`,
		"endless loop":     `function run() while true do end end`,
		"huge rep":         `function run() return string.rep("x", 1e9) end`,
		"doubling":         `function run() local s = "x" while true do s = s .. s end end`,
		"table bomb":       `function run() local t = {} local i = 0 while true do i = i + 1 t[i] = {i, i, i} end end`,
	}
	for name, code := range hostile {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := run(t, r, code, nil, 2*time.Second)
			if err == nil {
				t.Fatal("hostile step succeeded")
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
			t.Logf("%s -> %v", name, err)
		})
	}
	// The runner still works afterwards.
	if got, err := run(t, r, `function run() return 7 end`, nil, 0); err != nil || got != "7" {
		t.Fatalf("runner broken after hostile steps: %s %v", got, err)
	}
}

func TestConcurrentSteps(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			in := map[string]string{"n": strings.Repeat("1", 1+i%5)}
			got, err := run(t, r, `function run(i) x = i.n return x * 2 end`, in, 0)
			want := strings.Repeat("1", 1+i%5)
			var n int
			json.Unmarshal([]byte(want), &n)
			var g int
			json.Unmarshal([]byte(got), &g)
			if err != nil || g != n*2 {
				t.Errorf("got %s %v want %d", got, err, n*2)
			}
		}(i)
	}
	wg.Wait()
}

func TestCatastrophicPatternRefused(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	start := time.Now()
	_, err := run(t, r, `function run() return string.find(string.rep("a", 80), ".-.-.-.-.-.-.-.-b") end`, nil, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "backtrack") || time.Since(start) > time.Second {
		t.Fatalf("got %v after %s", err, time.Since(start))
	}
	// ordinary patterns still work, on long subjects too
	got, err := run(t, r, `function run()
		local s = "  " .. string.rep("x", 20000) .. "  "
		local trimmed = s:match("^%s*(.-)%s*$")
		local k, v = ("key=value"):match("(%w+)=(%w+)")
		local n = 0
		for w in ("a b c d"):gmatch("%a+") do n = n + 1 end
		return { len = #trimmed, k = k, v = v, n = n, sub = ("hello"):gsub("l", "L") }
	end`, nil, 5*time.Second)
	if err != nil || got != `{"k":"key","len":20000,"n":4,"sub":"heLLo","v":"value"}` {
		t.Fatalf("got %s %v", got, err)
	}
}

func TestFloorDivision(t *testing.T) {
	r := luarunner.New(luarunner.Options{})
	got, err := run(t, r, `function run()
		local s = "a // b" -- not touched: // in a comment
		return { x = 10/2, y = 7//2, z = 2^2, neg = -7 // 2, chain = 100 // 3 // 2, prec = 1 + 7 // 2 * 2, s = s, long = [[//]] }
	end`, nil, 0)
	if err != nil || got != `{"chain":16,"long":"//","neg":-4,"prec":7,"s":"a // b","x":5,"y":3,"z":4}` {
		t.Fatalf("got %s %v", got, err)
	}
}

func TestMemoryLimitStopsOnlyTheHog(t *testing.T) {
	r := luarunner.New(luarunner.Options{MemoryLimit: 1 << 30})
	var wg sync.WaitGroup
	var neighbourErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, neighbourErr = run(t, r, `function run() local t = os.clock() while os.clock() - t < 1.5 do end return 1 end`, nil, 10*time.Second)
	}()
	time.Sleep(50 * time.Millisecond)
	req := &api.StepRequest{Step: "hog", Code: `function run() local t = {} local i = 0 while true do i = i + 1 t[i] = {i, i, i} end end`,
		Grant: api.Grant{Memory: 128 << 20}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := r.Run(ctx, req, api.NopHost{})
	if err == nil || !strings.Contains(err.Error(), "memory limit exceeded") || !strings.Contains(err.Error(), "limit 128 MiB") {
		t.Fatalf("hog: %v", err)
	}
	wg.Wait()
	if neighbourErr != nil {
		t.Fatalf("the neighbour with a larger limit was stopped too: %v", neighbourErr)
	}
}
