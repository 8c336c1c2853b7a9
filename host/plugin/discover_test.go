package plugin

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// installTestPlugin copies the test binary into dir as hwe-runner-LANG (so
// TestMain serves echoRunner) and, if withSum, writes its .sha256 beside it
// the way sha256sum does.
func installTestPlugin(t *testing.T, dir, lang string, withSum bool) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ExecutablePrefix+lang)
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if withSum {
		sum, err := fileSHA256(path)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%x  %s\n", sum, filepath.Base(path))
		if err := os.WriteFile(path+ChecksumSuffix, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestDiscoverOnPluginPath(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	echo := installTestPlugin(t, first, "echo", true)
	installTestPlugin(t, second, "echo", true) // shadowed by the first folder
	nosum := installTestPlugin(t, second, "nosum", false)
	// Not runners: not executable, a checksum file alone, another prefix.
	_ = os.WriteFile(filepath.Join(second, ExecutablePrefix+"text"), []byte("x"), 0o644)
	_ = os.WriteFile(filepath.Join(second, ExecutablePrefix+"orphan.sha256"), []byte("x"), 0o644)
	_ = os.WriteFile(filepath.Join(second, "other-tool"), []byte("x"), 0o755)

	t.Setenv(PathEnv, first+string(os.PathListSeparator)+filepath.Join(first, "missing")+string(os.PathListSeparator)+second)
	t.Setenv("HOME", "/nonexistent-home")
	dirs := SearchPath()
	want := []string{first, filepath.Join(first, "missing"), second, "/nonexistent-home/.hwe/plugins"}
	if fmt.Sprint(dirs) != fmt.Sprint(want) {
		t.Fatalf("SearchPath = %q, want %q", dirs, want)
	}

	found := Discover(dirs)
	if len(found) != 2 || found[0].Language != "echo" || found[1].Language != "nosum" {
		t.Fatalf("Discover = %+v", found)
	}
	if found[0].Path != echo || found[0].Err != nil || len(found[0].Checksum) != 32 {
		t.Errorf("echo = %+v", found[0])
	}
	if found[1].Path != nosum || found[1].Err == nil || !strings.Contains(found[1].Err.Error(), "no checksum file") {
		t.Errorf("nosum = %+v", found[1])
	}

	listed := List(context.Background(), found, nil)
	if len(listed) != 2 {
		t.Fatalf("List = %+v", listed)
	}
	if l := listed[0]; l.Err != nil || l.Name != "echo" || l.Version != "1.2.3" || l.Kind != "plugin" || l.Path != echo {
		t.Errorf("listed echo = %+v (%v)", l.RunnerInfo, l.Err)
	}
	if l := listed[1]; l.Err == nil || l.Version != "" || l.Path != nosum {
		t.Errorf("listed nosum = %+v (%v)", l.RunnerInfo, l.Err)
	}

	// A found plugin serves steps of its language.
	cfg := found[0].Config()
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil)
	if err != nil || string(out) != "null" {
		t.Fatalf("Run = %s, %v", out, err)
	}

	// A plugin without a pinned checksum cannot even be configured.
	if _, err := NewClient(found[1].Config()); err == nil || !strings.Contains(err.Error(), "no SHA-256 checksum pinned") {
		t.Errorf("NewClient without checksum: %v", err)
	}
}

func TestChecksumMismatchRefusesLaunch(t *testing.T) {
	dir := t.TempDir()
	path := installTestPlugin(t, dir, "echo", true)
	found := Discover([]string{dir})
	if len(found) != 1 || found[0].Err != nil {
		t.Fatalf("Discover = %+v", found)
	}
	cfg := found[0].Config()
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil); err != nil {
		t.Fatalf("verified plugin: %v", err)
	}

	// The binary is replaced after discovery (by something else entirely).
	if err := os.WriteFile(path+".new", []byte("#!/bin/sh\necho tampered\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}

	// The running process is untouched; the next launch is refused.
	if _, err := c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil); err != nil {
		t.Fatalf("running plugin: %v", err)
	}
	c.mu.Lock()
	c.cur.kill()
	c.mu.Unlock()
	for range 2 { // refused every time, not just the first (a fresh SecureConfig per launch)
		_, err = c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Path != path || ce.Want != hex.EncodeToString(cfg.Checksum) || ce.Got == ce.Want || ce.Got == "" {
			t.Fatalf("err = %#v, want a ChecksumError", err)
		}
		if !strings.Contains(err.Error(), "runner echo: refusing to launch "+path+": its SHA-256 is ") {
			t.Errorf("message = %q", err)
		}
	}

	// A missing binary is refused with the same error type.
	_ = os.Remove(path)
	_, err = c.Run(context.Background(), &api.StepRequest{Code: "noop"}, nil)
	var ce *ChecksumError
	if !errors.As(err, &ce) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing binary: %v", err)
	}
}

func TestChecksumFileFormats(t *testing.T) {
	dir := t.TempDir()
	sum := strings.Repeat("ab", 32)
	for name, content := range map[string]string{
		"plain": sum + "\n", "sha256sum": sum + "  hwe-runner-x\n", "bad": "nothex", "short": "abcd", "empty": "",
	} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(content), 0o644)
		got, err := readChecksumFile(p)
		ok := name == "plain" || name == "sha256sum"
		if ok != (err == nil) || (ok && hex.EncodeToString(got) != sum) {
			t.Errorf("%s: %x, %v", name, got, err)
		}
	}
}
