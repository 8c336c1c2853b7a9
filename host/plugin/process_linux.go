package plugin

import "syscall"

// processAttributes puts the plugin in its own process group (so it and its
// workers can be ended together) and has the kernel kill it if hwe dies.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
