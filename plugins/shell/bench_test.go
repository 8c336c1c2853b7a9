package shell

import (
	"context"
	"os"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// BenchmarkShell is one small step that reads its input and prints a JSON
// object, in the run's scratch folder as the engine runs it.
func BenchmarkShell(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	req := step("bench", "run() {\n  echo \"{\\\"got\\\": $(parse_input prev)}\"\n}\n", map[string]string{"prev": `{"n":1}`})
	req.TempDir = b.TempDir()
	host := api.NopHost{}
	for i := 0; i < 5; i++ { // warm the page cache, so -benchtime 1x is meaningful too
		if _, err := r.Run(context.Background(), req, host); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := r.Run(context.Background(), req, host)
		if err != nil || string(out) != `{"got":{"n":1}}` {
			b.Fatalf("%s %v", out, err)
		}
	}
}

// BenchmarkHostHelperSetup is what hwe-host adds to every shell step: write
// the helper, make the bell, serve it and stop. Compare with BenchmarkShell.
func BenchmarkHostHelperSetup(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	for i := 0; i < b.N; i++ {
		dir, err := r.scratch.MakeDir("bench-")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := installHostHelper("/bin/bash", dir, dir); err != nil {
			b.Fatal(err)
		}
		stop, err := serveHostCalls(context.Background(), api.NopHost{}, dir)
		if err != nil {
			b.Fatal(err)
		}
		stop()
		_ = os.RemoveAll(dir)
	}
}

// BenchmarkHostHelperCall is one step making 10 hwe-host calls (kv-get
// that the host refuses, so no store is involved). Compare with
// BenchmarkShell for the cost of a call.
func BenchmarkHostHelperCall(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	req := step("bench", "for i in 1 2 3 4 5 6 7 8 9 10; do hwe-host kv-get k 2>/dev/null || true; done\necho '{}'", nil)
	req.TempDir = b.TempDir()
	for i := 0; i < b.N; i++ {
		if _, err := r.Run(context.Background(), req, api.NopHost{}); err != nil {
			b.Fatal(err)
		}
	}
}
