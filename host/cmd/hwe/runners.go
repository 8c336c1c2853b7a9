package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/plugin"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/sandbox"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
	noderunner "github.com/hwe-run/hwe/plugins/node"
	"github.com/hwe-run/hwe/plugins/proc"
	pythonrunner "github.com/hwe-run/hwe/plugins/python"
	shellrunner "github.com/hwe-run/hwe/plugins/shell"
	wasmrunner "github.com/hwe-run/hwe/plugins/wasm"
)

// Settings that reach the subprocess plugins through their (otherwise empty)
// environment.
const (
	envPython = "HWE_PYTHON"
	envNode   = "HWE_NODE"
	envBash   = "HWE_BASH"
)

// builtinRunner builds the runner a re-executed `hwe __runner NAME` serves.
// It runs inside the plugin process, whose environment holds only what
// subprocessConfig put there.
func builtinRunner(name string) api.Runner {
	switch name {
	case "python":
		return pythonrunner.New(pythonrunner.Options{
			Interpreter: os.Getenv(envPython),
			WorkerOptions: proc.WorkerOptions{
				Spawn:     sandboxSpawn,
				WorkerKey: sandboxKey,
				Inside:    sandboxInside,
			},
		})
	case "node":
		return noderunner.New(noderunner.Options{
			Interpreter: os.Getenv(envNode),
			WorkerOptions: proc.WorkerOptions{
				Spawn:     sandboxSpawn,
				WorkerKey: sandboxKey,
				Inside:    sandboxInside,
			},
		})
	case "shell":
		return shellrunner.New(shellrunner.Options{Bash: os.Getenv(envBash),
			Spawn: sandboxSpawn, Inside: sandboxInside})
	}
	return nil
}

// The OS sandbox around every interpreter process. HWE_SANDBOX=off in the
// plugin's environment (from --sandbox=off) turns it into a scrubbed
// environment and a private folder only. The sandbox also explains a
// process's death: killed by the cgroup for its memory, or for its CPU
// time, is the step's limit, not a runner crash.
func sandboxSpawn(cmd *exec.Cmd, info proc.SpawnInfo) (func(), error) {
	sb, err := sandbox.Wrap(cmd, sandbox.SpecForGrant(info.Grant, info.Workdir, info.TempDir))
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		sb.Close()
		return nil, err
	}
	info.SetExplain(sb.Explain)
	return func() { sb.Close() }, nil
}

func sandboxKey(req *api.StepRequest) string {
	return sandbox.SpecForGrant(req.Grant, "", req.TempDir).Key()
}

func sandboxInside(info proc.SpawnInfo, hostPath string) string {
	return sandbox.SpecForGrant(info.Grant, info.Workdir, info.TempDir).Inside(hostPath)
}

// subprocessRunners describe the built-in runners served as plugins. Their
// Info() would start the interpreter to read its version, which `hwe run`
// must not pay for; `hwe plugins list` asks them for real (pluginInfos).
var subprocessRunners = []api.RunnerInfo{
	{Name: "python", Languages: []string{api.LangPython}, Kind: "builtin-plugin"},
	{Name: "node", Languages: []string{api.LangJavaScript}, Kind: "builtin-plugin"},
	{Name: "shell", Languages: []string{api.LangShell}, Kind: "builtin-plugin"},
}

// runners builds the registry of every runner for a configuration: Lua and
// WASM in process, Python, JavaScript and shell as plugins of this same
// binary, and third-party hwe-runner-<language> plugins found on the plugin
// path. Nothing is started until a step needs it.
func runners(cfg *config.Config) (*registry.Registry, error) {
	reg := registry.New()
	reg.Register(luarunner.New(luarunner.Options{}))
	reg.Register(wasmrunner.New(wasmrunner.Options{WorkDir: cfg.Dir}))

	env := []string{"HWE_SANDBOX=" + cfg.Get("sandbox")}
	for key, name := range map[string]string{"python": envPython, "node": envNode, "bash": envBash} {
		if v := cfg.Get(key); v != "" {
			env = append(env, name+"="+v)
		}
	}
	for _, info := range subprocessRunners {
		pc := plugin.BuiltinConfig(info)
		pc.Env = env
		for _, lang := range info.Languages {
			reg.RegisterFactory(lang, info, func() (api.Runner, error) { return plugin.NewClient(pc) })
		}
	}
	for _, f := range plugin.Discover(pluginDirs(cfg)) {
		if f.Err != nil || reg.Has(f.Language) {
			continue // built-in languages are not overridden; broken plugins show in `hwe plugins list`
		}
		pc := f.Config()
		info := api.RunnerInfo{Name: f.Language, Languages: []string{f.Language}, Kind: "plugin", Path: f.Path}
		reg.RegisterFactory(f.Language, info, func() (api.Runner, error) { return plugin.NewClient(pc) })
	}
	return reg, nil
}

// pluginDirs is the plugin search path: plugin_path (HWE_PLUGIN_PATH), then ~/.hwe/plugins.
func pluginDirs(cfg *config.Config) []string {
	var dirs []string
	for _, d := range strings.Split(cfg.Get("plugin_path"), ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".hwe", "plugins"))
	}
	return dirs
}

// pluginInfos lists the runners served as plugins, built-in and third-party,
// with the version each reports.
func pluginInfos(cfg *config.Config) []api.RunnerInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []api.RunnerInfo
	for _, sr := range subprocessRunners {
		info := builtinRunner(sr.Name).Info()
		info.Kind = "builtin-plugin"
		out = append(out, info)
	}
	for _, l := range plugin.List(ctx, plugin.Discover(pluginDirs(cfg)), nil) {
		info := l.RunnerInfo
		if l.Err != nil {
			info.Version = "unusable: " + l.Err.Error()
		}
		out = append(out, info)
	}
	return out
}
