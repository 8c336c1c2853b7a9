// Command guest is the WASM side of the host-API table in
// plugins/internal/hostapitest: one export per case, each doing what the
// Lua, Python, JavaScript and shell versions of the case do, through the Go
// guest SDK. The test builds it with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"errors"

	"github.com/hwe-run/hwe/guest-sdks/go/hwe"
)

//go:wasmexport log_line
func logLine() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		hwe.Log("hello from the step")
		return map[string]bool{"logged": true}, nil
	})
}

//go:wasmexport progress
func progress() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		if err := hwe.Progress(0.5, "halfway"); err != nil {
			return nil, err
		}
		return map[string]bool{"reported": true}, nil
	})
}

//go:wasmexport kv_round_trip
func kvRoundTrip() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		if err := hwe.KVPut("greeting", []byte("hello")); err != nil {
			return nil, err
		}
		v, _, err := hwe.KVGet("greeting")
		if err != nil {
			return nil, err
		}
		return map[string]string{"value": string(v)}, nil
	})
}

//go:wasmexport kv_missing
func kvMissing() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		_, found, err := hwe.KVGet("nothing-here")
		if err != nil {
			return nil, err
		}
		return map[string]bool{"missing": !found}, nil
	})
}

//go:wasmexport secret
func secret() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		var name string
		if err := in.Decode("name", &name); err != nil {
			return nil, err
		}
		v, err := hwe.Secret(name)
		if err != nil {
			return nil, err
		}
		return map[string]string{"value": v}, nil
	})
}

//go:wasmexport http_fetch
func httpFetch() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		var url string
		if err := in.Decode("url", &url); err != nil {
			return nil, err
		}
		resp, err := hwe.HTTPFetch(hwe.HTTPRequest{URL: url})
		if err != nil {
			return nil, err
		}
		return map[string]any{"status": resp.Status, "body": string(resp.Body)}, nil
	})
}

// denied_is_caught checks that a refused call is an error the step can
// handle: it returns the capability instead of failing.
//
//go:wasmexport denied_is_caught
func deniedIsCaught() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		_, err := hwe.Secret("OTHER")
		var he *hwe.Error
		if !errors.As(err, &he) || !hwe.IsDenied(err) {
			return nil, errors.New("expected a denied call")
		}
		return map[string]string{"caught": he.Capability}, nil
	})
}

// noop and kv_get_10 are for the benchmark: a bare step, and one making
// ten host calls.
//
//go:wasmexport noop
func noop() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) { return map[string]any{}, nil })
}

//go:wasmexport kv_get_10
func kvGet10() int32 {
	return hwe.Run(func(hwe.Inputs) (any, error) {
		for range 10 {
			if _, _, err := hwe.KVGet("k"); err != nil {
				return nil, err
			}
		}
		return map[string]any{}, nil
	})
}

func main() {}
