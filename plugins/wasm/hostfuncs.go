package wasm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	extism "github.com/extism/go-sdk"

	"github.com/hwe-run/hwe/host/api"
)

// Host functions give a guest hwe's host API. Each is imported from
// "extism:host/user" with the signature (i64) -> i64: the argument is the
// kernel-memory offset of a JSON request (the host frees it), the result the
// offset of a JSON response (the guest may free it), or 0 if the response
// could not be allocated. A response is an object; it has an "error" member
// {"message", "capability"?} when the call failed, otherwise "value" and any
// call-specific members. Byte strings that are not valid UTF-8 travel base64
// encoded, flagged by "encoding": "base64". The names carry the ABI version
// so a later hwe_v2_* can change shapes without breaking built guests.
//
// The host functions only forward to the api.Host of the running step; the
// host checks every call against the step's grant.

var hostFuncSig = funcSig{Params: []valType{i64}, Results: []valType{i64}}

type hostCall func(ctx context.Context, call *callState, request []byte) (map[string]any, error)

var hostFunctions = map[string]hostCall{
	"hwe_v1_log":        hostLog,
	"hwe_v1_progress":   hostProgress,
	"hwe_v1_http_fetch": hostHTTPFetch,
	"hwe_v1_kv_get":     hostKVGet,
	"hwe_v1_kv_put":     hostKVPut,
	"hwe_v1_secret":     hostSecret,
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
		call := hostFunctions[name]
		fn := extism.NewHostFunctionWithStack(name,
			func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
				stack[0] = serveHostCall(ctx, p, name, call, stack[0])
			},
			[]extism.ValueType{extism.ValueTypePTR}, []extism.ValueType{extism.ValueTypePTR})
		fn.SetNamespace(extismUser)
		fns = append(fns, fn)
	}
	return fns
}

func serveHostCall(ctx context.Context, p *extism.CurrentPlugin, name string, call hostCall, offset uint64) uint64 {
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
			result, err = call(ctx, state, req)
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
	e := map[string]any{"message": name + ": " + err.Error()}
	var denied *api.DeniedError
	if errors.As(err, &denied) {
		e["capability"] = denied.Capability
		e["message"] = err.Error()
		if state != nil {
			state.denied = append(state.denied, denied)
		}
	}
	return map[string]any{"error": e}
}

func decodeRequest(req []byte, v any) error {
	if err := json.Unmarshal(req, v); err != nil {
		return fmt.Errorf("bad request (want a JSON object): %w", err)
	}
	return nil
}

// encodeBytes returns b as a JSON string member, base64 when it is not text.
func encodeBytes(into map[string]any, key string, b []byte) {
	if utf8.Valid(b) {
		into[key] = string(b)
		return
	}
	into[key] = base64.StdEncoding.EncodeToString(b)
	into["encoding"] = "base64"
}

func decodeBytes(s, encoding string) ([]byte, error) {
	switch encoding {
	case "", "utf-8", "text":
		return []byte(s), nil
	case "base64":
		return base64.StdEncoding.DecodeString(s)
	}
	return nil, fmt.Errorf("unknown encoding %q (use \"base64\" or leave it out)", encoding)
}

func hostLog(_ context.Context, call *callState, req []byte) (map[string]any, error) {
	var r struct {
		Stream string `json:"stream"`
		Line   string `json:"line"`
	}
	if err := decodeRequest(req, &r); err != nil {
		return nil, err
	}
	switch r.Stream {
	case "":
		r.Stream = "log"
	case "log", "stdout", "stderr":
	default:
		return nil, fmt.Errorf("unknown stream %q (use log, stdout or stderr)", r.Stream)
	}
	for _, line := range strings.Split(strings.TrimSuffix(r.Line, "\n"), "\n") {
		call.host.Log(r.Stream, line)
	}
	return map[string]any{"value": nil}, nil
}

func hostProgress(_ context.Context, call *callState, req []byte) (map[string]any, error) {
	var r struct {
		Fraction float64 `json:"fraction"`
		Message  string  `json:"message"`
	}
	if err := decodeRequest(req, &r); err != nil {
		return nil, err
	}
	if r.Fraction < 0 || r.Fraction > 1 {
		return nil, fmt.Errorf("fraction %v is outside 0..1", r.Fraction)
	}
	call.host.Progress(r.Fraction, r.Message)
	return map[string]any{"value": nil}, nil
}

func hostHTTPFetch(ctx context.Context, call *callState, req []byte) (map[string]any, error) {
	var r struct {
		Method   string            `json:"method"`
		URL      string            `json:"url"`
		Headers  map[string]string `json:"headers"`
		Body     string            `json:"body"`
		Encoding string            `json:"encoding"`
	}
	if err := decodeRequest(req, &r); err != nil {
		return nil, err
	}
	if r.URL == "" {
		return nil, errors.New("bad request: url is empty")
	}
	if r.Method == "" {
		r.Method = "GET"
	}
	body, err := decodeBytes(r.Body, r.Encoding)
	if err != nil {
		return nil, err
	}
	resp, err := call.host.HTTPFetch(ctx, api.HTTPRequest{
		Method: strings.ToUpper(r.Method), URL: r.URL, Headers: r.Headers, Body: body,
	})
	if err != nil {
		return nil, err
	}
	value := map[string]any{"status": resp.Status, "headers": resp.Headers}
	if value["headers"] == nil {
		value["headers"] = map[string]string{}
	}
	encodeBytes(value, "body", resp.Body)
	return map[string]any{"value": value}, nil
}

func hostKVGet(ctx context.Context, call *callState, req []byte) (map[string]any, error) {
	var r struct {
		Key string `json:"key"`
	}
	if err := decodeRequest(req, &r); err != nil {
		return nil, err
	}
	v, found, err := call.host.KVGet(ctx, r.Key)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"found": found, "value": nil}
	if found {
		encodeBytes(out, "value", v)
	}
	return out, nil
}

func hostKVPut(ctx context.Context, call *callState, req []byte) (map[string]any, error) {
	var r struct {
		Key      string `json:"key"`
		Value    string `json:"value"`
		Encoding string `json:"encoding"`
	}
	if err := decodeRequest(req, &r); err != nil {
		return nil, err
	}
	v, err := decodeBytes(r.Value, r.Encoding)
	if err != nil {
		return nil, err
	}
	if err := call.host.KVPut(ctx, r.Key, v); err != nil {
		return nil, err
	}
	return map[string]any{"value": nil}, nil
}

func hostSecret(ctx context.Context, call *callState, req []byte) (map[string]any, error) {
	var r struct {
		Name string `json:"name"`
	}
	if err := decodeRequest(req, &r); err != nil {
		return nil, err
	}
	v, err := call.host.Secret(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"value": v}, nil
}
