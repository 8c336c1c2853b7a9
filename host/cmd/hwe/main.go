// Command hwe runs workflows. main only wires the runners into the CLI; the
// same binary re-executes itself as the subprocess runner plugins.
package main

import (
	"os"

	"github.com/hwe-run/hwe/host/cli"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/registry"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
)

func main() {
	env := cli.OSEnv()
	env.Runners = runners
	os.Exit(cli.Main(env, os.Args))
}

// runners builds the registry of every runner for a configuration.
func runners(cfg *config.Config) (*registry.Registry, error) {
	reg := registry.New()
	reg.Register(luarunner.New(luarunner.Options{}))
	return reg, nil
}
