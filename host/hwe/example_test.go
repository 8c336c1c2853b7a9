package hwe_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/hwe"
	"github.com/hwe-run/hwe/plugins/lua"
)

// Load a workflow from a string and run it with the Lua runner.
func Example() {
	src := `workflow = { name = "hello", steps = {
		greet = { code = [[ function run() return { who = "world" } end ]] },
		shout = { depends_on = { "greet" }, code = [[ function run(i) return "hello " .. i.greet.who end ]] },
	} }`
	opts := hwe.Options{Runners: []api.Runner{lua.New(lua.Options{})}}
	wf, err := hwe.LoadString("hello.lua", src, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	res := hwe.Run(context.Background(), wf, opts)
	for _, s := range res.Steps {
		fmt.Println(s.Name, s.Status, string(s.Output))
	}
	// Output:
	// greet succeeded {"who":"world"}
	// shout succeeded "hello world"
}

// Invalid workflows come back as Problems, each at a file line.
func ExampleLoadString_problems() {
	src := `workflow = { steps = {
  a = { depends_on = { "missing" }, code = "function run() end" },
} }`
	_, err := hwe.LoadString("bad.lua", src, hwe.Options{Runners: []api.Runner{lua.New(lua.Options{})}})
	fmt.Println(err)
	// Output:
	// bad.lua:2: step "a" depends on unknown step "missing"
}

// Events report every step transition and log line as it happens.
func ExampleRun_events() {
	opts := hwe.Options{Runners: []api.Runner{lua.New(lua.Options{})}}
	wf, _ := hwe.LoadString("log.lua", `workflow = { steps = { a = { code = [[ function run() print("working") return 1 end ]] } } }`, opts)
	opts.OnEvent = func(e hwe.Event) {
		if e.Step != "" {
			fmt.Println(strings.TrimSpace(fmt.Sprint(e.Type, " ", e.Step, " ", e.Line)))
		}
	}
	hwe.Run(context.Background(), wf, opts)
	// Output:
	// step_started a
	// log a working
	// output a
	// step_finished a
}
