// Package hostcall serves the host API calls that step code sends as JSON:
// `import hwe` in Python and `require('hwe')` in JavaScript (over the warm
// worker protocol), the `hwe-host` command of shell steps and the hwe_v1_*
// host functions of WASM guests.
//
// It only decodes a call, forwards it to the step's api.Host, which checks it
// against the step's grant, and encodes the answer. Requests and answers have
// the shapes of the WASM host functions (ABI v1, see guest-sdks/README.md),
// so step code in every runner sees the same results:
//
//	op          args                                        answer
//	log         {"line", "stream"?}                         {"value": null}
//	progress    {"fraction": 0..1, "message"?}              {"value": null}
//	kv_get      {"key"}                                     {"found", "value": string|null, "encoding"?}
//	kv_put      {"key", "value", "encoding"?}               {"value": null}
//	secret      {"name"}                                    {"value": string}
//	http_fetch  {"url", "method"?, "headers"?, "body"?,     {"value": {"status", "headers", "body", "encoding"?}}
//	             "encoding"?}
//
// A failed call answers {"error": {"message", "capability"?, "limit"?}}:
// capability is set when the grant refused the call (the message is the
// host's "capability secrets denied: ..."), limit when a size limit was hit.
// Bytes that are not UTF-8 travel base64-encoded, flagged by
// "encoding": "base64".
package hostcall

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hwe-run/hwe/host/api"
)

// The operations of the host API.
const (
	OpLog       = "log"
	OpProgress  = "progress"
	OpKVGet     = "kv_get"
	OpKVPut     = "kv_put"
	OpSecret    = "secret"
	OpHTTPFetch = "http_fetch"
)

// Quick reports whether op only touches the step's events (log, progress):
// such calls never block, so a runner can serve them in order, inline,
// keeping log lines in the order the step wrote them.
func Quick(op string) bool { return op == OpLog || op == OpProgress }

// Serve performs one call for step code and returns its answer. host nil
// means no host API: every call but log and progress is refused.
func Serve(ctx context.Context, host api.Host, op string, args json.RawMessage) map[string]any {
	result, err := Call(ctx, host, op, args)
	if err != nil {
		return ErrorAnswer(op, err)
	}
	return result
}

// Call performs one call like Serve but returns a failure as an error, so a
// runner that wants to see it (the WASM runner remembers denials, to name
// them if the step fails) can before encoding it with ErrorAnswer.
func Call(ctx context.Context, host api.Host, op string, args json.RawMessage) (map[string]any, error) {
	if host == nil {
		host = api.NopHost{}
	}
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	switch op {
	case OpLog:
		return serveLog(host, args)
	case OpProgress:
		return serveProgress(host, args)
	case OpKVGet:
		return serveKVGet(ctx, host, args)
	case OpKVPut:
		return serveKVPut(ctx, host, args)
	case OpSecret:
		return serveSecret(ctx, host, args)
	case OpHTTPFetch:
		return serveHTTPFetch(ctx, host, args)
	}
	return nil, fmt.Errorf("unknown host API call %q", op)
}

// ErrorAnswer is the answer to a call that failed with err. Unless the grant
// refused it, the message starts with name, the call as step code knows it
// (the op, or a WASM host function's name).
func ErrorAnswer(name string, err error) map[string]any {
	e := map[string]any{"message": err.Error()}
	var denied *api.DeniedError
	var limit *api.LimitError
	switch {
	case errors.As(err, &denied):
		e["capability"] = denied.Capability
	case errors.As(err, &limit):
		e["limit"] = limit.Limit
		e["message"] = name + ": " + err.Error()
	default:
		e["message"] = name + ": " + err.Error()
	}
	return map[string]any{"error": e}
}

func decode(args json.RawMessage, v any) error {
	if err := json.Unmarshal(args, v); err != nil {
		return fmt.Errorf("bad request (want a JSON object of arguments): %w", err)
	}
	return nil
}

// done is the answer to a call that has nothing to return.
func done() map[string]any { return map[string]any{"value": nil} }

func serveLog(host api.Host, args json.RawMessage) (map[string]any, error) {
	var r struct {
		Line   string `json:"line"`
		Stream string `json:"stream"`
	}
	if err := decode(args, &r); err != nil {
		return nil, err
	}
	switch r.Stream {
	case "":
		r.Stream = "log"
	case "log", "stdout", "stderr":
	default:
		return nil, fmt.Errorf("unknown stream %q (use log, stdout or stderr)", r.Stream)
	}
	// A log entry is a line: a message with newlines becomes several.
	for _, line := range strings.Split(strings.TrimSuffix(r.Line, "\n"), "\n") {
		host.Log(r.Stream, line)
	}
	return done(), nil
}

func serveProgress(host api.Host, args json.RawMessage) (map[string]any, error) {
	var r struct {
		Fraction *float64 `json:"fraction"`
		Message  string   `json:"message"`
	}
	if err := decode(args, &r); err != nil {
		return nil, err
	}
	if r.Fraction == nil {
		return nil, errors.New("bad request: fraction is missing")
	}
	if *r.Fraction < 0 || *r.Fraction > 1 {
		return nil, fmt.Errorf("fraction %v is outside 0..1", *r.Fraction)
	}
	host.Progress(*r.Fraction, r.Message)
	return done(), nil
}

func serveKVGet(ctx context.Context, host api.Host, args json.RawMessage) (map[string]any, error) {
	var r struct {
		Key string `json:"key"`
	}
	if err := decode(args, &r); err != nil {
		return nil, err
	}
	v, found, err := host.KVGet(ctx, r.Key)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"found": found, "value": nil}
	if found {
		encodeBytes(out, "value", v)
	}
	return out, nil
}

func serveKVPut(ctx context.Context, host api.Host, args json.RawMessage) (map[string]any, error) {
	var r struct {
		Key      string `json:"key"`
		Value    string `json:"value"`
		Encoding string `json:"encoding"`
	}
	if err := decode(args, &r); err != nil {
		return nil, err
	}
	v, err := decodeBytes(r.Value, r.Encoding)
	if err != nil {
		return nil, err
	}
	if err := host.KVPut(ctx, r.Key, v); err != nil {
		return nil, err
	}
	return done(), nil
}

func serveSecret(ctx context.Context, host api.Host, args json.RawMessage) (map[string]any, error) {
	var r struct {
		Name string `json:"name"`
	}
	if err := decode(args, &r); err != nil {
		return nil, err
	}
	v, err := host.Secret(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"value": v}, nil
}

func serveHTTPFetch(ctx context.Context, host api.Host, args json.RawMessage) (map[string]any, error) {
	var r struct {
		URL      string            `json:"url"`
		Method   string            `json:"method"`
		Headers  map[string]string `json:"headers"`
		Body     string            `json:"body"`
		Encoding string            `json:"encoding"`
	}
	if err := decode(args, &r); err != nil {
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
	resp, err := host.HTTPFetch(ctx, api.HTTPRequest{
		Method: strings.ToUpper(r.Method), URL: r.URL, Headers: r.Headers, Body: body,
	})
	if err != nil {
		return nil, err
	}
	value := map[string]any{"status": resp.Status, "headers": resp.Headers}
	if resp.Headers == nil {
		value["headers"] = map[string]string{}
	}
	encodeBytes(value, "body", resp.Body)
	return map[string]any{"value": value}, nil
}

// encodeBytes sets into[key] to b as a string, base64 when it is not text.
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
