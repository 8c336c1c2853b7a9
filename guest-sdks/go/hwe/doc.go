// Package hwe is the guest SDK for writing hwe workflow steps in standard Go
// compiled to WebAssembly (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared).
//
// A step is an exported function that reads the step's inputs, computes,
// and sets an output:
//
//	package main
//
//	import "github.com/hwe-run/hwe/guest-sdks/go/hwe"
//
//	//go:wasmexport run
//	func run() int32 {
//		return hwe.Run(func(in hwe.Inputs) (any, error) {
//			var data struct{ Numbers []int }
//			if err := in.Decode("generate", &data); err != nil {
//				return nil, err
//			}
//			return map[string]int{"count": len(data.Numbers)}, nil
//		})
//	}
//
//	func main() {}
//
// The module uses Extism's guest ABI (hwe calls it the native convention):
// hwe passes the inputs as one JSON object keyed by dependency step name,
// parses the output as JSON, and fails the step with the message given to
// Fail (or returned by the function given to Run).
//
// Through the host API a step can log, report progress, fetch over HTTP,
// use the workflow's KV store and read secrets, each only as far as the
// step's grant allows: a denied call returns an *Error whose Capability
// names what was missing. Anything written to os.Stdout or os.Stderr goes
// to the step's log.
//
// Every function of this package works only inside hwe (it imports Extism's
// kernel and hwe's host functions); the package builds only for wasip1.
package hwe
