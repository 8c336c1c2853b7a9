package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The helper is hwe itself, re-executed as
//
//	hwe __sandbox-exec <json helperSpec> -- PROGRAM ARGS...
//
// It runs inside the namespaces the parent asked the kernel for and applies,
// in this order, the layers that can only be applied from inside: cgroup
// membership, a fresh root filesystem, hostname, credentials (an
// unprivileged uid, no capabilities), no_new_privs, Landlock, seccomp, and
// rlimits last (a low RLIMIT_AS breaks the Go runtime), then execs PROGRAM.
// Everything runs on one locked OS thread, the thread that calls execve, so
// per-thread state (no_new_privs, Landlock domain, seccomp filter) is exactly
// what the program inherits.

const helperArg = "__sandbox-exec"

// helperExitCode is the exit status when the sandbox could not be set up.
const helperExitCode = 125

// helperSpec is what the parent tells the helper. It never holds secrets:
// it travels on the command line.
type helperSpec struct {
	Mode      string   `json:"mode"`     // modeRoot, modeUserNS or modeNone
	Program   string   `json:"program"`  // absolute path of the program to exec
	NewRoot   bool     `json:"new_root"` // build a private root filesystem (needs a mount namespace)
	MountProc bool     `json:"mount_proc"`
	Workdir   string   `json:"workdir"`   // as the program sees it
	WorkHost  string   `json:"work_host"` // the host folder mounted there
	Cwd       string   `json:"cwd"`
	TempDir   string   `json:"temp_dir,omitempty"` // seen as /tmp; "" = a private tmpfs
	ReadPaths []string `json:"read,omitempty"`
	Write     []string `json:"write,omitempty"`
	Cgroups   []string `json:"cgroups,omitempty"` // cgroup folders to join
	UID       int      `json:"uid"`               // -1 = keep
	GID       int      `json:"gid"`
	Landlock  bool     `json:"landlock"`
	Seccomp   bool     `json:"seccomp"`
	Network   bool     `json:"network"` // allow AF_INET/AF_INET6 sockets
	Rlimits   []rlimit `json:"rlimits,omitempty"`
	Probe     bool     `json:"probe,omitempty"` // report what worked instead of exec'ing
}

type rlimit struct {
	Resource int    `json:"r"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

const (
	modeRoot   = "root"   // hwe is root: namespaces without a user namespace, then setuid
	modeUserNS = "userns" // a user namespace gives the namespaces; capabilities dropped after setup
	modeNone   = "none"   // no namespaces at all
)

// probeResult is what a helper in probe mode prints: stage name to "" (worked)
// or the error.
type probeResult map[string]string

// MaybeRunHelper turns this process into the sandbox helper when it was
// started as one (os.Args[1] == "__sandbox-exec") and never returns in that
// case. main must call it first thing, before anything else runs; test
// binaries that wrap commands call it from TestMain.
func MaybeRunHelper() {
	if len(os.Args) < 2 || os.Args[1] != helperArg {
		return
	}
	os.Exit(runHelper(os.Args[2:]))
}

func runHelper(args []string) int {
	runtime.LockOSThread() // never unlocked: this thread execs the program
	if len(args) < 1 {
		return helperFail("missing spec")
	}
	var spec helperSpec
	if err := json.Unmarshal([]byte(args[0]), &spec); err != nil {
		return helperFail("bad spec: %v", err)
	}
	var argv []string
	if len(args) >= 3 && args[1] == "--" {
		argv = args[2:]
	}
	if !spec.Probe && len(argv) == 0 {
		return helperFail("no program to run")
	}

	result := probeResult{}
	// step runs one stage. In probe mode a failure is recorded and the
	// helper carries on so every layer gets reported; otherwise the first
	// failure stops everything: never run a step with a layer missing.
	failed := false
	step := func(name string, fn func() error) {
		if failed && !spec.Probe {
			return
		}
		err := fn()
		if err == nil {
			result[name] = ""
			return
		}
		result[name] = err.Error()
		if !spec.Probe {
			failed = true
			fmt.Fprintf(os.Stderr, "hwe sandbox: %s: %v\n", name, err)
		}
	}

	if len(spec.Cgroups) > 0 {
		step("cgroup", func() error { return joinCgroups(spec.Cgroups) })
	}
	if spec.NewRoot {
		step("mount_ns", func() error { return buildRoot(&spec) })
	}
	if spec.Mode != modeNone {
		step("uts_ns", func() error { return unix.Sethostname([]byte("hwe")) })
	}
	step("chdir", func() error { return os.Chdir(spec.Cwd) })
	step("uid", func() error { return dropPrivileges(&spec) })
	step("no_new_privs", func() error { return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
	if spec.Landlock {
		step("landlock", func() error { return applyLandlock(&spec) })
	}
	if spec.Seccomp {
		step("seccomp", func() error { return applySeccomp(spec.Network) })
	}
	if spec.Probe {
		// Rlimits are not tried in probe mode: they are plain setrlimit
		// calls, and a low RLIMIT_AS would only disturb this Go process.
		json.NewEncoder(os.Stdout).Encode(result)
		return 0
	}
	if failed {
		return helperExitCode
	}

	prog := spec.Program
	env := os.Environ()
	// Rlimits last: from here on only execve runs.
	for _, r := range spec.Rlimits {
		lim := syscall.Rlimit{Cur: r.Cur, Max: r.Max}
		if err := syscall.Setrlimit(r.Resource, &lim); err != nil {
			return helperFail("rlimit %d: %v", r.Resource, err)
		}
	}
	err := syscall.Exec(prog, argv, env)
	return helperFail("exec %s: %v", prog, err)
}

func helperFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "hwe sandbox: "+format+"\n", args...)
	return helperExitCode
}

// joinCgroups moves this process (and so everything it starts) into the
// step's cgroups before anything else runs.
func joinCgroups(dirs []string) error {
	for _, d := range dirs {
		if err := os.WriteFile(d+"/cgroup.procs", []byte("0"), 0); err != nil {
			return err
		}
	}
	return nil
}

// dropPrivileges leaves the helper with an unprivileged identity and no
// capabilities, and checks that it did: a step that stays root defeats
// every other layer.
func dropPrivileges(spec *helperSpec) error {
	// The bounding set limits what any later exec could gain; dropping it
	// needs CAP_SETPCAP, so it comes first.
	if err := dropBoundingSet(); err != nil {
		return err
	}
	switch {
	case spec.UID >= 0:
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
			return fmt.Errorf("setresgid %d: %w", spec.GID, err)
		}
		// Going from uid 0 to a non-zero uid clears every capability.
		if err := syscall.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
			return fmt.Errorf("setresuid %d: %w", spec.UID, err)
		}
	case spec.Mode == modeUserNS:
		// Root inside the user namespace keeps its uid: make sure neither
		// that uid nor an exec gives capabilities back, then drop them.
		bits := secbitNoRoot | secbitNoRootLocked | secbitKeepCapsLocked | secbitNoCapAmbientRaise | secbitNoCapAmbientRaiseLocked
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0); err != nil {
			return fmt.Errorf("securebits: %w", err)
		}
		if err := clearCapabilities(); err != nil {
			return err
		}
	}
	// Changing credentials resets the parent-death signal; set it again so
	// the step dies with the runner that started it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("pdeathsig: %w", err)
	}
	umask := 0o002 // steps of one run share /tmp through their common group
	syscall.Umask(umask)
	return checkNoCapabilities(spec)
}

const (
	secbitNoRoot                  = 1 << 0
	secbitNoRootLocked            = 1 << 1
	secbitKeepCapsLocked          = 1 << 5
	secbitNoCapAmbientRaise       = 1 << 6
	secbitNoCapAmbientRaiseLocked = 1 << 7
)

func dropBoundingSet() error {
	last := lastCap()
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			if err == unix.EPERM {
				return nil // no CAP_SETPCAP: nothing to drop that we could gain
			}
			return fmt.Errorf("capbset_drop %d: %w", c, err)
		}
	}
	return nil
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &n); err != nil {
		return 40
	}
	return n
}

func clearCapabilities() error {
	unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func checkNoCapabilities(spec *helperSpec) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for _, d := range data {
		if d.Effective != 0 || d.Permitted != 0 || d.Inheritable != 0 {
			return fmt.Errorf("capabilities still held after dropping privileges")
		}
	}
	if spec.UID >= 0 {
		r, e, s := syscall.Getuid(), syscall.Geteuid(), spec.UID
		if r != s || e != s {
			return fmt.Errorf("uid is %d/%d, want %d", r, e, s)
		}
	}
	return nil
}
