package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupPlan says where per-step cgroups go on this machine: for each of
// memory and pids, the folder of this process's own cgroup in a hierarchy
// that has the controller and that we can write, or why not.
type cgroupPlan struct {
	memoryParent string // "" = unavailable
	memoryV2     bool
	memoryWhy    string
	pidsParent   string
	pidsV2       bool
	pidsWhy      string
}

// findCgroups locates this process's cgroups (v1 or v2) and checks that a
// child can be created under them.
func findCgroups() cgroupPlan {
	var plan cgroupPlan
	own, err := ownCgroups()
	if err != nil {
		plan.memoryWhy, plan.pidsWhy = err.Error(), err.Error()
		return plan
	}
	mounts, err := cgroupMounts()
	if err != nil {
		plan.memoryWhy, plan.pidsWhy = err.Error(), err.Error()
		return plan
	}
	plan.memoryParent, plan.memoryV2, plan.memoryWhy = locate("memory", own, mounts)
	plan.pidsParent, plan.pidsV2, plan.pidsWhy = locate("pids", own, mounts)
	return plan
}

type cgroupMount struct {
	root, point string
	v2          bool
	controllers []string
}

// ownCgroups maps controller ("" for v2) to this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	own := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, sc.Err()
}

func cgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		fstype, opts := fields[sep+1], fields[sep+3]
		switch fstype {
		case "cgroup2":
			out = append(out, cgroupMount{root: fields[3], point: fields[4], v2: true})
		case "cgroup":
			out = append(out, cgroupMount{root: fields[3], point: fields[4], controllers: strings.Split(opts, ",")})
		}
	}
	return out, sc.Err()
}

// locate finds the folder of our own cgroup for a controller and checks we
// may create children there.
func locate(controller string, own map[string]string, mounts []cgroupMount) (dir string, v2 bool, why string) {
	for _, m := range mounts {
		if m.v2 || !contains(m.controllers, controller) {
			continue
		}
		p, ok := own[controller]
		if !ok {
			continue
		}
		dir := filepath.Join(m.point, strings.TrimPrefix(p, m.root))
		if err := canCreateChild(dir); err != nil {
			return "", false, fmt.Sprintf("cgroup v1 %s at %s is not writable: %v", controller, dir, err)
		}
		return dir, false, ""
	}
	for _, m := range mounts {
		if !m.v2 {
			continue
		}
		p, ok := own[""]
		if !ok {
			continue
		}
		dir := filepath.Join(m.point, strings.TrimPrefix(p, m.root))
		sub, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if !contains(strings.Fields(string(sub)), controller) {
			return "", false, fmt.Sprintf("cgroup v2 at %s does not delegate the %s controller to children", dir, controller)
		}
		if err := canCreateChild(dir); err != nil {
			return "", true, fmt.Sprintf("cgroup v2 at %s is not writable: %v", dir, err)
		}
		return dir, true, ""
	}
	return "", false, fmt.Sprintf("no cgroup hierarchy with the %s controller", controller)
}

func canCreateChild(dir string) error {
	probe := filepath.Join(dir, fmt.Sprintf("hwe-probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return syscall.Rmdir(probe)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// stepCgroups are the cgroups made for one sandboxed process tree.
type stepCgroups struct {
	dirs     []string
	memory   string // folder of the memory cgroup ("" = none)
	memoryV2 bool
}

// newStepCgroups creates cgroups named name under the plan's parents and
// writes the limits. The uid, when >= 0, is given the procs files so a
// helper in a user namespace can join them.
func newStepCgroups(plan cgroupPlan, name string, memory int64, pids int, uid int) (*stepCgroups, error) {
	sc := &stepCgroups{}
	if plan.memoryParent != "" {
		dir := filepath.Join(plan.memoryParent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		sc.dirs = append(sc.dirs, dir)
		sc.memory, sc.memoryV2 = dir, plan.memoryV2
		var err error
		if plan.memoryV2 {
			err = writeAll(dir, [][2]string{{"memory.max", itoa(memory)}, {"memory.swap.max", "0"}})
		} else {
			err = writeAll(dir, [][2]string{{"memory.limit_in_bytes", itoa(memory)}})
			// No swap either, where the kernel accounts it.
			if err == nil {
				if _, statErr := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); statErr == nil {
					err = writeAll(dir, [][2]string{{"memory.memsw.limit_in_bytes", itoa(memory)}})
				}
			}
		}
		if err != nil {
			sc.remove()
			return nil, err
		}
	}
	if plan.pidsParent != "" {
		dir := filepath.Join(plan.pidsParent, name)
		if dir != sc.memory { // v2: one folder holds both
			if err := os.Mkdir(dir, 0o755); err != nil {
				sc.remove()
				return nil, err
			}
			sc.dirs = append(sc.dirs, dir)
		}
		if err := writeAll(dir, [][2]string{{"pids.max", strconv.Itoa(pids)}}); err != nil {
			sc.remove()
			return nil, err
		}
	}
	if uid >= 0 {
		for _, d := range sc.dirs {
			os.Chown(filepath.Join(d, "cgroup.procs"), uid, -1)
		}
	}
	return sc, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func writeAll(dir string, kv [][2]string) error {
	for _, e := range kv {
		if err := os.WriteFile(filepath.Join(dir, e[0]), []byte(e[1]), 0); err != nil {
			return fmt.Errorf("cgroup %s: %w", e[0], err)
		}
	}
	return nil
}

// kill kills every process in the cgroups, including ones that left the
// process group or daemonized.
func (sc *stepCgroups) kill() {
	for _, d := range sc.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0); err == nil {
			continue // v2 does it in one go
		}
		for i := 0; i < 50; i++ {
			pids := readPids(d)
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// oomKilled reports whether the kernel killed a process of the tree for
// going over the memory limit.
func (sc *stepCgroups) oomKilled() bool {
	if sc == nil || sc.memory == "" {
		return false
	}
	if sc.memoryV2 {
		b, _ := os.ReadFile(filepath.Join(sc.memory, "memory.events"))
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
				return true
			}
		}
		return false
	}
	b, _ := os.ReadFile(filepath.Join(sc.memory, "memory.oom_control"))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
			return true
		}
	}
	// Older kernels have no oom_kill counter: a hit limit is the best sign.
	fc, _ := os.ReadFile(filepath.Join(sc.memory, "memory.failcnt"))
	return strings.TrimSpace(string(fc)) != "" && strings.TrimSpace(string(fc)) != "0" && !strings.Contains(string(b), "oom_kill ")
}

func readPids(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// remove kills what is left and removes the cgroups.
func (sc *stepCgroups) remove() {
	if sc == nil {
		return
	}
	sc.kill()
	for i := len(sc.dirs) - 1; i >= 0; i-- {
		d := sc.dirs[i]
		// A cgroup can be removed only once its last process is reaped.
		var err error
		for try := 0; try < 100; try++ {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
