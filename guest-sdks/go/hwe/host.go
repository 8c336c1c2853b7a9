//go:build wasip1

package hwe

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// hwe's host functions take a JSON request in a kernel block and return a
// JSON response in another (see plugins/wasm/hostfuncs.go in hwe). The
// version in their names is the ABI version this SDK speaks.

//go:wasmimport extism:host/user hwe_v1_log
func hostLog(request uint64) uint64

//go:wasmimport extism:host/user hwe_v1_progress
func hostProgress(request uint64) uint64

//go:wasmimport extism:host/user hwe_v1_http_fetch
func hostHTTPFetch(request uint64) uint64

//go:wasmimport extism:host/user hwe_v1_kv_get
func hostKVGet(request uint64) uint64

//go:wasmimport extism:host/user hwe_v1_kv_put
func hostKVPut(request uint64) uint64

//go:wasmimport extism:host/user hwe_v1_secret
func hostSecret(request uint64) uint64

// Error is a host call that failed. Capability is set ("net", "kv",
// "secrets", ...) when the step's grant does not allow the call.
type Error struct {
	Func       string
	Message    string
	Capability string
}

func (e *Error) Error() string { return e.Message }

// IsDenied reports whether err is a host call the step's grant refused.
func IsDenied(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Capability != ""
}

type response struct {
	Error *struct {
		Message    string `json:"message"`
		Capability string `json:"capability"`
	} `json:"error"`
	Value    json.RawMessage `json:"value"`
	Found    bool            `json:"found"`
	Encoding string          `json:"encoding"`
}

// call sends request to a host function and decodes its response.
func call(name string, fn func(uint64) uint64, request any) (*response, error) {
	doc, err := json.Marshal(request)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the request: %w", name, err)
	}
	offset := fn(toKernel(doc))
	if offset == 0 {
		return nil, &Error{Func: name, Message: name + ": the host could not return a response (out of memory?)"}
	}
	raw := fromKernel(offset)
	extismFree(offset)
	var resp response
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("%s: bad response %q: %w", name, raw, err)
	}
	if resp.Error != nil {
		return nil, &Error{Func: name, Message: resp.Error.Message, Capability: resp.Error.Capability}
	}
	return &resp, nil
}

// encodeBytes returns b as text, or base64 with its encoding name.
func encodeBytes(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

func decodeBytes(s, encoding string) ([]byte, error) {
	if encoding == "base64" {
		return base64.StdEncoding.DecodeString(s)
	}
	return []byte(s), nil
}

// Log writes a line to the step's log.
func Log(line string) { logTo("log", line) }

// Logf formats a line for the step's log.
func Logf(format string, args ...any) { Log(fmt.Sprintf(format, args...)) }

func logTo(stream, line string) {
	_, _ = call("hwe_v1_log", hostLog, map[string]string{"stream": stream, "line": line})
}

// Progress reports how far the step is, from 0 to 1, with a message.
func Progress(fraction float64, message string) error {
	_, err := call("hwe_v1_progress", hostProgress, map[string]any{"fraction": fraction, "message": message})
	return err
}

// HTTPRequest is a request for HTTPFetch. Method defaults to GET.
type HTTPRequest struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
}

// HTTPResponse is HTTPFetch's answer.
type HTTPResponse struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// HTTPFetch performs an HTTP request through hwe, allowed only to the
// hosts in the step's grant.
func HTTPFetch(req HTTPRequest) (*HTTPResponse, error) {
	body, encoding := encodeBytes(req.Body)
	resp, err := call("hwe_v1_http_fetch", hostHTTPFetch, map[string]any{
		"method": strings.ToUpper(req.Method), "url": req.URL, "headers": req.Headers,
		"body": body, "encoding": encoding,
	})
	if err != nil {
		return nil, err
	}
	var v struct {
		Status   int               `json:"status"`
		Headers  map[string]string `json:"headers"`
		Body     string            `json:"body"`
		Encoding string            `json:"encoding"`
	}
	if err := json.Unmarshal(resp.Value, &v); err != nil {
		return nil, fmt.Errorf("hwe_v1_http_fetch: bad response: %w", err)
	}
	b, err := decodeBytes(v.Body, v.Encoding)
	if err != nil {
		return nil, fmt.Errorf("hwe_v1_http_fetch: bad body: %w", err)
	}
	return &HTTPResponse{Status: v.Status, Headers: v.Headers, Body: b}, nil
}

// KVGet reads a key from the workflow's KV store.
func KVGet(key string) (value []byte, found bool, err error) {
	resp, err := call("hwe_v1_kv_get", hostKVGet, map[string]string{"key": key})
	if err != nil || !resp.Found {
		return nil, false, err
	}
	var s string
	if err := json.Unmarshal(resp.Value, &s); err != nil {
		return nil, false, fmt.Errorf("hwe_v1_kv_get: bad value: %w", err)
	}
	value, err = decodeBytes(s, resp.Encoding)
	return value, err == nil, err
}

// KVPut writes a key in the workflow's KV store.
func KVPut(key string, value []byte) error {
	v, encoding := encodeBytes(value)
	_, err := call("hwe_v1_kv_put", hostKVPut, map[string]string{"key": key, "value": v, "encoding": encoding})
	return err
}

// Secret returns a secret the step was granted.
func Secret(name string) (string, error) {
	resp, err := call("hwe_v1_secret", hostSecret, map[string]string{"name": name})
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(resp.Value, &s); err != nil {
		return "", fmt.Errorf("hwe_v1_secret: bad value: %w", err)
	}
	return s, nil
}
