package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"modernc.org/sqlite"

	"github.com/hwe-run/hwe/host/api"
	runnersdk "github.com/hwe-run/hwe/plugins/sdk"
)

// version is reported by `hwe plugins list`.
const version = "0.1.0"

func newRunner() *runnersdk.Runner {
	return &runnersdk.Runner{
		Name:      "sql",
		Version:   version + " (SQLite " + sqliteVersion() + ")",
		Languages: []string{"sql"},
		Step:      runStep,
	}
}

func sqliteVersion() string {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT sqlite_version()").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

func runStep(ctx context.Context, step *api.StepRequest, host api.Host) (any, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// One connection: every new connection to ":memory:" is another database.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	if err := loadInputs(ctx, conn, step.Inputs); err != nil {
		return nil, fmt.Errorf("loading inputs: %w", err)
	}
	if err := confine(conn); err != nil {
		return nil, err
	}

	rows, err := conn.QueryContext(ctx, step.Code)
	if err != nil {
		return nil, stepFailed(ctx, step, err)
	}
	defer rows.Close()
	out, err := collect(rows)
	if err != nil {
		return nil, stepFailed(ctx, step, err)
	}
	host.Log("log", fmt.Sprintf("%d rows", len(out)))
	return out, nil
}

// loadInputs fills the inputs table.
func loadInputs(ctx context.Context, conn *sql.Conn, inputs map[string]json.RawMessage) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE inputs(step TEXT PRIMARY KEY, value TEXT)`); err != nil {
		return err
	}
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		// Bound as parameters: a step name or value cannot inject SQL.
		if _, err := conn.ExecContext(ctx, `INSERT INTO inputs(step, value) VALUES (?, ?)`, name, string(inputs[name])); err != nil {
			return err
		}
	}
	return nil
}

// confine stops step code from reaching files: ATTACH (and VACUUM INTO,
// which SQLite authorizes as an ATTACH) is the only way an in-memory
// database opens a file.
func confine(conn *sql.Conn) error {
	return conn.Raw(func(driverConn any) error {
		reg, ok := driverConn.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("the SQLite driver cannot install an authorizer")
		}
		return reg.RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, arg1, _, _, _ string) sqlite.AuthorizerReturnCode {
			switch action {
			case sqlite.AuthAttach, sqlite.AuthDetach:
				return sqlite.AuthorizerDeny
			case sqlite.AuthPragma:
				// These two name folders SQLite would write temporary files in.
				if strings.EqualFold(arg1, "temp_store_directory") || strings.EqualFold(arg1, "data_store_directory") {
					return sqlite.AuthorizerDeny
				}
			}
			return sqlite.AuthorizerOK
		})
	})
}

// collect turns the result rows into the step's output.
func collect(rows *sql.Rows) ([]map[string]any, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(cols))
		for i, col := range cols {
			row[col] = jsonValue(values[i])
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// jsonValue maps a SQLite value to JSON: INTEGER and REAL to numbers, NULL to
// null, BLOB to base64, TEXT to a string unless it holds a JSON object or
// array.
func jsonValue(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	t := strings.TrimSpace(s)
	if (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	return s
}

// stepFailed reports a SQL error as a failure of the step's code, at the
// step's first line (SQLite does not say where in the text it failed).
func stepFailed(ctx context.Context, step *api.StepRequest, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return runnersdk.FailAt(step, 1, "sql: %v", err)
}
