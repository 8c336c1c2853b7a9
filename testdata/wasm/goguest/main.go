// Command goguest is a test fixture for hwe's wasm runner, written with the
// Go guest SDK: each export exercises one thing the runner must get right
// for a real toolchain's module (WASI file system, clock, random, stdio,
// environment, memory, panics, the host API through the SDK).
// Built into ../goguest.wasm by `make wasm-fixtures`.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hwe-run/hwe/guest-sdks/go/hwe"
)

// args decodes the inputs into a flat map: tests send each argument as a
// dependency named after it.
func args(in hwe.Inputs) map[string]string {
	m := map[string]string{}
	for k := range in {
		var s string
		if err := in.Decode(k, &s); err == nil {
			m[k] = s
		}
	}
	return m
}

//go:wasmexport echo
func echo() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) { return map[string]any{"inputs": in}, nil })
}

//go:wasmexport fs_read
func fsRead() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		b, err := os.ReadFile(args(in)["path"])
		if err != nil {
			return nil, err
		}
		return map[string]string{"content": string(b)}, nil
	})
}

//go:wasmexport fs_write
func fsWrite() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		a := args(in)
		if err := os.WriteFile(a["path"], []byte(a["content"]), 0o644); err != nil {
			return nil, err
		}
		return map[string]int{"written": len(a["content"])}, nil
	})
}

// fs_escape tries to leave the mounted folder "dir" through symlinks the
// guest creates itself, and through "..". Every attempt must fail.
//
//go:wasmexport fs_escape
func fsEscape() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		dir := args(in)["dir"]
		target := args(in)["target"] // a file outside dir, e.g. /etc/hostname
		result := map[string]string{}
		try := func(name, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				result[name] = "error: " + err.Error()
			} else {
				result[name] = "read: " + string(b)
			}
		}
		rel, _ := filepath.Rel(dir, target)
		_ = os.Symlink(target, filepath.Join(dir, "abs_link"))
		_ = os.Symlink(rel, filepath.Join(dir, "rel_link"))
		_ = os.Symlink(filepath.Dir(target), filepath.Join(dir, "dir_link"))
		try("absolute_symlink", filepath.Join(dir, "abs_link"))
		try("relative_symlink", filepath.Join(dir, "rel_link"))
		try("directory_symlink", filepath.Join(dir, "dir_link", filepath.Base(target)))
		try("dotdot", dir+"/"+rel)
		try("direct", target)
		return result, nil
	})
}

//go:wasmexport clock_random
func clockRandom() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		start := time.Now()
		time.Sleep(20 * time.Millisecond)
		return map[string]any{
			"unix_ms":  time.Now().UnixMilli(),
			"random":   hex.EncodeToString(b),
			"slept_ms": time.Since(start).Milliseconds(),
		}, nil
	})
}

//go:wasmexport env
func env() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		return map[string]any{"env": os.Environ(), "args": os.Args}, nil
	})
}

//go:wasmexport print
func print_() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		fmt.Println("to stdout")
		fmt.Fprint(os.Stderr, "to stderr\nunterminated")
		return nil, nil
	})
}

//go:wasmexport panic
func panic_() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) { panic("boom") })
}

// alloc holds {"mb": N} megabytes, touching every 4 KiB.
//
//go:wasmexport alloc
func alloc() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		var mb int
		_ = in.Decode("mb", &mb)
		held := make([][]byte, 0, mb)
		for range mb {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			held = append(held, b)
		}
		return map[string]int{"held_mb": len(held)}, nil
	})
}

// alloc_once allocates {"bytes": N} in one piece: past what a 32-bit memory
// can hold, Go's runtime gives up before asking for pages.
//
//go:wasmexport alloc_once
func allocOnce() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		var n int
		_ = in.Decode("bytes", &n)
		b := make([]byte, n)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return map[string]int{"held": len(b)}, nil
	})
}

// ticks is bumped by the goroutine bg_start leaves behind.
var ticks atomic.Int64

// bg_start leaves a goroutine running after it returns; it runs again
// whenever the instance runs code.
//
//go:wasmexport bg_start
func bgStart() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		go func() {
			for {
				ticks.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
		time.Sleep(10 * time.Millisecond)
		return map[string]bool{"started": ticks.Load() > 0}, nil
	})
}

// bg_ticks sleeps 50 ms and reports how often a goroutine left by bg_start
// ran meanwhile.
//
//go:wasmexport bg_ticks
func bgTicks() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		before := ticks.Load()
		time.Sleep(50 * time.Millisecond)
		return map[string]int64{"ticks": ticks.Load() - before}, nil
	})
}

// host calls each host function through the SDK and reports what it got.
//
//go:wasmexport host
func host() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		a := args(in)
		out := map[string]string{}
		report := func(name, value string, err error) {
			if err != nil {
				var cap string
				if he, ok := err.(*hwe.Error); ok {
					cap = he.Capability
				}
				out[name] = fmt.Sprintf("error[%s]: %v", cap, err)
				return
			}
			out[name] = value
		}
		hwe.Log("hello from the Go guest")
		report("progress", "ok", hwe.Progress(0.25, "a quarter"))
		report("kv_put", "ok", hwe.KVPut("greeting", []byte("hi \xff")))
		v, found, err := hwe.KVGet("greeting")
		report("kv_get", fmt.Sprintf("%q found=%t", v, found), err)
		s, err := hwe.Secret("API_KEY")
		report("secret", s, err)
		resp, err := hwe.HTTPFetch(hwe.HTTPRequest{Method: "post", URL: a["url"], Body: []byte("ping")})
		if err == nil {
			report("http", fmt.Sprintf("%d %s", resp.Status, resp.Body), nil)
		} else {
			report("http", "", err)
		}
		if a["fail_on_denied"] != "" {
			if _, err := hwe.Secret("API_KEY"); err != nil {
				return nil, fmt.Errorf("cannot continue without the API key: %w", err)
			}
		}
		return out, nil
	})
}

// sleep sleeps {"ms": N} milliseconds.
//
//go:wasmexport sleep
func sleep() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		var ms int
		_ = in.Decode("ms", &ms)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return map[string]int{"slept_ms": ms}, nil
	})
}

// upper returns the "text" input upper-cased: a small step for timing.
//
//go:wasmexport upper
func upper() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		return strings.ToUpper(args(in)["text"]), nil
	})
}

func main() {}
