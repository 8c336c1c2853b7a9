package wasm

import (
	"context"
	"errors"
	"fmt"

	extism "github.com/extism/go-sdk"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/hostcall"
)

// Host functions give a guest hwe's host API. Each is imported from
// "extism:host/user" with the signature (i64) -> i64: the argument is the
// kernel-memory offset of a JSON request (the host frees it), the result the
// offset of a JSON response (the guest may free it), or 0 if the response
// could not be allocated. A response is an object; it has an "error" member
// {"message", "capability"?, "limit"?} when the call failed ("limit" names
// a size limit that was hit), otherwise "value" and any call-specific
// members. Byte strings that are not valid UTF-8 travel base64 encoded,
// flagged by "encoding": "base64". The names carry the ABI version so a
// later hwe_v2_* can change shapes without breaking built guests.
//
// The host functions only move requests and responses through the guest's
// memory; package hostcall serves the calls, as it does for every runner, by
// forwarding them to the api.Host of the running step, which checks each
// against the step's grant.

var hostFuncSig = funcSig{Params: []valType{i64}, Results: []valType{i64}}

// hostFunctions maps each host function to the host API call it serves;
// package hostcall decodes the request, calls api.Host and encodes the
// answer, the same for every runner.
var hostFunctions = map[string]string{
	"hwe_v1_log":        hostcall.OpLog,
	"hwe_v1_progress":   hostcall.OpProgress,
	"hwe_v1_http_fetch": hostcall.OpHTTPFetch,
	"hwe_v1_kv_get":     hostcall.OpKVGet,
	"hwe_v1_kv_put":     hostcall.OpKVPut,
	"hwe_v1_secret":     hostcall.OpSecret,
}

// callState is the per-call context host functions see: the step's host and
// what went wrong, so a guest failure caused by a denied capability can name it.
type callState struct {
	host       api.Host
	maxMessage int64 // largest request or response, in bytes
	denied     []*api.DeniedError
}

type callStateKey struct{}

func withCallState(ctx context.Context, s *callState) context.Context {
	return context.WithValue(ctx, callStateKey{}, s)
}

// extismHostFunctions builds the host functions once per compiled module;
// the step they serve is found through the call's context.
func extismHostFunctions() []extism.HostFunction {
	fns := make([]extism.HostFunction, 0, len(hostFunctions))
	for _, name := range hostFunctionNames() {
		op := hostFunctions[name]
		fn := extism.NewHostFunctionWithStack(name,
			func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
				stack[0] = serveHostCall(ctx, p, name, op, stack[0])
			},
			[]extism.ValueType{extism.ValueTypePTR}, []extism.ValueType{extism.ValueTypePTR})
		fn.SetNamespace(extismUser)
		fns = append(fns, fn)
	}
	return fns
}

// serveHostCall reads the request at offset from the guest's kernel memory,
// serves it and writes the response back, enforcing the size limit both ways.
func serveHostCall(ctx context.Context, p *extism.CurrentPlugin, name, op string, offset uint64) uint64 {
	state, _ := ctx.Value(callStateKey{}).(*callState)
	var result map[string]any
	var err error
	switch n, lerr := p.Length(offset); {
	case state == nil:
		err = errors.New("hwe host functions are not available here")
	case lerr != nil:
		err = fmt.Errorf("reading the request: %w", lerr)
	case int64(n) > state.maxMessage:
		err = fmt.Errorf("request of %d bytes is larger than the limit of %d bytes", n, state.maxMessage)
	default:
		var req []byte
		req, err = p.ReadBytes(offset)
		if err == nil {
			_ = p.Free(offset)
			result, err = hostcall.Call(ctx, state.host, op, req)
		}
	}
	if err != nil {
		result = errorResponse(name, err, state)
	}
	resp, merr := api.MarshalCanonical(result)
	if merr != nil {
		resp, _ = api.MarshalCanonical(errorResponse(name, merr, state))
	}
	if state != nil && int64(len(resp)) > state.maxMessage {
		resp, _ = api.MarshalCanonical(errorResponse(name,
			fmt.Errorf("response of %d bytes is larger than the limit of %d bytes", len(resp), state.maxMessage), state))
	}
	out, werr := p.WriteBytes(resp)
	if werr != nil {
		return 0
	}
	return out
}

// errorResponse turns an error into {"error": {...}}, remembering denials.
func errorResponse(name string, err error, state *callState) map[string]any {
	var denied *api.DeniedError
	if state != nil && errors.As(err, &denied) {
		state.denied = append(state.denied, denied)
	}
	return hostcall.ErrorAnswer(name, err)
}
