package hostcall

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
)

type recorder struct {
	lines    []string
	progress []float64
}

func (r *recorder) Log(stream, line string)      { r.lines = append(r.lines, stream+": "+line) }
func (r *recorder) Progress(f float64, _ string) { r.progress = append(r.progress, f) }

func TestServe(t *testing.T) {
	ev := &recorder{}
	host := capability.ForStep(capability.Config{
		KV: capability.NewMemoryKV(), Secrets: capability.MapSecrets{"A": "1"}, MaxKVValueBytes: 8,
	}, &api.StepRequest{Grant: api.Grant{KV: true, Secrets: []string{"A"}}}, ev)
	ctx := context.Background()
	for _, c := range []struct{ op, args, want string }{
		{OpLog, `{"line":"one\ntwo\n"}`, `{"value":null}`},
		{OpLog, `{"line":"x","stream":"stderr"}`, `{"value":null}`},
		{OpLog, `{"line":"x","stream":"elsewhere"}`, `{"error":{"message":"log: unknown stream \"elsewhere\" (use log, stdout or stderr)"}}`},
		{OpProgress, `{"fraction":0.25}`, `{"value":null}`},
		{OpProgress, `{}`, `{"error":{"message":"progress: bad request: fraction is missing"}}`},
		{OpProgress, `{"fraction":-1}`, `{"error":{"message":"progress: fraction -1 is outside 0..1"}}`},
		{OpKVPut, `{"key":"t","value":"hé"}`, `{"value":null}`},
		{OpKVGet, `{"key":"t"}`, `{"found":true,"value":"hé"}`},
		{OpKVPut, `{"key":"b","value":"/wA=","encoding":"base64"}`, `{"value":null}`},
		{OpKVGet, `{"key":"b"}`, `{"encoding":"base64","found":true,"value":"/wA="}`},
		{OpKVGet, `{"key":"none"}`, `{"found":false,"value":null}`},
		{OpKVPut, `{"key":"big","value":"123456789"}`, `{"error":{"limit":"kv_value","message":"kv_put: kv_value limit exceeded: value of 9 bytes is larger than 8"}}`},
		{OpKVPut, `{"key":"b","value":"x","encoding":"rot13"}`, `{"error":{"message":"kv_put: unknown encoding \"rot13\" (use \"base64\" or leave it out)"}}`},
		{OpSecret, `{"name":"A"}`, `{"value":"1"}`},
		{OpSecret, `{"name":"B"}`, `{"error":{"capability":"secrets","message":"capability secrets denied: secret B not granted (allow = { secrets = { \"B\" } })"}}`},
		{OpHTTPFetch, `{"url":"http://example.com/"}`, `{"error":{"capability":"net","message":"capability net denied: the step has no net grant (allow = { net = { \"host:port\" } })"}}`},
		{OpHTTPFetch, `{}`, `{"error":{"message":"http_fetch: bad request: url is empty"}}`},
		{"fly", `{}`, `{"error":{"message":"fly: unknown host API call \"fly\""}}`},
	} {
		got, err := api.MarshalCanonical(Serve(ctx, host, c.op, json.RawMessage(c.args)))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %s\n got  %s\n want %s", c.op, c.args, got, c.want)
		}
	}
	if want := "log: one|log: two|stderr: x"; !strings.HasPrefix(strings.Join(ev.lines, "|"), want) {
		t.Errorf("lines %q, want them to start %q", ev.lines, want)
	}
	if len(ev.progress) != 1 || ev.progress[0] != 0.25 {
		t.Errorf("progress %v", ev.progress)
	}
}

func TestServeWithoutHostRefuses(t *testing.T) {
	got, _ := api.MarshalCanonical(Serve(context.Background(), nil, OpKVGet, nil))
	if !strings.Contains(string(got), `"capability":"kv"`) {
		t.Fatalf("got %s", got)
	}
}
