package queue

import (
	"context"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/registry"
	"github.com/hwe-run/hwe/host/workflow"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
)

// TestLuaWorkflowSameOnWorker: a real Lua workflow using the host API (KV,
// secrets, a denied secret) gives the same results on a worker as in
// process, with the server's capability host, tenant-scoped KV included.
func TestLuaWorkflowSameOnWorker(t *testing.T) {
	src := `workflow = { name = "lua_e2e", fail_fast = false, steps = {
  a = { code = [[function run() hwe.kv_put("x", "41") return { n = 1 } end]], allow = { kv = true } },
  b = { depends_on = { "a" }, allow = { kv = true },
        code = [[function run(inputs) hwe.log("hello") return { n = inputs.a.n + 1, kv = hwe.kv_get("x") } end]] },
  c = { code = [[function run() return { token = hwe.secret("TOKEN") } end]], allow = { secrets = { "TOKEN" } } },
  d = { code = [[function run() return hwe.secret("OTHER") end]], allow = { secrets = { "OTHER" } } },
} }`
	wf, err := workflow.LoadSource("lua_e2e.lua", []byte(src), workflow.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newRegistry := func() *registry.Registry {
		reg := registry.New()
		reg.Register(luarunner.New(luarunner.Options{}))
		return reg
	}
	policy := api.Grant{KV: true, Secrets: []string{"TOKEN"}}
	run := func(ex engine.Executor) (*engine.RunResult, *capability.MemoryKV) {
		kv := capability.NewMemoryKV()
		base := capability.Config{KV: kv, Secrets: capability.MapSecrets{"TOKEN": "s3cret", "OTHER": "no"}}
		res, _ := runWorkflow(t, context.Background(), wf, engine.Options{Executor: ex, Tenant: "t1", Policy: &policy,
			NewHost: func(req *api.StepRequest, emit engine.HostEvents) api.Host {
				return capability.ForStep(base, req, emit)
			}})
		return res, kv
	}

	local, _ := run(newRegistry())

	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	startWorker(t, WorkerConfig{URL: emb.ClientURL(), Name: "lua-worker", Slots: 2, Runners: newRegistry()})
	remote, kv := run(ex)

	for i := range local.Steps {
		l, r := local.Steps[i], remote.Steps[i]
		if l.Name != r.Name || l.Status != r.Status || string(l.Output) != string(r.Output) || l.Error != r.Error {
			t.Errorf("step %s: in process %s %s %q; on a worker %s %s %q", l.Name, l.Status, l.Output, l.Error, r.Status, r.Output, r.Error)
		}
	}
	if got := byName(remote)["b"].Output; string(got) != `{"kv":"41","n":2}` {
		t.Errorf("b: %s", got)
	}
	if v, ok, _ := kv.Get(context.Background(), capability.Scope{Tenant: "t1", Workflow: "lua_e2e"}, "x"); !ok || string(v) != "41" {
		t.Errorf("the server's KV, tenant t1: %q %v", v, ok)
	}
	if d := byName(remote)["d"]; d.Status != engine.StatusFailed {
		t.Errorf("d read a secret outside the policy: %s", d.Output)
	}
}
