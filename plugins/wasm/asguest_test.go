package wasm

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// These tests run modules built from the AssemblyScript guest SDK:
// testdata/wasm/asguest.wasm (guest-sdks/assemblyscript/tests/asguest.ts)
// and the SDK's example step, workflows/wasm_as_text.wasm.

func TestASGuestHostAPI(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "asguest.wasm")
	granted := &testHost{
		kv:      map[string][]byte{},
		secrets: map[string]string{"API_KEY": "s3cret"},
		fetch: func(req api.HTTPRequest) (*api.HTTPResponse, error) {
			return &api.HTTPResponse{Status: 200, Body: []byte(req.Method + " " + string(req.Body))}, nil
		},
	}
	out := mustRun(t, r, step(module, "host"), granted)
	want := `{"http":"200 POST ping","kv_get":"héllo \"quoted\"\n found=true","kv_put":"ok","progress":"ok","secret":"s3cret"}`
	if string(out) != want {
		t.Errorf("granted:\n got %s\nwant %s", out, want)
	}
	if v := string(granted.kv["greeting"]); v != "héllo \"quoted\"\n" {
		t.Errorf("stored %q", v)
	}
	if logs := granted.logLines(); strings.Join(logs, "|") != "log: hello from the AssemblyScript guest" {
		t.Errorf("logs %q", logs)
	}

	out = mustRun(t, r, step(module, "host"), api.NopHost{})
	for _, want := range []string{
		`"kv_put":"error[kv]: capability kv denied`,
		`"secret":"error[secrets]: capability secrets denied`,
		`"http":"error[net]: capability net denied`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("denied: %s\nwant it to contain %s", out, want)
		}
	}
}

// The SDK writes valid JSON for awkward strings and numbers.
func TestASGuestJSON(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(fixture(t, "asguest.wasm"), "roundtrip")
	req.Inputs = inputs(
		"a", `"quote \" backslash \\ newline \n tab \t bell \u0007 é 😀 \u2028"`,
		"b", `42`, "c", `-1.5`, "d", `1e300`, "e", `null`)
	out := mustRun(t, r, req, &testHost{})
	want := `{"a":"quote \" backslash \\ newline \n tab \t bell \u0007 é 😀 \u2028","b":42,"c":-1.5,"d":1e+300,"e":null}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestASGuestFailures(t *testing.T) {
	r := newTestRunner(t, Options{})
	module := fixture(t, "asguest.wasm")
	_, err := r.Run(t.Context(), step(module, "fails"), &testHost{})
	if err == nil || err.Error() != "nothing to do: ünïcode message" {
		t.Errorf("fails: %v", err)
	}
	// An abort (index out of range) fails the step with where it happened.
	mustFail(t, r, step(module, "aborts"), &testHost{}, "WASM function 'aborts' trapped: abort: Index out of range at ~lib/array.ts:")
}

// The AssemblyScript SDK's example step computes text statistics.
func TestASSDKExampleStep(t *testing.T) {
	r := newTestRunner(t, Options{})
	req := step(filepath.Join(repoRoot(t), "workflows", "wasm_as_text.wasm"), "text_stats")
	req.Inputs = inputs("generate", `{"text":"The cat sat. The dog sat too! Did the cat see the dog?"}`)
	host := &testHost{}
	out := mustRun(t, r, req, host)
	want := `{"characters":54,"computed_by":"wasm (AssemblyScript guest SDK)","distinct_words":7,"longest_word":"cat",` +
		`"sentences":3,"top_words":[{"count":4,"word":"the"},{"count":2,"word":"cat"},{"count":2,"word":"dog"},` +
		`{"count":2,"word":"sat"},{"count":1,"word":"did"}],"vowels":15,"words":13}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if logs := host.logLines(); strings.Join(logs, "|") != "log: analysing 54 characters of text" {
		t.Errorf("logs %q", logs)
	}
	req.Inputs = inputs("generate", `{"numbers":[1]}`)
	mustFail(t, r, req, host, `text_stats needs a dependency that outputs {"text": "..."}`)
}
