// Command wasmguest is the WebAssembly side of hwe's attack battery
// (host/cmd/hwe/attack_test.go): one export per attack, each doing what the
// Python, JavaScript, shell and Lua versions of the attack do, as far as a
// WASI preview 1 module can express it. Arguments come from the step's
// environment (`env = {...}` in the workflow), the only thing a guest sees
// of the host besides its inputs.
//
// An attack that gets through returns what it got (the step succeeds and
// the test fails); one that is stopped fails the step with every error it
// met, so the test can check the error says why.
//
// The test builds it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hwe-run/hwe/guest-sdks/go/hwe"
)

// list splits a "|"-separated environment variable.
func list(name string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(name), "|") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// refused fails the step with every error met, or returns what got through.
func refused(got []string, errs []error) (any, error) {
	if len(got) > 0 {
		return map[string]any{"escaped": got}, nil
	}
	return nil, fmt.Errorf("all %d attempts refused: %w", len(errs), errors.Join(errs...))
}

//go:wasmexport ok
func ok() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		if ms, _ := strconv.Atoi(os.Getenv("SLEEP_MS")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		return map[string]bool{"ok": true}, nil
	})
}

// read_files reads every path in TARGETS.
//
//go:wasmexport read_files
func readFiles() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		var got []string
		var errs []error
		for _, p := range list("TARGETS") {
			if b, err := os.ReadFile(p); err != nil {
				errs = append(errs, err)
			} else {
				got = append(got, p+": "+string(b))
			}
		}
		return refused(got, errs)
	})
}

// write_files writes every path in TARGETS, directly and through symbolic
// links it makes in LINK_DIR (a folder it was granted), and writes
// CONTROL, a file in the granted folder, which must work.
//
//go:wasmexport write_files
func writeFiles() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		if err := os.WriteFile(os.Getenv("CONTROL"), []byte("control"), 0o644); err != nil {
			return nil, fmt.Errorf("control write in the granted folder failed: %w", err)
		}
		var got []string
		var errs []error
		try := func(p string) {
			if err := os.WriteFile(p, []byte("escaped"), 0o644); err != nil {
				errs = append(errs, err)
			} else {
				got = append(got, p)
			}
		}
		for _, p := range list("TARGETS") {
			try(p)
		}
		dir := os.Getenv("LINK_DIR")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("making the folder for the links in the granted folder: %w", err)
		}
		for i, p := range list("LINK_TARGETS") {
			link := filepath.Join(dir, "link"+strconv.Itoa(i))
			if err := os.Symlink(p, link); err != nil {
				errs = append(errs, err)
				continue
			}
			try(link)
		}
		return refused(got, errs)
	})
}

// Extism's own HTTP host function: hwe allows no host through it.
//
//go:wasmimport extism:host/env http_request
func extismHTTPRequest(request, body uint64) uint64

//go:wasmimport extism:host/env alloc
func extismAlloc(length uint64) uint64

//go:wasmimport extism:host/env store_u64
func extismStoreU64(offset, value uint64)

//go:wasmimport extism:host/env store_u8
func extismStoreU8(offset uint64, value uint32)

func toKernel(b []byte) uint64 {
	n := uint64(len(b))
	off := extismAlloc(n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		extismStoreU64(off+i, binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < n; i++ {
		extismStoreU8(off+i, uint32(b[i]))
	}
	return off
}

// connect_tcp reaches the test's TCP listener at URL through the HTTP
// paths a guest has (WASI preview 1 cannot open sockets): hwe_v1_http_fetch
// without a net grant, or with EXTISM set, Extism's own http_request.
//
//go:wasmexport connect_tcp
func connectTCP() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		url := os.Getenv("URL")
		if os.Getenv("EXTISM") != "" {
			extismHTTPRequest(toKernel([]byte(`{"url":"`+url+`","method":"GET"}`)), 0)
			return map[string]string{"escaped": "extism http_request returned for " + url}, nil
		}
		if _, err := hwe.HTTPFetch(hwe.HTTPRequest{URL: url}); err != nil {
			return nil, err
		}
		return map[string]string{"escaped": "hwe_v1_http_fetch reached " + url}, nil
	})
}

// fetch fetches every URL in URLS through the host API.
//
//go:wasmexport fetch
func fetch() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		var got []string
		var errs []error
		for _, url := range list("URLS") {
			resp, err := hwe.HTTPFetch(hwe.HTTPRequest{URL: url})
			if err != nil {
				errs = append(errs, err)
			} else {
				got = append(got, fmt.Sprintf("%s: %d %s", url, resp.Status, resp.Body))
			}
		}
		if len(got) > 0 && os.Getenv("CONTROL") != "" {
			return map[string]any{"status": "ok"}, nil
		}
		return refused(got, errs)
	})
}

// secret looks for the host's secret and variable (values in LOOK_FOR) in
// its environment, then asks the host API for secret X.
//
//go:wasmexport secret
func secret() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		var got []string
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "LOOK_FOR=") {
				continue
			}
			for _, v := range list("LOOK_FOR") {
				if strings.Contains(kv, v) {
					got = append(got, kv)
				}
			}
		}
		if len(got) > 0 {
			return map[string]any{"escaped": got}, nil
		}
		s, err := hwe.Secret("X")
		if err != nil {
			return nil, err
		}
		return map[string]any{"escaped": "secret of " + strconv.Itoa(len(s)) + " bytes"}, nil
	})
}

// secret_control is granted secret X and variable PLAIN_X and reports
// their lengths.
//
//go:wasmexport secret_control
func secretControl() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		s, err := hwe.Secret("X")
		if err != nil {
			return nil, err
		}
		return map[string]int{"secret": len(s), "plain": len(os.Getenv("PLAIN_X"))}, nil
	})
}

// alloc allocates 4 GiB at once.
//
//go:wasmexport alloc
func alloc() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		b := make([]byte, 4<<30-1)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return map[string]int{"escaped": len(b)}, nil
	})
}

// alloc_touch allocates 4 GiB in 1 MiB pieces, writing to every page.
//
//go:wasmexport alloc_touch
func allocTouch() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		var held [][]byte
		for len(held) < 4096 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			held = append(held, b)
		}
		return map[string]int{"escaped": len(held)}, nil
	})
}

// spin never returns.
//
//go:wasmexport spin
func spin() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		n := 0
		for {
			n++
		}
	})
}

// stdout_flood writes FLOOD_BYTES to stdout in 1 KiB lines.
//
//go:wasmexport stdout_flood
func stdoutFlood() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		line := []byte(strings.Repeat("x", 1023) + "\n")
		total := 0
		size, _ := strconv.Atoi(os.Getenv("FLOOD_BYTES"))
		for total < size {
			n, err := os.Stdout.Write(line)
			total += n
			if err != nil {
				return nil, err
			}
		}
		return map[string]int{"written": total}, nil
	})
}

// giant_output returns a JSON string of GIANT_BYTES.
//
//go:wasmexport giant_output
func giantOutput() int32 {
	size, _ := strconv.Atoi(os.Getenv("GIANT_BYTES"))
	doc := make([]byte, size+2)
	for i := range doc {
		doc[i] = 'x'
	}
	doc[0], doc[len(doc)-1] = '"', '"'
	hwe.Output(doc)
	return 0
}

//go:noinline
func deeper(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	return deeper(n+1) + int(pad[0])
}

// recurse recurses without end.
//
//go:wasmexport recurse
func recurse() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) { return map[string]int{"escaped": deeper(0)}, nil })
}

// background is bumped by the goroutine bg_start leaves behind.
var background atomic.Int64

// bg_start leaves a goroutine running when the step ends. A WASM guest has
// no processes: a goroutine is the nearest thing, and it runs whenever the
// instance runs again.
//
//go:wasmexport bg_start
func bgStart() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		go func() {
			for {
				background.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
		time.Sleep(20 * time.Millisecond)
		return map[string]int64{"started": background.Load()}, nil
	})
}

// bg_check fails if a goroutine left by an earlier step runs during this one.
//
//go:wasmexport bg_check
func bgCheck() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		before := background.Load()
		time.Sleep(100 * time.Millisecond)
		if after := background.Load(); after != before {
			return nil, fmt.Errorf("a goroutine left by an earlier step ran during this one (%d ticks in 100 ms)", after-before)
		}
		return map[string]bool{"stopped": true}, nil
	})
}

func main() {}
