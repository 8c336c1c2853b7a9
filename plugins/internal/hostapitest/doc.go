// Package hostapitest proves that step code in every runner reaches the one
// host API (api.Host, implemented by host/capability) with the same
// behaviour: one table of cases (log, progress, KV, secrets, HTTP, granted
// and refused) is run through Lua, Python, JavaScript, shell and WASM steps
// against a real capability-checked host, and every runner must give the
// same result. The subprocess runners run the table a second time inside
// the OS sandbox. It has no code of its own.
//
// The WASM side of each case is an export of testdata/guest, a Go guest
// built with the Go guest SDK when the tests start.
package hostapitest
