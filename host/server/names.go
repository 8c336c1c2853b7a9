package server

import (
	"fmt"
	"strings"
)

// maxNameLen bounds workflow names (file stems).
const maxNameLen = 128

// checkName accepts a workflow name that can only ever mean a file directly
// inside the tenant's workflows folder: letters, digits, '_', '-' and '.',
// not starting with '.', no "..". Everything else is refused before any
// path is built (the reference let "..%2f" reach any .lua file). File access
// then goes through os.Root as a second line of defence.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("workflow name must be 1 to %d characters", maxNameLen)
	}
	if name[0] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("invalid workflow name %q", name)
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return fmt.Errorf("invalid workflow name %q: use letters, digits, '_', '-' and '.'", name)
		}
	}
	return nil
}
