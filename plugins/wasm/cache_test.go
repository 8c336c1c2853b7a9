package wasm

import (
	"os"
	"path/filepath"
	"testing"
)

// The default cache folder is under the user's cache dir, private, and
// filled by a compile.
func TestDefaultCacheDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", base)
	want := filepath.Join(base, "hwe", "wasm")
	must(t, os.MkdirAll(want, 0o755)) // too open: New tightens it
	r := New(Options{})
	defer r.Close()
	dir, issue := r.CacheDir()
	if dir != want || issue != "" {
		t.Fatalf("CacheDir() = %q, %q; want %q", dir, issue, want)
	}
	fi, err := os.Stat(dir)
	must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v, want 0700", fi.Mode().Perm())
	}
	mustRun(t, r, step(fixture(t, "reference.wasm"), "rc0"), &testHost{})
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Errorf("nothing cached in %s", dir)
	}
}

// An unusable cache folder falls back to memory, saying why.
func TestUnusableCacheDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	must(t, os.WriteFile(file, nil, 0o600))
	r := New(Options{CacheDir: file})
	defer r.Close()
	if dir, issue := r.CacheDir(); dir != "" || issue == "" {
		t.Errorf("CacheDir() = %q, %q; want a reason and no dir", dir, issue)
	}
	mustRun(t, r, step(fixture(t, "reference.wasm"), "rc0"), &testHost{})

	r2 := New(Options{NoDiskCache: true})
	defer r2.Close()
	if dir, _ := r2.CacheDir(); dir != "" {
		t.Errorf("NoDiskCache: CacheDir() = %q", dir)
	}
}

// At most MaxModules compiled modules stay in memory; an evicted one is
// compiled (from the disk cache) again when needed.
func TestModuleEviction(t *testing.T) {
	r := newTestRunner(t, Options{MaxModules: 1})
	a, b := fixture(t, "reference.wasm"), fixture(t, "native.wasm")
	for range 3 {
		mustRun(t, r, step(a, "rc0"), &testHost{})
		mustRun(t, r, step(b, "noop"), &testHost{})
	}
	r.mu.Lock()
	n := len(r.modules)
	r.mu.Unlock()
	if n != 1 {
		t.Errorf("%d modules in memory, want 1", n)
	}
}
