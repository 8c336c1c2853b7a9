package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/sdk/runnertest"
)

var users = map[string]any{"users": []any{
	map[string]any{"name": "ada", "age": 36},
	map[string]any{"name": "bob", "age": 12},
	map[string]any{"name": "cy", "age": 18},
}}

// sqlCases run both in process and through the built plugin binary.
func sqlCases(t *testing.T, r api.Runner) {
	for _, tc := range []struct {
		name   string
		code   string
		inputs map[string]any
		want   string
	}{
		{"root step", `SELECT 1 AS n, 'a' AS s, 2.5 AS f, NULL AS z`, nil, `[{"f":2.5,"n":1,"s":"a","z":null}]`},
		{"inputs as JSON", `
			SELECT u.value ->> 'name' AS name, u.value ->> 'age' AS age
			FROM inputs, json_each(inputs.value, '$.users') AS u
			WHERE inputs.step = 'fetch_users' AND u.value ->> 'age' >= 18
			ORDER BY name`,
			map[string]any{"fetch_users": users},
			`[{"age":36,"name":"ada"},{"age":18,"name":"cy"}]`},
		{"several inputs", `SELECT step, json_type(value) AS type FROM inputs ORDER BY step`,
			map[string]any{"b": []any{1}, "a": "text", "it's \"odd\"": nil},
			`[{"step":"a","type":"text"},{"step":"b","type":"array"},{"step":"it's \"odd\"","type":"null"}]`},
		{"several statements", `
			CREATE TABLE t(x INTEGER);
			INSERT INTO t VALUES (3), (1), (2);
			SELECT x, x * x AS sq FROM t ORDER BY x;`, nil,
			`[{"sq":1,"x":1},{"sq":4,"x":2},{"sq":9,"x":3}]`},
		{"JSON text becomes JSON", `SELECT json_object('a', json_array(1, 2)) AS o, '[not json' AS s, json_group_array(n) AS arr FROM (SELECT 1 AS n UNION ALL SELECT 2)`, nil,
			`[{"arr":[1,2],"o":{"a":[1,2]},"s":"[not json"}]`},
		{"no rows", `SELECT 1 AS n WHERE 0`, nil, `[]`},
		{"no result set", `CREATE TABLE t(x)`, nil, `[]`},
		{"blob", `SELECT x'68776521' AS b`, nil, `[{"b":"aHdlIQ=="}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runnertest.RunStep(t, r, runnertest.Step{Code: tc.code, Inputs: tc.inputs})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if string(res.Output) != tc.want {
				t.Errorf("output = %s\nwant     %s", res.Output, tc.want)
			}
		})
	}

	t.Run("SQL error is a step error at the step's line", func(t *testing.T) {
		res := runnertest.RunStep(t, r, runnertest.Step{Code: "SELECT * FROM nowhere"})
		var se *api.StepError
		if !errors.As(res.Err, &se) || !strings.Contains(se.Message, "no such table: nowhere") || se.Line != 1 || se.File != "/test/workflow.lua" {
			t.Fatalf("err = %#v", res.Err)
		}
	})
	t.Run("no files", func(t *testing.T) {
		dir := t.TempDir()
		for _, code := range []string{
			"ATTACH DATABASE '" + filepath.Join(dir, "a.db") + "' AS a",
			"VACUUM INTO '" + filepath.Join(dir, "b.db") + "'",
			"PRAGMA temp_store_directory = '" + dir + "'",
		} {
			res := runnertest.RunStep(t, r, runnertest.Step{Code: code})
			if !api.IsStepError(res.Err) || !strings.Contains(res.Err.Error(), "authoriz") {
				t.Errorf("%s: err = %v, want it refused", code, res.Err)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("files created: %v", entries)
		}
	})
	t.Run("timeout stops the query", func(t *testing.T) {
		start := time.Now()
		res := runnertest.RunStep(t, r, runnertest.Step{
			Code:    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
			Timeout: 200 * time.Millisecond,
		})
		if !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", res.Err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("query ran %v past its deadline", d)
		}
	})
}

func TestSQLInProcess(t *testing.T) {
	sqlCases(t, newRunner())
	res := runnertest.RunStep(t, newRunner(), runnertest.Step{Code: "SELECT 1 AS n UNION ALL SELECT 2"})
	if logs := res.Host.Logs(); len(logs) != 1 || logs[0].Line != "2 rows" {
		t.Errorf("logs = %v", logs)
	}
}

// TestSQLPlugin builds the runner and runs the same cases through it as hwe
// would: a separate process, checksum verified, no inherited environment.
func TestSQLPlugin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hwe-runner-sql")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := runnertest.StartPlugin(t, bin)
	if info := r.Info(); info.Name != "sql" || !strings.HasPrefix(info.Version, version+" (SQLite 3.") {
		t.Errorf("Info = %+v", info)
	}
	sqlCases(t, r)
}
