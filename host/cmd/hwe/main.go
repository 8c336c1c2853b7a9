// Command hwe runs workflows. main only wires the runners into the CLI; the
// same binary re-executes itself as the subprocess runner plugins.
package main

import (
	"os"

	"github.com/hwe-run/hwe/host/cli"
)

func main() {
	os.Exit(hweMain())
}

// hweMain is main without the exit, so tests can run the CLI in-process.
func hweMain() int {
	env := cli.OSEnv()
	env.Runners = runners
	return cli.Main(env, os.Args)
}
