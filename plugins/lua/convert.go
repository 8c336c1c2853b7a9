package lua

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/hwe-run/hwe/host/api"
	glua "github.com/yuin/gopher-lua"
)

// maxSparseArray bounds the length of an array made from a table with integer
// keys: a table {[1e9] = true} would otherwise allocate a billion nulls.
const maxSparseArray = 1 << 20

// maxDepth bounds nesting in both directions (and catches self-referencing tables).
const maxDepth = 200

// FromJSON converts a decoded JSON value (numbers as json.Number) to Lua, by
// the reference's rules: null → nil (so an object key with a null value
// disappears), arrays → tables with keys 1..n, objects → string-keyed tables.
func FromJSON(L *glua.LState, v any) glua.LValue {
	switch x := v.(type) {
	case nil:
		return glua.LNil
	case bool:
		return glua.LBool(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return glua.LNil
		}
		return glua.LNumber(f)
	case float64:
		return glua.LNumber(x)
	case string:
		return glua.LString(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for i, e := range x {
			if lv := FromJSON(L, e); lv != glua.LNil {
				t.RawSetInt(i+1, lv)
			}
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			if lv := FromJSON(L, e); lv != glua.LNil {
				t.RawSetString(k, lv)
			}
		}
		return t
	}
	return glua.LNil
}

// ToJSON converts a Lua value to canonical JSON by the reference's rules, with
// one documented difference: Lua 5.1 has no integers, so an integral number
// becomes a JSON integer (the reference prints 10/2 as 5.0; hwe gives 5).
func ToJSON(v glua.LValue) (json.RawMessage, error) {
	x, err := toGo(v, 0)
	if err != nil {
		return nil, err
	}
	return api.MarshalCanonical(x)
}

func toGo(v glua.LValue, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("cannot convert to JSON: nested deeper than %d levels (a table that contains itself?)", maxDepth)
	}
	switch x := v.(type) {
	case *glua.LNilType:
		return nil, nil
	case glua.LBool:
		return bool(x), nil
	case glua.LNumber:
		return numberJSON(float64(x)), nil
	case glua.LString:
		if !utf8.ValidString(string(x)) {
			return nil, fmt.Errorf("cannot convert to JSON: string is not valid UTF-8")
		}
		return string(x), nil
	case *glua.LTable:
		return tableToGo(x, depth)
	default:
		return v.String(), nil // functions, userdata, threads: their display form
	}
}

// numberJSON keeps integral values integers; NaN and infinities become null.
func numberJSON(f float64) any {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return nil
	case f == math.Trunc(f) && math.Abs(f) < 1<<53:
		return json.Number(strconv.FormatInt(int64(f), 10))
	default:
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	}
}

func tableToGo(t *glua.LTable, depth int) (any, error) {
	count, maxKey := 0, 0
	allPositiveInts := true
	var keyErr error
	t.ForEach(func(k, _ glua.LValue) {
		count++
		n, ok := k.(glua.LNumber)
		if ok && float64(n) >= 1 && float64(n) == math.Trunc(float64(n)) {
			maxKey = max(maxKey, int(min(float64(n), math.MaxInt32)))
			return
		}
		allPositiveInts = false
		switch k.(type) {
		case glua.LString, glua.LNumber:
		default:
			keyErr = fmt.Errorf("cannot convert to JSON: table key of type %s", k.Type())
		}
	})
	if keyErr != nil {
		return nil, keyErr
	}
	if count == 0 {
		return map[string]any{}, nil // the reference turns an empty table into {}
	}
	if allPositiveInts {
		if maxKey > maxSparseArray && maxKey > 2*count {
			return nil, fmt.Errorf("cannot convert to JSON: sparse array with index %d", maxKey)
		}
		arr := make([]any, maxKey)
		for i := 1; i <= maxKey; i++ {
			e, err := toGo(t.RawGetInt(i), depth+1)
			if err != nil {
				return nil, err
			}
			arr[i-1] = e
		}
		return arr, nil
	}
	obj := make(map[string]any, count)
	var err error
	keys := make([]glua.LValue, 0, count)
	t.ForEach(func(k, _ glua.LValue) { keys = append(keys, k) })
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		var name string
		if n, ok := k.(glua.LNumber); ok {
			b, _ := api.MarshalCanonical(numberJSON(float64(n)))
			name = string(b)
		} else {
			name = k.String()
		}
		obj[name], err = toGo(t.RawGet(k), depth+1)
		if err != nil {
			return nil, err
		}
	}
	return obj, nil
}
