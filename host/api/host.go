package api

import "context"

// Host is the one capability-limited API through which step code reaches the
// outside world. The engine hands each runner a Host scoped to one step
// attempt; every call is checked against that step's Grant by the host, so a
// runner only forwards calls and never decides what is allowed.
//
// A denied call returns a *DeniedError naming the capability.
type Host interface {
	// Log records one line of the step's output ("stdout", "stderr" or "log").
	Log(stream, line string)
	// Progress reports how far the step is (0..1) with an optional message.
	Progress(fraction float64, message string)
	// HTTPFetch performs an HTTP request allowed by the grant's net list.
	HTTPFetch(ctx context.Context, req HTTPRequest) (*HTTPResponse, error)
	// KVGet reads a key from the KV store scoped to tenant and workflow.
	KVGet(ctx context.Context, key string) (value []byte, found bool, err error)
	// KVPut writes a key in the KV store scoped to tenant and workflow.
	KVPut(ctx context.Context, key string, value []byte) error
	// Secret returns a secret the step was granted.
	Secret(ctx context.Context, name string) (string, error)
}

// HTTPRequest is a request made through Host.HTTPFetch.
type HTTPRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// HTTPResponse is the answer to an HTTPRequest.
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// NopHost is a Host that logs nowhere and denies every capability. It is the
// safe default for tests and tools that run a step without a real host.
type NopHost struct{}

func (NopHost) Log(string, string)       {}
func (NopHost) Progress(float64, string) {}
func (NopHost) HTTPFetch(context.Context, HTTPRequest) (*HTTPResponse, error) {
	return nil, &DeniedError{Capability: "net", Detail: "no host API available"}
}
func (NopHost) KVGet(context.Context, string) ([]byte, bool, error) {
	return nil, false, &DeniedError{Capability: "kv", Detail: "no host API available"}
}
func (NopHost) KVPut(context.Context, string, []byte) error {
	return &DeniedError{Capability: "kv", Detail: "no host API available"}
}
func (NopHost) Secret(_ context.Context, name string) (string, error) {
	return "", &DeniedError{Capability: "secrets", Detail: "secret " + name + " not granted"}
}
