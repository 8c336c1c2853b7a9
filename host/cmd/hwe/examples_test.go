package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Timestamps in outputs differ between runs; golden files hold <time>.
var timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?`)

// TestExamples runs every example in workflows/ through `hwe run --json`
// under the default sandbox and compares each result with its golden file in
// testdata/examples.
func TestExamples(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "workflows/*.lua"))
	if len(files) < 5 {
		t.Fatalf("expected the example workflows, found %d", len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, stderr, code := runCLI(t, root, "run", "--json", rel)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			got := timestamps.ReplaceAllString(normalizeRun(t, stdout), "<time>")
			name := strings.TrimSuffix(filepath.Base(f), ".lua")
			compareGolden(t, filepath.Join(root, "testdata/examples", name+".golden.json"), got)
		})
	}
}
