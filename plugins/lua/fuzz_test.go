package lua

import (
	"encoding/json"
	"testing"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/luasafe"
)

// FuzzJSONRoundTrip converts arbitrary JSON to Lua and back: it must never
// panic, always give valid JSON, and be stable (a second round trip changes
// nothing).
func FuzzJSONRoundTrip(f *testing.F) {
	for _, s := range []string{`{"a":[1,null,3],"b":{"c":null}}`, `[]`, `{}`, `"x"`, `1.5`, `[[[]]]`, `{"1":1,"k":"v"}`, `12345678901234567890`} {
		f.Add(s)
	}
	L := luasafe.NewState()
	defer L.Close()
	f.Fuzz(func(t *testing.T, in string) {
		v, err := api.DecodeJSON([]byte(in))
		if err != nil {
			return
		}
		out, err := ToJSON(FromJSON(L, v))
		if err != nil {
			return // e.g. a sparse array too large: a clean error is fine
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %q", out, in)
		}
		v2, _ := api.DecodeJSON(out)
		out2, err := ToJSON(FromJSON(L, v2))
		if err != nil || string(out2) != string(out) {
			t.Fatalf("unstable: %s -> %s (%v)", out, out2, err)
		}
	})
}
