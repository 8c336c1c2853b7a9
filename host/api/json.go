package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MarshalCanonical encodes v as compact JSON with object keys sorted and no
// HTML escaping (the reference's serde_json form). json.Number values keep
// their literal text, so integers stay integers and 5.0 stays 5.0.
func MarshalCanonical(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// DecodeJSON decodes one JSON document keeping numbers as json.Number.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid JSON: trailing data after the first value")
	}
	return v, nil
}

// Canonicalize re-encodes a JSON document in canonical form (see
// MarshalCanonical). An empty document becomes null.
func Canonicalize(data []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return json.RawMessage("null"), nil
	}
	v, err := DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	return MarshalCanonical(bigIntsToFloats(v))
}

// bigIntsToFloats turns integers that fit neither int64 nor uint64 into
// floats, as the reference's serde_json does (Python's 2**70 prints as
// 1.1805916207174113e21). Other numbers keep their literal text.
func bigIntsToFloats(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			return x
		}
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return x
		}
		if _, err := strconv.ParseUint(s, 10, 64); err == nil {
			return x
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return x
		}
		return json.Number(serdeFloat(f))
	case []any:
		for i := range x {
			x[i] = bigIntsToFloats(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = bigIntsToFloats(x[k])
		}
	}
	return v
}

// serdeFloat formats a float the way serde_json (ryu) does: the shortest
// digits, with an exponent and no '+' when it is at least 1e16 or below 1e-5.
func serdeFloat(f float64) string {
	abs := math.Abs(f)
	if abs != 0 && (abs >= 1e16 || abs < 1e-5) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		exp = strings.TrimPrefix(exp, "+")
		neg := strings.HasPrefix(exp, "-")
		exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
		if neg {
			exp = "-" + exp
		}
		return mant + "e" + exp
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// languageAliases maps every spelling the reference accepts to the canonical name.
var languageAliases = map[string]string{
	"lua":         LangLua,
	"python":      LangPython,
	"bash":        LangShell,
	"shell":       LangShell,
	"sh":          LangShell,
	"javascript":  LangJavaScript,
	"js":          LangJavaScript,
	"node":        LangJavaScript,
	"nodejs":      LangJavaScript,
	"wasm":        LangWasm,
	"webassembly": LangWasm,
}

// NormalizeLanguage returns the canonical name for a language as written in a
// workflow. Matching is exact (the reference is case-sensitive). Unknown
// languages are returned unchanged (lower-case trimmed is not applied) so a
// third-party runner can serve them; ok reports whether it was a built-in alias.
func NormalizeLanguage(lang string) (canonical string, builtin bool) {
	if c, ok := languageAliases[lang]; ok {
		return c, true
	}
	return lang, false
}

// BuiltinLanguageAliases lists the accepted spellings, for error messages.
func BuiltinLanguageAliases() string {
	return strings.Join([]string{"lua", "python", "javascript/js/node/nodejs", "shell/bash/sh", "wasm/webassembly"}, ", ")
}
