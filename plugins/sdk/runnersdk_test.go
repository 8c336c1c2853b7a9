package runnersdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	runnersdk "github.com/hwe-run/hwe/plugins/sdk"
	"github.com/hwe-run/hwe/plugins/sdk/runnertest"
)

// upper is the runner from the package documentation, plus a few host calls.
func upper() *runnersdk.Runner {
	return &runnersdk.Runner{
		Name:    "upper",
		Version: "0.1.0",
		Step: func(ctx context.Context, step *api.StepRequest, host api.Host) (any, error) {
			switch step.Code {
			case "":
				return nil, runnersdk.FailAt(step, 1, "no code")
			case "fetch":
				resp, err := host.HTTPFetch(ctx, api.HTTPRequest{Method: "GET", URL: "https://api.example.com/v"})
				if err != nil {
					return nil, err
				}
				return json.RawMessage(resp.Body), nil
			case "count":
				prev, _, err := host.KVGet(ctx, "count")
				if err != nil {
					return nil, err
				}
				next := fmt.Sprint(len(prev) + 1)
				return next, host.KVPut(ctx, "count", []byte(strings.Repeat("x", len(prev)+1)))
			}
			inputs, err := runnersdk.Inputs(step)
			if err != nil {
				return nil, err
			}
			host.Log("log", "upper-casing "+step.Step)
			host.Progress(1, "done")
			return map[string]any{"text": strings.ToUpper(step.Code), "inputs": inputs}, nil
		},
	}
}

// The test binary is also the upper plugin when installed as hwe-runner-upper.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "hwe-runner-upper" {
		runnersdk.Serve(upper())
		return
	}
	os.Exit(m.Run())
}

func checkUpper(t *testing.T, r api.Runner) {
	res := runnertest.RunStep(t, r, runnertest.Step{
		Name: "shout", Code: "hi", Inputs: map[string]any{"prev": map[string]any{"n": 1.5, "big": json.Number("12345678901234567890")}},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if want := `{"inputs":{"prev":{"big":12345678901234567890,"n":1.5}},"text":"HI"}`; string(res.Output) != want {
		t.Errorf("output = %s, want %s", res.Output, want)
	}
	if logs := res.Host.Logs(); len(logs) != 1 || logs[0] != (runnertest.LogLine{Stream: "log", Line: "upper-casing shout"}) {
		t.Errorf("logs = %v", logs)
	}
	if p := res.Host.ProgressReports(); len(p) != 1 || p[0] != 1 {
		t.Errorf("progress = %v", p)
	}

	res = runnertest.RunStep(t, r, runnertest.Step{Code: ""})
	var se *api.StepError
	if !errors.As(res.Err, &se) || se.Message != "no code" || se.Line != 1 || se.File != "/test/workflow.lua" {
		t.Errorf("err = %#v", res.Err)
	}

	// The fake host denies what the grant does not allow...
	res = runnertest.RunStep(t, r, runnertest.Step{Code: "count"})
	var de *api.DeniedError
	if !errors.As(res.Err, &de) || de.Capability != "kv" {
		t.Errorf("kv without grant: %#v", res.Err)
	}
	res = runnertest.RunStep(t, r, runnertest.Step{Code: "fetch"})
	if !errors.As(res.Err, &de) || de.Capability != "net" {
		t.Errorf("fetch without grant: %#v", res.Err)
	}
	// ...and serves what it does.
	host := runnertest.NewHost()
	host.SetKV("count", []byte("xx"))
	res = runnertest.RunStep(t, r, runnertest.Step{Code: "count", Grant: api.Grant{KV: true}, Host: host})
	if v, _ := host.KV("count"); res.Err != nil || string(res.Output) != `"3"` || string(v) != "xxx" {
		t.Errorf("count = %s, %v, kv %q", res.Output, res.Err, v)
	}
	host = runnertest.NewHost()
	host.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	})
	res = runnertest.RunStep(t, r, runnertest.Step{Code: "fetch", Grant: api.Grant{Net: []string{"api.example.com"}}, Host: host})
	if res.Err != nil || string(res.Output) != `{"path":"/v"}` {
		t.Errorf("fetch = %s, %v", res.Output, res.Err)
	}
}

func TestRunStepInProcess(t *testing.T) {
	checkUpper(t, upper())
}

func TestRunStepThroughPlugin(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hwe-runner-upper")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runnertest.StartPlugin(t, path, "GORACE=atexit_sleep_ms=0")
	if info := r.Info(); info.Name != "upper" || info.Version != "0.1.0" {
		t.Errorf("Info = %+v", info)
	}
	checkUpper(t, r)
}

func TestOutputEncoding(t *testing.T) {
	for _, tc := range []struct {
		result any
		want   string
	}{
		{json.RawMessage(`[1, 2]`), `[1, 2]`},
		{map[string]any{"b": 1, "a": "<&>"}, `{"a":"<&>","b":1}`},
		{nil, `null`},
		{5.0, `5`},
	} {
		r := &runnersdk.Runner{Name: "x", Step: func(context.Context, *api.StepRequest, api.Host) (any, error) { return tc.result, nil }}
		if res := runnertest.RunStep(t, r, runnertest.Step{}); res.Err != nil || string(res.Output) != tc.want {
			t.Errorf("%#v -> %s, %v; want %s", tc.result, res.Output, res.Err, tc.want)
		}
	}
	bad := &runnersdk.Runner{Name: "x", Step: func(context.Context, *api.StepRequest, api.Host) (any, error) { return json.RawMessage(`{`), nil }}
	if _, err := bad.Run(context.Background(), &api.StepRequest{}, nil); err == nil {
		t.Error("invalid raw JSON accepted")
	}
}
