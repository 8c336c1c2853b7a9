package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

// TestSQLRunnerEndToEnd builds the sql runner (its own module), installs it
// on a temporary plugin path the way `make` does, and runs a step through
// discovery, checksum verification and the plugin protocol.
func TestSQLRunnerEndToEnd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, ExecutablePrefix+"sql")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "plugins", "sql-runner")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the sql runner: %v\n%s", err, out)
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin+ChecksumSuffix, fmt.Appendf(nil, "%x  %s\n", sum, filepath.Base(bin)), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Setenv(PathEnv, dir)
	found := Discover(SearchPath())
	if len(found) != 1 || found[0].Language != "sql" || found[0].Err != nil {
		t.Fatalf("Discover = %+v", found)
	}
	listed := List(context.Background(), found, nil)
	if len(listed) != 1 || listed[0].Err != nil || listed[0].Name != "sql" || !strings.HasPrefix(listed[0].Version, "0.1.0 (SQLite 3.") {
		t.Fatalf("List = %+v", listed)
	}

	c, err := NewClient(found[0].Config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := newFakeHost()
	out, err := c.Run(context.Background(), &api.StepRequest{
		Step:     "adults",
		Language: "sql",
		Code: `SELECT u.value ->> 'name' AS name FROM inputs, json_each(inputs.value) AS u
		       WHERE inputs.step = 'people' AND u.value ->> 'age' >= 18 ORDER BY name`,
		Inputs: map[string]json.RawMessage{"people": json.RawMessage(`[{"age":40,"name":"b"},{"age":3,"name":"c"},{"age":18,"name":"a"}]`)},
	}, host)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `[{"name":"a"},{"name":"b"}]` {
		t.Errorf("output = %s", out)
	}
	if len(host.logs) != 1 || host.logs[0] != "log: 2 rows" {
		t.Errorf("logs = %q", host.logs)
	}
}
