package server_test

import (
	"context"
	"fmt"
	"os"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/policy"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/server"
	"github.com/hwe-run/hwe/host/store"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
	"github.com/urfave/cli/v2"
)

// Wiring `hwe serve` and `hwe runs` into a CLI: the commands only need a
// way to build the executor (here a registry with the Lua runner) and,
// optionally, the configured defaults and the host API.
func ExampleCommands() {
	newRuntime := func(*cli.Context) (*server.Runtime, error) {
		reg := registry.New()
		reg.Register(luarunner.New(luarunner.Options{}))
		local := policy.Local()
		base := capability.Config{KV: capability.NewMemoryKV()}
		return &server.Runtime{
			Executor:      reg,
			KnownLanguage: reg.Has,
			Policy:        &local, // the local tenant's policy; tenants bring their own
			NewHost: func(t *server.Tenant, req *api.StepRequest, emit engine.HostEvents) api.Host {
				return capability.ForStep(base, req, emit)
			},
			Close: reg.Close,
		}, nil
	}
	app := &cli.App{Name: "hwe", Commands: server.Commands(server.Deps{
		Defaults: func(*cli.Context) (server.Defaults, error) {
			return server.Defaults{Addr: "127.0.0.1:8080", DataDir: ".hwe", WorkflowsDir: "workflows"}, nil
		},
		Runtime: newRuntime,
	})}
	for _, c := range app.Commands {
		fmt.Println(c.Name)
	}
	// Output:
	// serve
	// runs
}

// Running the server as a library: Serve blocks until ctx is cancelled.
func ExampleServe() {
	st, err := store.Open("") // in memory; store.Open(dir) keeps history in dir/hwe.db
	if err != nil {
		panic(err)
	}
	defer st.Close()
	reg := registry.New()
	reg.Register(luarunner.New(luarunner.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real program cancels on SIGTERM
	err = server.Serve(ctx, server.Config{Addr: "127.0.0.1:0", Executor: reg, Store: st, WorkflowsDir: os.TempDir()}, nil)
	fmt.Println(err)
	// Output: <nil>
}
