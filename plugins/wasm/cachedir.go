package wasm

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// privateCacheDir creates dir (or the default) with mode 0700 and checks it
// belongs to this user and nobody else can write it.
func privateCacheDir(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return "", fmt.Errorf("wasm cache: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("wasm cache: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("wasm cache: %w", err)
	}
	if err := checkPrivate(dir, fi); err != nil {
		return "", err
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", fmt.Errorf("wasm cache: %w", err)
		}
	}
	return dir, nil
}

// checkPrivate refuses a cache directory another user owns: wazero loads
// native code from it into this process.
func checkPrivate(dir string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("wasm cache: %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("wasm cache: %s belongs to uid %d, not to this user", dir, st.Uid)
	}
	return nil
}
