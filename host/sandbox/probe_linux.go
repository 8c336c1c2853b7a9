package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// state is what the start-up probe decided, shared by every Wrap.
type state struct {
	report  Report
	mode    string
	exe     string
	cgroups cgroupPlan
}

var (
	stateOnce sync.Once
	theState  *state
)

func probeState() *state {
	stateOnce.Do(func() { theState = probe() })
	return theState
}

// Probe reports which layers are active on this machine and why others are
// not. The first call starts the helper once per way of making namespaces
// (tens of milliseconds); later calls return the same report.
func Probe() Report { return probeState().report }

// Doctor prints the probe's report, for `hwe doctor`.
func Doctor(w io.Writer) error { return Probe().Write(w) }

func probe() *state {
	st := &state{mode: modeNone}
	st.report.Kernel = kernelRelease()
	st.report.User = "root"
	if os.Geteuid() != 0 {
		st.report.User = fmt.Sprintf("uid %d", os.Geteuid())
	}
	st.cgroups = findCgroups()

	exe, exeErr := os.Executable()
	st.exe = exe

	candidates := []string{modeUserNS, modeNone}
	if os.Geteuid() == 0 {
		candidates = []string{modeRoot, modeUserNS, modeNone}
	}
	var res probeResult
	why := map[string]string{} // mode -> why it was not used
	if exeErr == nil {
		for _, mode := range candidates {
			r, err := runProbe(exe, mode, st.cgroups)
			if err == nil && (mode == modeNone || r["mount_ns"] == "") {
				st.mode, res = mode, r
				break
			}
			if err != nil {
				why[mode] = err.Error()
			} else {
				why[mode] = r["mount_ns"]
			}
		}
	}
	st.report.Mode = st.mode
	st.report.Layers = buildLayers(st, res, exeErr, why)
	return st
}

// runProbe starts the helper in probe mode: it sets up everything a real
// step gets and prints which stages worked, instead of exec'ing.
func runProbe(exe, mode string, plan cgroupPlan) (probeResult, error) {
	if err := os.MkdirAll(workBase(), 0o711); err != nil {
		return nil, err
	}
	workdir, err := os.MkdirTemp(workBase(), "probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(workdir)

	hs := helperSpec{
		Mode: mode, Probe: true, Workdir: workdir, Cwd: workdir, UID: -1, GID: -1,
		NewRoot: mode != modeNone, MountProc: mode != modeNone,
		Landlock: landlockABI() > 0, Seccomp: true,
	}
	gid := runGID("")
	var lease *uidLease
	if os.Geteuid() == 0 {
		if lease, err = allocateUID(); err != nil {
			return nil, err
		}
		defer lease.release()
		os.Chown(workdir, lease.uid, gid)
		if mode != modeUserNS {
			hs.UID, hs.GID = lease.uid, gid
		}
	}
	if plan.memoryParent != "" || plan.pidsParent != "" {
		cgUID := -1
		if mode == modeUserNS && lease != nil {
			cgUID = lease.uid
		}
		cg, err := newStepCgroups(plan, "hwe-probe-"+randomID(), 64<<20, 16, cgUID)
		if err == nil {
			defer cg.remove()
			hs.Cgroups = cg.dirs
		}
	}
	specJSON, err := json.Marshal(hs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, helperArg, string(specJSON))
	cmd.Env = []string{}
	cmd.Dir = workdir
	cmd.SysProcAttr = sysProcAttr(mode, lease, gid, false)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("helper: %s", msg)
	}
	var res probeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("helper printed %q, not a probe report (does main call sandbox.MaybeRunHelper first?)", firstLine(stdout.String()))
	}
	return res, nil
}

func buildLayers(st *state, res probeResult, exeErr error, why map[string]string) []LayerStatus {
	stage := func(name string) (bool, string) {
		if exeErr != nil {
			return false, "cannot find hwe's own executable to re-run as the helper: " + exeErr.Error()
		}
		if res == nil {
			return false, "the helper did not start: " + strings.Join(reasons(why), "; ")
		}
		v, ok := res[name]
		if !ok {
			return false, "not tried"
		}
		if v != "" {
			return false, v
		}
		return true, ""
	}
	ns := st.mode == modeRoot || st.mode == modeUserNS
	var layers []LayerStatus
	add := func(name string, active bool, detail string) {
		layers = append(layers, LayerStatus{Name: name, Active: active, Detail: detail})
	}

	add(LayerEnv, true, "only variables the runner passes and the grant allows; HWE_SECRET_* never")
	add(LayerWorkdir, true, "a private folder per step under "+workBase()+", removed afterwards")

	ok, detail := stage("no_new_privs")
	add(LayerNoNewPrivs, ok, orDefault(detail, "set before exec: setuid programs and file capabilities gain nothing"))

	switch {
	case os.Geteuid() != 0:
		add(LayerUID, false, "hwe is not root: steps run as its uid (in a user namespace when available, without capabilities)")
	default:
		ok, detail = stage("uid")
		add(LayerUID, ok, orDefault(detail, fmt.Sprintf("uids %d-%d, one per concurrent step, no capabilities (checked before exec); steps of a run share a group", firstStepUID, firstStepUID+stepUIDCount-1)))
	}

	switch st.mode {
	case modeUserNS:
		add(LayerUserNS, true, "namespaces are made inside a user namespace")
	case modeRoot:
		add(LayerUserNS, false, "not needed: hwe is root, so it makes the namespaces itself and each step drops to its own uid")
	default:
		add(LayerUserNS, false, orDefault(why[modeUserNS], "unavailable"))
	}

	nsDetail := func(active string) (bool, string) {
		if !ns {
			return false, "no namespaces: " + strings.Join(reasons(why), "; ")
		}
		return true, active
	}
	ok, detail = nsDetail("private root: system folders read-only, the workdir, the run's /tmp, a few /dev files")
	add(LayerMountNS, ok, detail)
	ok, detail = nsDetail("own process tree and /proc; killing its first process kills them all")
	add(LayerPIDNS, ok, detail)
	ok, detail = nsDetail("no network interfaces, not even loopback; the host API does HTTP")
	add(LayerNetNS, ok, detail)
	ok, detail = nsDetail("own System V IPC and POSIX message queues")
	add(LayerIPCNS, ok, detail)
	if ns {
		ok, detail = stage("uts_ns")
		add(LayerUTSNS, ok, orDefault(detail, "own hostname (\"hwe\")"))
	} else {
		add(LayerUTSNS, false, "no namespaces")
	}

	abi := landlockABI()
	if abi == 0 {
		add(LayerLandlock, false, "the kernel has no Landlock (needs Linux 5.13+ with landlock in the lsm= list)")
		add(LayerLandlockNet, false, "no Landlock")
	} else {
		ok, detail = stage("landlock")
		add(LayerLandlock, ok, orDefault(detail, fmt.Sprintf("ABI %d: read the system and granted paths, write the workdir, /tmp and granted paths", abi)))
		switch {
		case !ok:
			add(LayerLandlockNet, false, "Landlock is off")
		case abi < 4:
			add(LayerLandlockNet, false, fmt.Sprintf("Landlock ABI %d has no network rules (needs 4)", abi))
		case abi < 10:
			add(LayerLandlockNet, true, fmt.Sprintf("ABI %d: TCP bind and connect refused; UDP and MPTCP are not covered here, seccomp refuses those sockets", abi))
		default:
			add(LayerLandlockNet, true, fmt.Sprintf("ABI %d: TCP and UDP bind and connect refused", abi))
		}
	}

	ok, detail = stage("seccomp")
	add(LayerSeccomp, ok, orDefault(detail, "refused: sockets other than AF_UNIX, ptrace, mount, bpf, io_uring, keyctl, unshare, new namespaces, and more"))

	cg := func(name, parent, reason string, v2 bool) {
		if parent == "" {
			add(name, false, reason)
			return
		}
		if ok, detail := stage("cgroup"); !ok {
			add(name, false, "could not join a step cgroup: "+detail)
			return
		}
		ver := "v1"
		if v2 {
			ver = "v2"
		}
		add(name, true, fmt.Sprintf("cgroup %s, a child of %s per step", ver, parent))
	}
	cg(LayerCgroupMemory, st.cgroups.memoryParent, st.cgroups.memoryWhy, st.cgroups.memoryV2)
	cg(LayerCgroupPids, st.cgroups.pidsParent, st.cgroups.pidsWhy, st.cgroups.pidsV2)

	if exeErr != nil || res == nil {
		add(LayerRlimits, false, "needs the helper")
	} else {
		add(LayerRlimits, true, "set last before exec: address space (memory + 1 GiB), file size, open files, no core dumps, CPU time; processes per uid")
	}

	kill := []string{"process group"}
	if ns {
		kill = append(kill, "PID namespace")
	}
	if st.cgroups.memoryParent != "" || st.cgroups.pidsParent != "" {
		kill = append(kill, "cgroup")
	}
	if os.Geteuid() == 0 {
		kill = append(kill, "every process of the step's uid")
	}
	add(LayerKillTree, true, "at timeout, cancel or Close: "+strings.Join(kill, ", "))
	return layers
}

func reasons(why map[string]string) []string {
	var out []string
	for _, m := range []string{modeRoot, modeUserNS, modeNone} {
		if w, ok := why[m]; ok {
			out = append(out, m+": "+w)
		}
	}
	if len(out) == 0 {
		out = append(out, "unknown")
	}
	return out
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
