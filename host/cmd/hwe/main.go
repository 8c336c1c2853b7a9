// Command hwe runs workflows. main only wires the runners into the CLI; the
// same binary re-executes itself as the subprocess runner plugins
// (`hwe __runner python`), so there is one file to install.
package main

import (
	"os"

	"github.com/hwe-run/hwe/host/cli"
	"github.com/hwe-run/hwe/host/plugin"
	"github.com/hwe-run/hwe/host/sandbox"
)

func main() {
	sandbox.MaybeRunHelper() // never returns when this process is the sandbox helper
	if plugin.ServeBuiltinIfRequested(os.Args, builtinRunner) {
		return // this process was a runner plugin
	}
	os.Exit(hweMain())
}

// hweMain is main without the exit, so tests can run the CLI in-process.
func hweMain() int {
	env := cli.OSEnv()
	env.Runners = runners
	env.PluginInfos = pluginInfos
	env.Commands = serverCommands(env.Dir, env.Getenv)
	return cli.Main(env, os.Args)
}
