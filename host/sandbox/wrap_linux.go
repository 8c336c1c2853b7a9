package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// Sandbox is one wrapped process. Close it after cmd.Wait (or instead of
// it): it kills whatever is left of the tree and removes what Wrap made.
type Sandbox struct {
	cmd        *exec.Cmd
	workdir    string
	ownWorkdir bool
	lease      *uidLease
	cgroups    *stepCgroups
	layers     []string
	cpu        time.Duration
	once       sync.Once
}

// Wrap rewrites cmd, not yet started, so that it runs inside the sandbox
// spec describes. The caller then starts and waits for cmd as usual and
// calls Close afterwards.
//
// Wrap replaces cmd.Path, cmd.Args (the program runs through the hwe
// helper), cmd.Env (only what the caller set in cmd.Env reaches the program,
// never the host environment; HWE_SECRET_* are dropped), cmd.SysProcAttr and,
// for commands made with exec.CommandContext, cmd.Cancel (cancelling kills
// the whole tree). cmd.Dir, if set, must be visible inside the sandbox; ""
// means the workdir. Stdin, stdout, stderr and ExtraFiles pass through.
func Wrap(cmd *exec.Cmd, spec Spec) (*Sandbox, error) {
	if cmd.Process != nil {
		return nil, errors.New("sandbox: Wrap called on a started command")
	}
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	off := spec.Off || os.Getenv("HWE_SANDBOX") == "off"
	spec = spec.withDefaults()
	if err := spec.checkPaths(); err != nil {
		return nil, err
	}
	required, err := requiredLayers(spec)
	if err != nil {
		return nil, err
	}
	st := probeState()
	if off && len(required) > 0 {
		return nil, fmt.Errorf("sandbox: it is off, but the policy requires %s", strings.Join(required, ", "))
	}
	for _, l := range required {
		if !st.report.Active(l) {
			return nil, fmt.Errorf("sandbox: the policy requires layer %s, which is not available here: %s", l, st.report.Detail(l))
		}
	}

	prog, err := filepath.Abs(cmd.Path)
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{cmd: cmd, cpu: spec.CPU}
	ok := false
	defer func() {
		if !ok {
			sb.Close()
		}
	}()

	if err := sb.makeWorkdir(spec.Workdir); err != nil {
		return nil, err
	}
	newRoot := !off && st.report.Active(LayerMountNS)
	// inside maps a host path to where the process sees it.
	inside := func(p string) string {
		if !newRoot {
			return p
		}
		return insidePath(spec.TempDir, sb.workdir, p)
	}
	cwd := sb.workdir
	if cmd.Dir != "" {
		cwd, _ = filepath.Abs(cmd.Dir)
	}

	tmpInside := spec.TempDir
	if newRoot {
		tmpInside = "/tmp"
	} else if tmpInside == "" {
		tmpInside = sb.workdir
	}
	env := scrubbedEnv(cmd.Env, inside(sb.workdir), tmpInside)

	if off {
		cmd.Env = env
		cmd.Dir = cwd
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		sb.layers = []string{LayerEnv, LayerWorkdir, LayerKillTree}
		sb.setCancel()
		ok = true
		return sb, nil
	}

	if newRoot {
		if !visibleInside(prog, spec, sb.workdir) {
			if underTmp(prog) {
				return nil, fmt.Errorf("sandbox: program %s is under /tmp, which a step cannot see", prog)
			}
			spec.ReadPaths = append(spec.ReadPaths, prog)
		}
		if !visibleInside(cwd, spec, sb.workdir) {
			return nil, fmt.Errorf("sandbox: working folder %s is not visible inside the sandbox", cwd)
		}
	}

	hs := helperSpec{
		Mode:      st.mode,
		NewRoot:   newRoot,
		MountProc: newRoot && st.report.Active(LayerPIDNS),
		Program:   inside(prog),
		Workdir:   inside(sb.workdir),
		WorkHost:  sb.workdir,
		Cwd:       inside(cwd),
		ReadPaths: spec.ReadPaths,
		Write:     spec.WritePaths,
		UID:       -1,
		GID:       -1,
		Landlock:  st.report.Active(LayerLandlock),
		Seccomp:   st.report.Active(LayerSeccomp),
		Network:   spec.Network,
	}
	if newRoot {
		hs.TempDir = spec.TempDir
	} else {
		hs.TempDir = tmpInside
	}

	// An unprivileged uid of its own and a group shared with its run.
	gid := runGID(spec.TempDir)
	if os.Geteuid() == 0 {
		if sb.lease, err = allocateUID(); err != nil {
			return nil, err
		}
		if err := os.Chown(sb.workdir, sb.lease.uid, gid); err != nil {
			return nil, err
		}
		if err := os.Chmod(sb.workdir, 0o700); err != nil {
			return nil, err
		}
		if spec.TempDir != "" {
			// Group-writable with setgid, so every step of the run can read
			// and clean up what the others left there.
			if err := os.Chown(spec.TempDir, -1, gid); err != nil {
				return nil, err
			}
			if err := os.Chmod(spec.TempDir, 0o770|os.ModeSetgid); err != nil {
				return nil, err
			}
		}
		if st.mode != modeUserNS {
			hs.UID, hs.GID = sb.lease.uid, gid
		}
	}

	cgUID := -1
	if st.mode == modeUserNS && sb.lease != nil {
		cgUID = sb.lease.uid
	}
	if st.report.Active(LayerCgroupMemory) || st.report.Active(LayerCgroupPids) {
		if sb.cgroups, err = newStepCgroups(st.cgroups, "hwe-"+randomID(), spec.Memory, spec.Processes, cgUID); err != nil {
			return nil, fmt.Errorf("sandbox: cgroups: %w", err)
		}
		hs.Cgroups = sb.cgroups.dirs
	}
	hs.Rlimits = rlimitsFor(spec, st.mode == modeRoot || sb.lease != nil || st.mode == modeUserNS)

	specJSON, err := json.Marshal(hs)
	if err != nil {
		return nil, err
	}
	args := append([]string{st.exe, helperArg, string(specJSON), "--"}, cmd.Args...)
	cmd.Path = st.exe
	cmd.Args = args
	cmd.Env = env
	cmd.Dir = sb.workdir
	cmd.SysProcAttr = sysProcAttr(st.mode, sb.lease, gid, spec.Network)
	sb.setCancel()
	sb.layers = st.report.ActiveLayers()
	ok = true
	return sb, nil
}

// Workdir is the process's working folder on the host.
func (s *Sandbox) Workdir() string { return s.workdir }

// Start wraps cmd and starts it: the SpawnFunc of a runner. release kills
// what is left of the process tree and cleans up; call it once the process
// has been waited for.
func Start(cmd *exec.Cmd, spec Spec) (release func(), err error) {
	sb, err := Wrap(cmd, spec)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		sb.Close()
		return nil, err
	}
	return func() { sb.Close() }, nil
}

// Layers lists the layers this process runs under.
func (s *Sandbox) Layers() []string { return slices.Clone(s.layers) }

// Close kills every process left in the sandbox, removes its cgroups and,
// if Wrap made it, its workdir, and frees its uid. It is safe to call more
// than once and before the command was started.
func (s *Sandbox) Close() error {
	var err error
	s.once.Do(func() {
		s.killTree()
		s.cgroups.remove()
		s.lease.release()
		if s.ownWorkdir && s.workdir != "" {
			err = os.RemoveAll(s.workdir)
		}
	})
	return err
}

// Explain turns the error of cmd.Wait into the limit the process hit, when
// the sandbox can tell: an *api.LimitError for memory (the cgroup's OOM
// killer) or CPU time. Other errors are returned as they are.
func (s *Sandbox) Explain(waitErr error) error {
	var ee *exec.ExitError
	if waitErr == nil || !errors.As(waitErr, &ee) {
		return waitErr
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok {
		return waitErr
	}
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL && s.cgroups.oomKilled() {
		return &api.LimitError{Limit: "memory", Detail: "killed for using more memory than granted"}
	}
	// The program is PID 1 of its namespace, and PID 1 ignores the soft
	// limit's SIGXCPU; the kernel's SIGKILL at the hard limit comes a second
	// later. Either way the CPU time used tells.
	cpuUsed := ee.ProcessState.UserTime() + ee.ProcessState.SystemTime()
	if s.cpu > 0 && ws.Signaled() && (ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL && cpuUsed >= s.cpu) {
		return &api.LimitError{Limit: "cpu", Detail: fmt.Sprintf("used %s of CPU time, more than the %s granted", cpuUsed.Round(10*time.Millisecond), s.cpu)}
	}
	if ws.Exited() && ws.ExitStatus() == helperExitCode {
		return fmt.Errorf("sandbox setup failed (see the step's stderr): %w", waitErr)
	}
	return waitErr
}

func (s *Sandbox) setCancel() {
	if s.cmd.Cancel != nil {
		s.cmd.Cancel = func() error {
			s.killTree()
			return nil
		}
	}
	if s.cmd.WaitDelay == 0 {
		// Output pipes held open by a stray grandchild must not hang Wait.
		s.cmd.WaitDelay = 2 * time.Second
	}
}

// killTree kills the process group (the helper is its leader, and with a
// PID namespace its death takes every process in it along) and everything
// in the cgroups and under the step's uid.
func (s *Sandbox) killTree() {
	if p := s.cmd.Process; p != nil {
		// The group id stays reserved while any member lives, so this cannot
		// hit an unrelated process even after the leader was reaped.
		syscall.Kill(-p.Pid, syscall.SIGKILL)
		if s.cmd.ProcessState == nil {
			p.Kill()
		}
	}
	if s.cgroups != nil {
		s.cgroups.kill()
	}
	if s.lease != nil {
		killUID(s.lease.uid)
	}
}

func (s *Sandbox) makeWorkdir(dir string) error {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return err
		}
		s.workdir = abs
		return nil
	}
	base := workBase()
	if err := os.MkdirAll(base, 0o711); err != nil {
		return fmt.Errorf("sandbox: workdir base: %w", err)
	}
	d, err := os.MkdirTemp(base, "step-")
	if err != nil {
		return err
	}
	s.workdir, s.ownWorkdir = d, true
	return nil
}

// workBase is where Wrap makes workdirs: not under /tmp, which a step sees
// as its run's scratch folder.
func workBase() string {
	if v := os.Getenv("HWE_SANDBOX_DIR"); v != "" {
		return v
	}
	if os.Geteuid() == 0 {
		return "/var/tmp/hwe-sandbox"
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "hwe", "sandbox")
	}
	return fmt.Sprintf("/var/tmp/hwe-sandbox-%d", os.Geteuid())
}

// visibleInside reports whether a host path shows inside a new root.
func visibleInside(p string, spec Spec, workdir string) bool {
	dirs := append([]string{workdir}, systemPaths...)
	if spec.TempDir != "" {
		dirs = append(dirs, spec.TempDir)
	}
	dirs = append(dirs, spec.ReadPaths...)
	dirs = append(dirs, spec.WritePaths...)
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// scrubbedEnv is the program's whole environment: a fixed base plus what the
// runner set explicitly, never the host's.
func scrubbedEnv(explicit []string, workdir, tmp string) []string {
	env := map[string]string{
		"PATH":   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":   workdir,
		"TMPDIR": tmp,
		"LANG":   "C.UTF-8",
	}
	for _, kv := range explicit {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.HasPrefix(k, "HWE_SECRET_") {
			continue
		}
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func rlimitsFor(spec Spec, nprocPerStep bool) []rlimit {
	lim := func(r int, v uint64) rlimit { return rlimit{Resource: r, Cur: v, Max: v} }
	out := []rlimit{
		lim(syscall.RLIMIT_AS, uint64(spec.Memory+addressSpaceSlack)),
		lim(syscall.RLIMIT_FSIZE, uint64(spec.MaxFileSize)),
		lim(syscall.RLIMIT_NOFILE, uint64(spec.OpenFiles)),
		lim(syscall.RLIMIT_CORE, 0),
	}
	// RLIMIT_NPROC counts every process of the uid: only meaningful when
	// the step has a uid (or user namespace) of its own.
	if nprocPerStep {
		out = append(out, lim(rlimitNPROC, uint64(spec.Processes)))
	}
	if spec.CPU > 0 {
		secs := uint64((spec.CPU + time.Second - 1) / time.Second)
		// SIGXCPU at the soft limit, SIGKILL a second later.
		out = append(out, rlimit{Resource: rlimitCPU, Cur: secs, Max: secs + 1})
	}
	return out
}

const (
	rlimitNPROC = 6 // RLIMIT_NPROC on Linux
	rlimitCPU   = 0 // RLIMIT_CPU
)

// sysProcAttr starts the helper in the namespaces of the mode, as the leader
// of its own process group, killed if hwe dies.
func sysProcAttr(mode string, lease *uidLease, gid int, network bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	nsFlags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS)
	if !network {
		nsFlags |= syscall.CLONE_NEWNET // no interfaces at all
	}
	switch mode {
	case modeRoot:
		attr.Cloneflags = nsFlags
	case modeUserNS:
		attr.Cloneflags = nsFlags | syscall.CLONE_NEWUSER
		hostUID, hostGID := os.Geteuid(), os.Getegid()
		if lease != nil { // root: the namespace's root is the step's own uid
			hostUID, hostGID = lease.uid, gid
		}
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostUID, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostGID, Size: 1}}
		// Without an explicit Credential the child keeps the parent's
		// identity; with uid 0 it is root of the namespace only.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
		if lease != nil {
			attr.GidMappingsEnableSetgroups = true // clears root's supplementary groups
		} else {
			attr.Credential.NoSetGroups = true
		}
	}
	return attr
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
