// Package cli is the `hwe` command line. Every touch of the process (streams,
// environment, working directory, signals) goes through Env, so the whole CLI
// runs in-process in tests.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/registry"
	ucli "github.com/urfave/cli/v2"
)

// Version is the hwe version printed by `hwe --version`.
var Version = "0.1.0"

// Env is everything the CLI takes from the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Dir            string // working directory
	// Context is cancelled on Ctrl-C; nil = context.Background().
	Context context.Context
	// Runners builds the runner registry for a configuration. main wires the
	// built-in runners and discovered plugins in here; the CLI never imports
	// a runner itself.
	Runners func(cfg *config.Config) (*registry.Registry, error)
	// PluginInfos lists third-party runner plugins with their versions for
	// `hwe plugins list` (nil = none).
	PluginInfos func(cfg *config.Config) []api.RunnerInfo
	// Commands are extra commands (serve, worker, runs, doctor) wired by main.
	Commands []*ucli.Command
}

// OSEnv returns an Env for the real process.
func OSEnv() *Env {
	dir, _ := os.Getwd()
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Dir: dir}
}

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

// Main runs the CLI with args (args[0] is the program name) and returns the exit status.
func Main(env *Env, args []string) int {
	app := NewApp(env)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(env.Stderr, "hwe:", ee.msg)
		}
		return ee.code
	}
	var ec ucli.ExitCoder
	if errors.As(err, &ec) {
		if err.Error() != "" {
			fmt.Fprintln(env.Stderr, "hwe:", err)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(env.Stderr, "hwe:", err)
	return 1
}

// NewApp builds the command tree.
func NewApp(env *Env) *ucli.App {
	if env.Context == nil {
		env.Context = context.Background()
	}
	app := &ucli.App{
		Name:      "hwe",
		Usage:     "run workflows of Python, JavaScript, Lua, shell and WebAssembly steps declared in Lua",
		Version:   Version,
		Reader:    env.Stdin,
		Writer:    env.Stdout,
		ErrWriter: env.Stderr,
		OnUsageError: func(_ *ucli.Context, err error, _ bool) error {
			return usageErr("%v", err)
		},
		ExitErrHandler: func(*ucli.Context, error) {}, // Main decides the exit status
		Commands: []*ucli.Command{
			runCommand(env),
			validateCommand(env),
			graphCommand(env),
			pluginsCommand(env),
			configCommand(env),
			doctorCommand(env),
		},
		CommandNotFound: func(c *ucli.Context, name string) {
			fmt.Fprintf(env.Stderr, "hwe: unknown command %q (see hwe --help)\n", name)
		},
	}
	app.Commands = append(app.Commands, env.Commands...)
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
	}
	return app
}

// loadConfig resolves the configuration for the command's working directory.
func (env *Env) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(env.Dir, env.Getenv)
	if err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	return cfg, nil
}

func (env *Env) registry(cfg *config.Config) (*registry.Registry, error) {
	if env.Runners == nil {
		return registry.New(), nil
	}
	return env.Runners(cfg)
}
