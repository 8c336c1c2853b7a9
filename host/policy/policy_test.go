package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

func TestNothingGrantedByDefault(t *testing.T) {
	for name, p := range map[string]Policy{"local": Local(), "strict": Strict(), "zero": {}} {
		g := p.Effective(api.Grant{})
		if len(g.Net)+len(g.FSRead)+len(g.FSWrite)+len(g.Env)+len(g.Secrets) > 0 || g.KV {
			t.Errorf("%s: a step that asks for nothing got %+v", name, g)
		}
	}
	// The zero policy refuses everything a step asks for.
	g := Policy{}.Effective(api.Grant{Net: []string{"*"}, Secrets: []string{"TOKEN"}, KV: true, FSRead: []string{"/data"}})
	if len(g.Net)+len(g.Secrets)+len(g.FSRead) > 0 || g.KV {
		t.Errorf("the zero policy granted %+v", g)
	}
}

func TestEffectiveIntersects(t *testing.T) {
	p := Policy{Ceiling: api.Grant{
		Net:       []string{"*.example.com:443", "127.0.0.1"},
		FSRead:    []string{"/srv/data"},
		FSWrite:   []string{"/srv/out"},
		Env:       []string{"LANG", "AWS_*"},
		Secrets:   []string{"TOKEN"},
		KV:        true,
		Memory:    512 << 20,
		CPU:       30 * time.Second,
		Processes: 64,
	}}
	req := api.Grant{
		Net:       []string{"api.example.com:443", "api.example.com:80", "evil.com", "127.0.0.1:8080", "10.0.0.1"},
		FSRead:    []string{"/srv/data/in", "/etc"},
		FSWrite:   []string{"/srv/out", "/srv/outside"},
		Env:       []string{"LANG", "AWS_REGION", "HOME"},
		Secrets:   []string{"TOKEN", "OTHER"},
		KV:        true,
		Memory:    2 << 30,
		Processes: 16,
	}
	got := p.Effective(req)
	want := api.Grant{
		Net:       []string{"api.example.com:443", "127.0.0.1:8080"},
		FSRead:    []string{"/srv/data/in"},
		FSWrite:   []string{"/srv/out"},
		Env:       []string{"LANG", "AWS_REGION"},
		Secrets:   []string{"TOKEN"},
		KV:        true,
		Memory:    512 << 20, // capped
		CPU:       30 * time.Second,
		Processes: 16,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Effective:\n got %+v\nwant %+v", got, want)
	}

	problems := p.Explain(req)
	joined := strings.Join(problems, "\n")
	for _, w := range []string{`"api.example.com:80"`, `"evil.com"`, `"10.0.0.1"`, `"/etc"`, `"/srv/outside"`, `"HOME"`, `"OTHER"`, "memory: 2GiB is more than the policy's 512MiB"} {
		if !strings.Contains(joined, w) {
			t.Errorf("Explain does not mention %s:\n%s", w, joined)
		}
	}
	if len(problems) != 8 {
		t.Errorf("want 8 problems, got %d:\n%s", len(problems), joined)
	}
	if len(p.Explain(want)) != 0 {
		t.Errorf("the effective grant itself should be fully allowed: %v", p.Explain(want))
	}
}

func TestLocalPolicyKeepsMetadataOut(t *testing.T) {
	g := Local().Effective(api.Grant{Net: []string{"169.254.169.254", "127.0.0.1:8080", "api.example.com"}})
	if !reflect.DeepEqual(g.Net, []string{"127.0.0.1:8080", "api.example.com"}) {
		t.Fatalf("local policy net: %v", g.Net)
	}
	if Local().Effective(api.Grant{}).Memory == 0 {
		t.Fatal("local policy has no default memory limit")
	}
}

func TestParse(t *testing.T) {
	tomlDoc := `
[policy]
require = ["namespaces", "seccomp"]

[policy.allow]
net = ["api.example.com:443"]
fs = { read = ["/srv/data"], write = ["/srv/out"] }
env = ["LANG"]
secrets = ["*"]
kv = true
memory = "512MiB"
cpu = "30s"
processes = 64
max_output = "1MB"
`
	jsonDoc := `{"policy": {"require": ["namespaces", "seccomp"], "allow": {
  "net": ["api.example.com:443"], "fs_read": ["/srv/data"], "fs_write": ["/srv/out"],
  "env": ["LANG"], "secrets": ["*"], "kv": true, "memory": 536870912, "cpu": 30,
  "processes": 64, "max_output": "1MB"}}}`
	want := Policy{
		Require: []string{"namespaces", "seccomp"},
		Ceiling: api.Grant{
			Net: []string{"api.example.com:443"}, FSRead: []string{"/srv/data"}, FSWrite: []string{"/srv/out"},
			Env: []string{"LANG"}, Secrets: []string{"*"}, KV: true, Memory: 512 << 20,
			CPU: 30 * time.Second, Processes: 64, MaxOutput: 1000 * 1000,
		},
	}
	for format, doc := range map[string]string{"toml": tomlDoc, "json": jsonDoc} {
		p, err := Parse([]byte(doc), format)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", format, p, want)
		}
	}

	bad := map[string]string{
		`[policy]
require = ["no-such-layer"]`: "no-such-layer",
		`[policy.allow]
nett = ["x"]`: "nett",
		`[policy.allow]
memory = "lots"`: "lots",
		`[policy.allow]
net = ["ftp://x.io"]`: "ftp",
	}
	for doc, mention := range bad {
		_, err := Parse([]byte(doc), "toml")
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("Parse(%q) = %v, want an error mentioning %q", doc, err, mention)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GB": 1e9, "64k": 64 << 10, "1048576": 1 << 20, "1.5 GiB": 3 << 29} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseBytes("12 parsecs"); err == nil {
		t.Error("accepted a bad unit")
	}
}
