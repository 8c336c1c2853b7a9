package sandbox

import (
	"fmt"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a sandbox: kernel attack surface a
// step has no use for, and everything that could undo the other layers
// (new namespaces, mounts, tracing other processes, loading BPF).
var deniedSyscalls = []string{
	// namespaces and mounts
	"unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
	"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	// tracing and other processes' memory
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// kernel interfaces with a long history of exploits
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"keyctl", "add_key", "request_key",
	// host administration
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "iopl", "ioperm",
	"open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "fanotify_init",
}

// cloneNamespaceFlags are the clone(2) flags that create namespaces.
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// applySeccomp installs the filter on this thread (the one that execs).
// Sockets other than AF_UNIX are refused unless network is true, which
// covers what Landlock cannot (UDP, MPTCP, raw, netlink).
func applySeccomp(network bool) error {
	info, err := arch.GetInfo("")
	if err != nil {
		return err
	}
	var names []string
	for _, n := range deniedSyscalls {
		if _, ok := info.SyscallNames[n]; ok {
			names = append(names, n)
		}
	}
	eperm := seccomp.ActionErrno | seccomp.Action(unix.EPERM)

	// socket(domain, ...): refused unless domain is allowed.
	socketConds := seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.NotEqual, Value: unix.AF_UNIX}}
	if network {
		socketConds = append(socketConds,
			seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: unix.AF_INET},
			seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: unix.AF_INET6})
	}
	policy := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: eperm, Names: names},
			{
				Action: eperm,
				NamesWithCondtions: []seccomp.NameWithConditions{
					{Name: "socket", Conditions: socketConds},
					{Name: "socketpair", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.NotEqual, Value: unix.AF_UNIX}}},
					// clone(flags, ...) creating a namespace. On x86-64 flags
					// is the first argument.
					{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNamespaceFlags}}},
				},
			},
			// clone3 passes its flags in memory, out of the filter's reach:
			// ENOSYS makes libc fall back to clone, which is checked above.
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}
	if err := seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: policy}); err != nil {
		return err
	}
	return loadSecondFilter(uint32(info.ID))
}

// loadSecondFilter loads a hand-written filter for what the policy above
// cannot express. The kernel runs every filter and keeps the strictest answer.
//
//   - System calls through another ABI than the native one fail. On x86-64,
//     `int 0x80` enters the kernel through the i386 table, with other
//     numbers (unshare is 310 there), which the policy above, matching
//     x86-64 numbers only, would let through.
//   - ioctl TIOCSTI and TIOCLINUX fail: typing into a terminal the step
//     inherited (hwe run's stderr) would type into the user's shell. The
//     kernel reads the request as 32 bits, so only the low half is compared;
//     comparing all 64 would let 0x1_00005412 through.
func loadSecondFilter(native uint32) error {
	const (
		nrOffset   = 0      // offsetof(struct seccomp_data, nr)
		archOffset = 4      // offsetof(struct seccomp_data, arch)
		arg1Offset = 16 + 8 // args[1], low 32 bits on little-endian
		retAllow   = unix.SECCOMP_RET_ALLOW
		retEPERM   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		retENOSYS  = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	prog, err := bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: archOffset, Size: 4},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: native, SkipTrue: 1},
		/* 2 */ bpf.RetConstant{Val: retENOSYS},
		/* 3 */ bpf.LoadAbsolute{Off: nrOffset, Size: 4},
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_IOCTL, SkipFalse: 3},
		/* 5 */ bpf.LoadAbsolute{Off: arg1Offset, Size: 4},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCSTI, SkipTrue: 2},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCLINUX, SkipTrue: 1},
		/* 8 */ bpf.RetConstant{Val: retAllow},
		/* 9 */ bpf.RetConstant{Val: retEPERM},
	})
	if err != nil {
		return err
	}
	// bpf.RawInstruction has the layout of struct sock_filter.
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp: second filter: %w", errno)
	}
	return nil
}
