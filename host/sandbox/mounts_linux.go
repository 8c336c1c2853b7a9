package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// systemPaths are what every step sees read-only: the system's programs and
// libraries and its configuration. Anything else of the host is absent from
// a step's root unless granted.
var systemPaths = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc"}

// devices are bound into the step's private /dev.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// bind is one host path to show inside the step's root, at the same path.
type bind struct {
	path     string // path inside (and outside) the sandbox
	source   string // host path to bind, when different from path
	writable bool
	device   bool
	fd       int // O_PATH handle on the source, opened before anything is covered
	isDir    bool
	symlink  string // when the host path is a symlink: recreate it, don't bind
}

// buildRoot gives the step a root filesystem of its own, in the mount
// namespace the helper was started in: a read-only tmpfs holding read-only
// binds of the system folders, a private /dev and /proc, the run's /tmp and
// the step's workdir. It then pivots into it and detaches the host's tree.
func buildRoot(spec *helperSpec) error {
	// Nothing done here may propagate back to the host's mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}

	binds, err := openBinds(spec)
	if err != nil {
		return err
	}
	defer func() {
		for _, b := range binds {
			if b.fd >= 0 {
				unix.Close(b.fd)
			}
		}
	}()

	// The new root is a tmpfs mounted over an existing folder. This mount
	// namespace is private, so the host never sees it, and every source is
	// already open, so covering the folder hides nothing we need.
	stage := stageDir()
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	at := func(p string) string { return filepath.Join(stage, p) }

	for _, b := range binds {
		target := at(b.path)
		if b.symlink != "" {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(b.symlink, target); err != nil {
				return fmt.Errorf("symlink %s: %w", b.path, err)
			}
			continue
		}
		if err := makeMountPoint(target, b.isDir); err != nil {
			return fmt.Errorf("mount point %s: %w", b.path, err)
		}
		src := "/proc/self/fd/" + strconv.Itoa(b.fd)
		if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", b.path, err)
		}
		flags := uintptr(unix.MS_NOSUID)
		if !b.device {
			flags |= unix.MS_NODEV
		}
		if !b.writable {
			flags |= unix.MS_RDONLY
		}
		if err := remount(target, flags); err != nil {
			return fmt.Errorf("remount %s: %w", b.path, err)
		}
	}

	// A private /dev with only harmless devices, and shared memory for
	// Python's multiprocessing.
	if err := setupDev(at("/dev")); err != nil {
		return err
	}
	if spec.TempDir == "" {
		if err := makeMountPoint(at("/tmp"), true); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", at("/tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=256m"); err != nil {
			return fmt.Errorf("tmpfs /tmp: %w", err)
		}
	}
	if spec.MountProc {
		// A fresh procfs shows only the step's own PID namespace.
		if err := os.MkdirAll(at("/proc"), 0o555); err != nil {
			return err
		}
		if err := unix.Mount("proc", at("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount /proc: %w", err)
		}
	}
	if err := nameStepUser(spec, stage); err != nil {
		return err
	}
	// The root itself becomes read-only: a step writes only where granted.
	if err := unix.Mount("", stage, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("read-only root: %w", err)
	}

	if err := os.Chdir(stage); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root under the new one; detaching
	// it leaves the host's tree unreachable.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host root: %w", err)
	}
	return os.Chdir("/")
}

// openBinds lists and opens every source before the first mount covers
// anything: the run's TempDir may well live under the host's /tmp.
func openBinds(spec *helperSpec) ([]*bind, error) {
	var binds []*bind
	seen := map[string]bool{}
	add := func(path, source string, writable, optional bool) (*bind, error) {
		path = filepath.Clean(path)
		if seen[path] {
			return nil, nil
		}
		if source == "" {
			source = path
		}
		b := &bind{path: path, source: source, writable: writable, fd: -1}
		if st, err := os.Lstat(source); err == nil && st.Mode()&os.ModeSymlink != 0 && source == path {
			if target, err := os.Readlink(source); err == nil && !filepath.IsAbs(target) {
				// /bin -> usr/bin on merged-/usr systems: keep it a symlink.
				b.symlink = target
				seen[path] = true
				binds = append(binds, b)
				return b, nil
			}
		}
		fd, err := unix.Open(source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			if optional && os.IsNotExist(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("open %s: %w", source, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, err
		}
		b.fd = fd
		b.isDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
		seen[path] = true
		binds = append(binds, b)
		return b, nil
	}
	for _, p := range systemPaths {
		if _, err := add(p, "", false, true); err != nil {
			return nil, err
		}
	}
	for _, d := range devices {
		b, err := add(d, "", true, true)
		if err != nil {
			return nil, err
		}
		if b != nil {
			b.device = true
		}
	}
	if spec.TempDir != "" {
		if _, err := add("/tmp", spec.TempDir, true, false); err != nil {
			return nil, err
		}
	}
	if _, err := add(spec.Workdir, spec.WorkHost, true, false); err != nil {
		return nil, err
	}
	for _, p := range spec.Write {
		if _, err := add(p, "", true, true); err != nil {
			return nil, err
		}
	}
	for _, p := range spec.ReadPaths {
		if _, err := add(p, "", false, true); err != nil {
			return nil, err
		}
	}
	// Parents before children, so a nested bind lands on top.
	sort.SliceStable(binds, func(i, j int) bool { return depth(binds[i].path) < depth(binds[j].path) })
	return binds, nil
}

func depth(p string) int { return strings.Count(p, "/") }

// setupDev completes the step's /dev: a folder of the (soon read-only) root
// that already holds the bound devices. It adds the usual links and a
// private /dev/shm for Python's multiprocessing.
func setupDev(dev string) error {
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	links := map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.MkdirAll(shm, 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=64m"); err != nil {
		return fmt.Errorf("tmpfs /dev/shm: %w", err)
	}
	return nil
}

func makeMountPoint(target string, dir bool) error {
	if dir {
		return os.MkdirAll(target, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// remount makes a bind read-only (or not), keeping the flags the kernel
// locks on mounts inherited from a more privileged namespace.
func remount(target string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil {
		// statfs reports ST_* flags; map the ones the kernel locks.
		for st_, ms := range map[int64]uintptr{
			unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
			unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
		} {
			if int64(st.Flags)&st_ != 0 {
				flags |= ms
			}
		}
	}
	return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
}

// stageDir picks an existing folder to mount the new root over.
func stageDir() string {
	for _, d := range []string{"/tmp", "/mnt", "/var/tmp", "/run"} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return "/"
}

// nameStepUser gives the step's uid and gid a name: the host's /etc/passwd
// and /etc/group plus an "hwe" entry, bound read-only over the originals in
// the step's root. Without it `whoami`, `id -un` and Python's getpass fail
// with "cannot find name for user ID", which reference workflows print.
func nameStepUser(spec *helperSpec, stage string) error {
	if spec.UID < 0 {
		return nil
	}
	for _, f := range []struct{ name, line string }{
		{"passwd", fmt.Sprintf("hwe:x:%d:%d:hwe step:/tmp:/bin/sh\n", spec.UID, spec.GID)},
		{"group", fmt.Sprintf("hwe:x:%d:\n", spec.GID)},
	} {
		host, err := os.ReadFile(filepath.Join("/etc", f.name))
		if err != nil {
			continue // no such file on this host: nothing to extend
		}
		if len(host) > 0 && host[len(host)-1] != '\n' {
			host = append(host, '\n')
		}
		src := filepath.Join(stage, ".hwe-"+f.name)
		if err := os.WriteFile(src, append(host, f.line...), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		target := filepath.Join(stage, "etc", f.name)
		if _, err := os.Stat(target); err != nil {
			continue
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", f.name, err)
		}
		if err := remount(target, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_RDONLY); err != nil {
			return fmt.Errorf("remount %s: %w", f.name, err)
		}
	}
	return nil
}
