package hostapitest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/plugins/lua"
	"github.com/hwe-run/hwe/plugins/node"
	"github.com/hwe-run/hwe/plugins/python"
	"github.com/hwe-run/hwe/plugins/shell"
	"github.com/hwe-run/hwe/plugins/wasm"
)

// BenchmarkHostCalls measures what host API calls cost in each runner: a
// step that only returns ("0") against the same step making 10 kv_get
// calls ("10"), so (10 - 0) / 10 is the cost of one call, to be read as a
// ratio to the bare step measured in the same run.
func BenchmarkHostCalls(b *testing.B) {
	wasmGuest := buildGuest(b)
	steps := map[string][2]string{ // language: no calls, 10 calls
		api.LangLua: {`function run() return {} end`,
			`function run() for i = 1, 10 do hwe.kv_get("k") end return {} end`},
		api.LangPython: {"def run():\n    return {}\n",
			"import hwe\n\ndef run():\n    for _ in range(10):\n        hwe.kv_get('k')\n    return {}\n"},
		api.LangJavaScript: {"function run() { return {}; }",
			"const hwe = require('hwe');\nasync function run() {\n  for (let i = 0; i < 10; i++) await hwe.kv_get('k');\n  return {};\n}\n"},
		api.LangShell: {"echo '{}'",
			"for i in 1 2 3 4 5 6 7 8 9 10; do hwe-host kv-get k || true; done\necho '{}'"},
		api.LangWasm: {"noop", "kv_get_10"},
	}
	runners := map[string]api.Runner{
		api.LangLua:        lua.New(lua.Options{}),
		api.LangPython:     python.New(python.Options{}),
		api.LangJavaScript: node.New(node.Options{}),
		api.LangShell:      shell.New(shell.Options{}),
		api.LangWasm:       wasm.New(wasm.Options{CacheDir: b.TempDir()}),
	}
	defer func() {
		for _, r := range runners {
			if c, ok := r.(api.Closer); ok {
				_ = c.Close()
			}
		}
	}()
	kv := capability.NewMemoryKV()
	for _, lang := range languages {
		for i, calls := range []string{"0", "10"} {
			b.Run(lang+"/"+calls, func(b *testing.B) {
				req := &api.StepRequest{
					RunID: "run-1", Workflow: "bench", Step: "s", Attempt: 1,
					Language: lang, Code: steps[lang][i], Grant: api.Grant{KV: true},
					TempDir: b.TempDir(),
				}
				if lang == api.LangWasm {
					req.Code, req.Module, req.Function = "", wasmGuest, steps[lang][i]
					req.WorkflowDir = filepath.Dir(wasmGuest)
				}
				host := capability.ForStep(capability.Config{KV: kv}, req, nil)
				runner := runners[lang]
				if _, err := runner.Run(context.Background(), req, host); err != nil { // warm up
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if _, err := runner.Run(context.Background(), req, host); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
