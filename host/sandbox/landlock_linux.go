package sandbox

import (
	"fmt"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// landlockABI is the Landlock ABI version the kernel offers (0 = none).
func landlockABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// applyLandlock restricts this thread (and the program it execs) to the
// paths a step may touch: the system read-only, its workdir, /tmp and
// granted paths read-write. It also refuses every TCP bind and connect
// (ABI 4+) unless the step has direct network, and scopes signals and
// abstract Unix sockets to the sandbox (ABI 6+).
func applyLandlock(spec *helperSpec) error {
	tmp := spec.TempDir
	if spec.NewRoot {
		tmp = "/tmp" // the run's TempDir, or a private tmpfs, is mounted there
	}
	rw := []string{spec.Workdir}
	if tmp != "" {
		rw = append(rw, tmp)
	}
	rw = append(rw, spec.Write...)
	ro := append([]string{"/proc"}, systemPaths...)
	ro = append(ro, spec.ReadPaths...)

	rules := []landlock.Rule{
		landlock.RODirs(ro...).IgnoreIfMissing(),
		landlock.RODirs("/dev").IgnoreIfMissing(),
		// Refer lets files move between granted folders (mv /tmp/a /tmp/b/).
		landlock.RWDirs(rw...).WithRefer().IgnoreIfMissing(),
		landlock.RWDirs("/dev/shm").IgnoreIfMissing(),
		landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full").WithIoctlDev().IgnoreIfMissing(),
		landlock.ROFiles("/dev/random", "/dev/urandom").IgnoreIfMissing(),
	}
	if spec.NewRoot {
		// The private root holds only what was mounted for the step:
		// listing its folders gives nothing away.
		rules = append(rules, landlock.PathAccess(llsys.AccessFSReadDir, "/"))
	}
	cfg := landlock.V11
	if spec.Network {
		cfg.HandledAccessNet = 0
	}
	fd, flags, err := cfg.BestEffort().NewRulesetFD(rules...)
	if err != nil {
		return err
	}
	if fd < 0 {
		return fmt.Errorf("landlock is not available in this kernel")
	}
	defer unix.Close(fd)
	// no_new_privs is already set on this thread; the program execs from it.
	return llsys.LandlockRestrictSelf(fd, flags)
}
