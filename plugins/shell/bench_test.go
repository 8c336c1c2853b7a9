package shell

import (
	"context"
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
