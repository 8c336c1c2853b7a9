// Package sandbox runs the processes of subprocess runners (Python, Node,
// shell workers) inside OS isolation layers, on by default:
//
//   - a scrubbed environment and a private working folder;
//   - user, mount, PID, network, IPC and UTS namespaces: the step sees the
//     system's programs read-only, its workdir, the run's /tmp, /dev/null and
//     friends, its own /proc, and no network at all;
//   - an unprivileged uid of its own, distinct per concurrent step, and no
//     capabilities (checked before exec);
//   - no_new_privs, Landlock (files, TCP) and seccomp (no non-Unix sockets,
//     ptrace, mount, bpf, io_uring, keyctl, unshare, ...);
//   - cgroup memory and pids limits where the machine has them, rlimits set
//     last before exec;
//   - the whole process tree killed at timeout, cancel or Close.
//
// Each layer is probed once per process (Probe) and reported by `hwe doctor`
// (Doctor). Layers the machine lacks are skipped unless the spec or the
// policy requires them, in which case Wrap refuses to run anything.
//
// Runners call Wrap on the exec.Cmd of a worker before starting it, or
// Start to wrap and start it in one go; main calls MaybeRunHelper first
// thing, because the layers that must be applied from inside the new
// process are applied by hwe itself, re-executed as
// `hwe __sandbox-exec SPEC -- PROGRAM ARGS`. A runner's spawn hook is
//
//	spec := sandbox.SpecForGrant(info.Grant, info.Workdir, info.TempDir)
//	release, err := sandbox.Start(cmd, spec) // release after the process is reaped
//
// with spec.Inside(hostPath) giving the path a worker sees a folder at, and
// spec.Key() what a warm worker must share with the steps it serves.
//
// The program runs as PID 1 of its PID namespace, as in a container without
// an init: it ignores signals it has no handler for (SIGTERM included) unless
// they are SIGKILL, and adopts orphans. Stop it with SIGKILL or by closing
// its input; cancelling the command's context kills the whole tree.
package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Layer names, as `hwe doctor` prints them and a policy's `require` lists them.
const (
	LayerEnv          = "env"           // scrubbed environment
	LayerWorkdir      = "workdir"       // private working folder per step
	LayerNoNewPrivs   = "no_new_privs"  // no privilege gain through exec
	LayerUID          = "uid"           // unprivileged uid of its own per step
	LayerUserNS       = "user_ns"       // user namespace (when hwe is not root)
	LayerMountNS      = "mount_ns"      // private root filesystem
	LayerPIDNS        = "pid_ns"        // own process tree and /proc
	LayerNetNS        = "net_ns"        // no network interfaces
	LayerIPCNS        = "ipc_ns"        // own System V IPC
	LayerUTSNS        = "uts_ns"        // own hostname
	LayerLandlock     = "landlock"      // file access control
	LayerLandlockNet  = "landlock_net"  // TCP bind/connect control
	LayerSeccomp      = "seccomp"       // system call filter
	LayerCgroupMemory = "cgroup_memory" // memory limit on the whole tree
	LayerCgroupPids   = "cgroup_pids"   // process limit on the whole tree
	LayerRlimits      = "rlimits"       // per-process limits
	LayerKillTree     = "kill_tree"     // whole tree killed at timeout or cancel
)

// Layers lists every layer in the order `hwe doctor` prints them.
var Layers = []string{
	LayerEnv, LayerWorkdir, LayerNoNewPrivs, LayerUID, LayerUserNS,
	LayerMountNS, LayerPIDNS, LayerNetNS, LayerIPCNS, LayerUTSNS,
	LayerLandlock, LayerLandlockNet, LayerSeccomp,
	LayerCgroupMemory, LayerCgroupPids, LayerRlimits, LayerKillTree,
}

// LayerNamespaces is accepted in `require` lists for all five namespaces a
// sandbox uses whatever the user it runs as.
const LayerNamespaces = "namespaces"

// ExpandLayers checks layer names and expands "namespaces".
func ExpandLayers(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		switch {
		case n == LayerNamespaces:
			out = append(out, LayerMountNS, LayerPIDNS, LayerNetNS, LayerIPCNS, LayerUTSNS)
		case slices.Contains(Layers, n):
			out = append(out, n)
		default:
			return nil, fmt.Errorf("unknown sandbox layer %q (known: %s, %s)", n, strings.Join(Layers, ", "), LayerNamespaces)
		}
	}
	return out, nil
}

// Spec says what one sandboxed process may do. The zero value is the
// strictest sandbox with default limits.
type Spec struct {
	// Workdir is the process's private working folder (host path). Wrap
	// makes it owned by the step's uid. "" = a fresh folder that Close
	// removes. Inside, it keeps its path, or shows as /hwe/work when it is
	// under the host's /tmp (see Inside).
	Workdir string
	// TempDir is the run's scratch folder, shared by its steps; the process
	// sees it as /tmp. "" = a private /tmp for this process alone.
	TempDir string
	// ReadPaths and WritePaths are extra host paths (files or folders) the
	// process may read, or read and write, at the same paths. The system's
	// folders (/usr, /bin, /lib, /etc) are always readable. Paths under
	// /tmp are refused: /tmp is the run's TempDir.
	ReadPaths  []string
	WritePaths []string

	// Limits; zero = the default in parentheses.
	Memory      int64         // bytes for the whole process tree (1 GiB)
	CPU         time.Duration // CPU time per process (none)
	Processes   int           // processes and threads (128)
	MaxFileSize int64         // largest file written (1 GiB)
	OpenFiles   int           // open files per process (1024)

	// Network allows the process its own sockets to the outside world. Off,
	// it has no network interface and may create only Unix sockets; steps
	// reach the network through the host API (hwe.http_fetch), which checks
	// every request against the grant.
	Network bool

	// Require names layers that must be active; Wrap refuses to start
	// anything otherwise. The HWE_SANDBOX_REQUIRE environment variable
	// (comma separated) adds to it, for policies set by the CLI.
	Require []string

	// Off runs the process without OS isolation (`--sandbox=off`): only the
	// environment is scrubbed, it gets a private workdir, and its process
	// group is killed at cancel. HWE_SANDBOX=off in the environment has the
	// same effect.
	Off bool
}

// Defaults.
const (
	DefaultMemory      = 1 << 30
	DefaultProcesses   = 128
	DefaultMaxFileSize = 1 << 30
	DefaultOpenFiles   = 1024
	// addressSpaceSlack is added to Memory for RLIMIT_AS: interpreters
	// reserve far more address space than they use (Node needs ~1 GiB just
	// to start), and the cgroup, not RLIMIT_AS, bounds what is really used.
	addressSpaceSlack = 1 << 30
)

// SpecFor returns the sandbox spec of a step: its effective grant's paths
// and limits and its run's TempDir. Runners add their own read paths (an
// interpreter outside the system folders, a bootstrap script).
func SpecFor(req *api.StepRequest) Spec {
	return SpecForGrant(req.Grant, "", req.TempDir)
}

// SpecForGrant is SpecFor from the parts a runner keeps about a process:
// the grant it serves, its private workdir ("" = one made by Wrap) and the
// run's TempDir ("" = a private /tmp).
func SpecForGrant(g api.Grant, workdir, tempDir string) Spec {
	return Spec{
		Workdir:    workdir,
		TempDir:    tempDir,
		ReadPaths:  slices.Clone(g.FSRead),
		WritePaths: slices.Clone(g.FSWrite),
		Memory:     g.Memory,
		CPU:        g.CPU,
		Processes:  g.Processes,
	}
}

// Key identifies what a sandboxed worker was started with: a warm worker
// may serve another step only if that step's spec has the same key.
func (s Spec) Key() string {
	return fmt.Sprintf("%q|%q|%q|%q|%d|%d|%d|%d|%d|%v|%v", s.Workdir, s.TempDir,
		s.ReadPaths, s.WritePaths, s.Memory, s.CPU, s.Processes, s.MaxFileSize, s.OpenFiles, s.Network, s.Off)
}

func (s Spec) withDefaults() Spec {
	if s.Memory <= 0 {
		s.Memory = DefaultMemory
	}
	if s.Processes <= 0 {
		s.Processes = DefaultProcesses
	}
	if s.MaxFileSize <= 0 {
		s.MaxFileSize = DefaultMaxFileSize
	}
	if s.OpenFiles <= 0 {
		s.OpenFiles = DefaultOpenFiles
	}
	return s
}

// checkPaths cleans the spec's paths and refuses ones a sandbox cannot show.
func (s *Spec) checkPaths() error {
	clean := func(kind string, paths []string) ([]string, error) {
		var out []string
		for _, p := range paths {
			if p == "*" || p == "" {
				return nil, fmt.Errorf("sandbox: %s path %q: name the folders to grant", kind, p)
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			if abs == "/" {
				return nil, fmt.Errorf("sandbox: %s path %q: granting the whole filesystem is not supported", kind, p)
			}
			if underTmp(abs) {
				return nil, fmt.Errorf("sandbox: %s path %s: /tmp inside a step is the run's scratch folder; put shared files in the run's TempDir or elsewhere", kind, abs)
			}
			out = append(out, abs)
		}
		return out, nil
	}
	var err error
	if s.ReadPaths, err = clean("read", s.ReadPaths); err != nil {
		return err
	}
	if s.WritePaths, err = clean("write", s.WritePaths); err != nil {
		return err
	}
	if s.TempDir != "" {
		if s.TempDir, err = filepath.Abs(s.TempDir); err != nil {
			return err
		}
		if st, err := os.Stat(s.TempDir); err != nil || !st.IsDir() {
			return fmt.Errorf("sandbox: TempDir %s is not a folder", s.TempDir)
		}
	}
	return nil
}

func underTmp(p string) bool { return under(p, "/tmp") }

// under reports whether p is dir or inside it (both clean and absolute).
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// workInside is where a workdir under the host's /tmp shows inside a
// private root (the step's /tmp is its run's TempDir).
const workInside = "/hwe/work"

// Inside returns the path at which the sandboxed process sees a host path:
// TempDir and what is in it under /tmp, a workdir under the host's /tmp
// under /hwe/work, anything else at the same path. Runners use it for
// folders they name to a worker after it started.
func (s Spec) Inside(hostPath string) string {
	if hostPath == "" || s.Off || os.Getenv("HWE_SANDBOX") == "off" || !Probe().Active(LayerMountNS) {
		return hostPath
	}
	return insidePath(s.TempDir, s.Workdir, hostPath)
}

func insidePath(tempDir, workdir, hostPath string) string {
	p := filepath.Clean(hostPath)
	rebase := func(from, to string) string { return filepath.Join(to, strings.TrimPrefix(p, from)) }
	if tempDir != "" && under(p, filepath.Clean(tempDir)) {
		return rebase(filepath.Clean(tempDir), "/tmp")
	}
	if workdir != "" {
		w := filepath.Clean(workdir)
		if under(p, w) && underTmp(w) {
			return rebase(w, workInside)
		}
	}
	return p
}

func requiredLayers(spec Spec) ([]string, error) {
	names := slices.Clone(spec.Require)
	if v := os.Getenv("HWE_SANDBOX_REQUIRE"); v != "" {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	return ExpandLayers(names)
}
