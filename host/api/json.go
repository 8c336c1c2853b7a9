package api

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	return MarshalCanonical(v)
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
