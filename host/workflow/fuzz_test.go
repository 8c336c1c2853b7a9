package workflow

import (
	"testing"
	"time"
)

// FuzzLoadSource feeds arbitrary text to the loader: it must return either a
// workflow or problems with lines inside the file, never panic or hang.
func FuzzLoadSource(f *testing.F) {
	f.Add(`workflow = { steps = { a = { code = "function run() end" } } }`)
	f.Add(`workflow = { steps = { a = { depends_on = {"b"}, code = "x" }, b = { depends_on = {"a"}, code = "y" } } }`)
	f.Add(`workflow = { name = 1, steps = { { name = "x", code = "z", timeout = "1s", retries = { max = 2 } } } }`)
	f.Add(`workflow = { steps = { w = { language = "wasm", module = "m.wasm", ["function"] = "f", allow = { net = {"a:1"}, memory = "1MiB" } } } }`)
	f.Add("workflow = {\n steps = {\n")
	f.Fuzz(func(t *testing.T, src string) {
		w, err := LoadSource("fuzz.lua", []byte(src), LoadOptions{EvalTimeout: 100 * time.Millisecond})
		if err == nil {
			if w == nil || len(w.Steps) == 0 {
				t.Fatal("no error but no workflow")
			}
			return
		}
		ps, ok := err.(Problems)
		if !ok || len(ps) == 0 {
			t.Fatalf("error is not Problems: %v", err)
		}
	})
}
