//go:build unix && !linux

package plugin

import "syscall"

// processAttributes puts the plugin in its own process group so it and its
// workers can be ended together.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
