// Package proc is the one place where the python, node and shell runners
// start operating-system processes. Every process is started through a
// SpawnFunc (so a sandbox can wrap the launch), in its own process group (so
// the whole tree a step started can be killed at once), with an environment
// built from nothing rather than inherited from hwe.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/hwe-run/hwe/host/api"
)

// DefaultPATH is the PATH steps see unless a runner is configured otherwise.
// It is fixed rather than copied from hwe's own environment, so a developer's
// shims and tool folders do not change what a step runs.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SpawnInfo says what a process is for, so a SpawnFunc can choose how to
// confine it.
type SpawnInfo struct {
	Runner  string    // "python", "node", "shell"
	Tenant  string    // the tenant whose steps the process serves
	Grant   api.Grant // the grant of the step that asked for the process
	Purpose string    // PurposeWorker or PurposeStep

	// Workdir is the process's own private folder (a host path, also
	// cmd.Dir before the SpawnFunc runs). TempDir is the run scratch folder
	// of the step that asked for the process ("" = none); a warm worker
	// serves other steps only if their WorkerKey is the same, so a sandbox
	// that mounts TempDir must have the key include it.
	Workdir string
	TempDir string

	// explain is where SetExplain leaves its function (set by Start).
	explain *func(waitErr error) error
}

// SetExplain is for a SpawnFunc that can tell why a process it started
// ended, for instance a sandbox that knows the process was killed for going
// over its memory or CPU limit. It registers explain, which the runner
// calls with the error of cmd.Wait before calling release; explain returns
// an *api.LimitError for a limit it recognises and waitErr otherwise. A
// SpawnFunc calls it before it returns; one that does not leaves exits
// unexplained.
func (i SpawnInfo) SetExplain(explain func(waitErr error) error) {
	if i.explain != nil {
		*i.explain = explain
	}
}

// Purposes of a spawned process.
const (
	PurposeWorker = "worker" // a warm interpreter that runs many steps of one tenant and key
	PurposeStep   = "step"   // a process that runs exactly one step
)

// SpawnFunc starts cmd. cmd arrives fully prepared: Path, Args, Env, Dir,
// stdio, ExtraFiles and SysProcAttr (own process group, killed if hwe dies).
// A sandbox may rewrite the command (wrap it in a helper, add namespaces), but
// it must keep the process in its own process group, because the runners
// stop a step by killing that group. It must not wait for the process.
//
// release, if not nil, is called once the process has been reaped and its
// group killed (a sandbox frees its uid, cgroups and folders there).
type SpawnFunc func(cmd *exec.Cmd, info SpawnInfo) (release func(), err error)

// InsideFunc maps a host folder a step uses (its TempDir or the process's
// Workdir) to the path the process sees it at, for sandboxes that mount
// folders elsewhere. nil means the same path.
type InsideFunc func(info SpawnInfo, hostPath string) string

// Inside applies f, or returns hostPath when f is nil.
func (f InsideFunc) Inside(info SpawnInfo, hostPath string) string {
	if f == nil || hostPath == "" {
		return hostPath
	}
	return f(info, hostPath)
}

// StartDirect is the default SpawnFunc: it starts cmd as it is.
func StartDirect(cmd *exec.Cmd, _ SpawnInfo) (func(), error) { return nil, cmd.Start() }

// Start prepares cmd's process attributes and starts it through spawn (nil
// means StartDirect). The returned release and explain are never nil:
// explain (see SpawnInfo.SetExplain) turns the error of cmd.Wait into the
// limit the process hit, when spawn can tell; call it before release.
func Start(spawn SpawnFunc, cmd *exec.Cmd, info SpawnInfo) (release func(), explain func(waitErr error) error, err error) {
	if spawn == nil {
		spawn = StartDirect
	}
	info.explain = &explain
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// If hwe (or the plugin process) dies, its interpreters die with it.
	// (Linux ties this to the OS thread that started the process; the host
	// never ends threads, and warm workers also exit when their request
	// pipe closes.)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	release, err = spawn(cmd, info)
	if release == nil {
		release = func() {}
	}
	if err != nil {
		release()
		return func() {}, unexplained, err
	}
	if explain == nil {
		explain = unexplained
	}
	return release, explain, nil
}

func unexplained(waitErr error) error { return waitErr }

// KillGroup kills the process group led by cmd's process: the interpreter
// and everything the step started from it. It is safe to call more than once
// and after the process has exited.
func KillGroup(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	pid := cmd.Process.Pid
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}

// Env builds a step's environment from nothing: PATH, HOME (the step's
// scratch folder), LANG=C.UTF-8, then the step's own variables (which may
// override the first three), then extra (set last, e.g. INPUT_* variables).
// The result is sorted so it is the same for the same inputs.
func Env(path, home string, stepEnv map[string]string, extra map[string]string) []string {
	if path == "" {
		path = DefaultPATH
	}
	vars := map[string]string{"PATH": path, "HOME": home, "LANG": "C.UTF-8"}
	for k, v := range stepEnv {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			continue // not representable in an environment block
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// EnvMap is Env as a map, for runners that hand the environment to a warm
// interpreter instead of to exec.
func EnvMap(path, home string, stepEnv map[string]string) map[string]string {
	m := make(map[string]string)
	for _, kv := range Env(path, home, stepEnv, nil) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Scratch makes the private folders steps run in when the engine gives
// them none. They live under one private parent folder per runner, made on
// first use and removed by Close: a folder made in a small directory costs
// microseconds, one made directly in a busy system temp folder can cost a
// millisecond or more.
type Scratch struct {
	Root string // where the parent folder goes; "" = os.TempDir()

	once   sync.Once
	parent string
	err    error
}

var errScratchClosed = errors.New("scratch area closed")

// StepDir returns the folder a step runs in: req.TempDir when the engine
// gave one, otherwise a fresh private folder that cleanup removes.
func (s *Scratch) StepDir(req *api.StepRequest) (dir string, cleanup func(), err error) {
	if req.TempDir != "" {
		return req.TempDir, func() {}, nil
	}
	dir, err = s.MakeDir("step-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}

// MakeDir makes a new private folder under the runner's parent folder.
func (s *Scratch) MakeDir(prefix string) (string, error) {
	s.once.Do(func() {
		root := s.Root
		if root == "" {
			root = os.TempDir()
		}
		s.parent, s.err = os.MkdirTemp(root, "hwe-steps-")
	})
	if s.err != nil {
		return "", fmt.Errorf("create scratch folder: %w", s.err)
	}
	dir, err := os.MkdirTemp(s.parent, prefix)
	if err != nil {
		return "", fmt.Errorf("create step folder: %w", err)
	}
	return dir, nil
}

// EmptyDir removes everything inside dir and makes it private again, so
// the folder can serve the next step.
func EmptyDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o700)
}

// Close removes the parent folder and anything left in it. No folder is
// made after Close.
func (s *Scratch) Close() error {
	s.once.Do(func() { s.err = errScratchClosed })
	if s.parent != "" {
		return os.RemoveAll(s.parent)
	}
	return nil
}

// ExitReason describes how a process ended, as in "signal: killed" or
// "exit status 1".
func ExitReason(state *os.ProcessState, waitErr error) string {
	if state != nil {
		return state.String()
	}
	if waitErr != nil {
		return waitErr.Error()
	}
	return "unknown"
}

// Profile is the part of a grant that is fixed when a process starts (what
// a sandbox confines it to), as a string. Warm workers are keyed by it: a
// worker only runs steps whose grant has the same profile. Env, secrets and
// KV are checked per call by the host, so they do not split workers.
func Profile(g api.Grant) string {
	b, err := api.MarshalCanonical(api.Grant{
		Net: g.Net, FSRead: g.FSRead, FSWrite: g.FSWrite,
		Memory: g.Memory, CPU: g.CPU, Processes: g.Processes,
	})
	if err != nil {
		return ""
	}
	return string(b)
}
