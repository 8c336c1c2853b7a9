// Command hwe-runner-sql is an hwe runner plugin for steps written in SQL.
//
// Each step runs against its own fresh in-memory SQLite database (the
// embedded, pure-Go modernc.org/sqlite). The step's dependencies' outputs are
// rows of the table
//
//	inputs(step TEXT PRIMARY KEY, value TEXT)  -- value: the output as JSON text
//
// so SQLite's JSON functions reach into them:
//
//	SELECT u.value ->> 'name' AS name, u.value ->> 'age' AS age
//	FROM inputs, json_each(inputs.value, '$.users') AS u
//	WHERE inputs.step = 'fetch_users' AND u.value ->> 'age' >= 18
//	ORDER BY name
//
// The code may hold several statements (CREATE TABLE, INSERT, ...); the rows
// of the last one are the step's output, as an array of objects keyed by
// column name. TEXT values that hold a JSON object or array (json_object(),
// json_group_array(), ...) come out as JSON rather than as strings.
//
// The database cannot reach files: ATTACH and VACUUM INTO are refused, and
// nothing else in SQLite touches the file system for an in-memory database.
//
// Build it with `go build -o hwe-runner-sql .` and install it on the plugin
// path with its .sha256 (the Makefile does both).
package main

import runnersdk "github.com/hwe-run/hwe/plugins/sdk"

func main() {
	runnersdk.Serve(newRunner())
}
