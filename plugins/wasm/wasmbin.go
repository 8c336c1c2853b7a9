package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// This file reads just enough of a WebAssembly binary (the type, import,
// function and export sections) to decide how to call a module and whether
// its exports are callable, without compiling it. Compiling a 2.5 MB Go guest
// takes seconds; reading its headers takes microseconds, so validation and
// calling-convention detection never wait for the compiler.

// valType is a WebAssembly value type byte (0x7f = i32, 0x7e = i64, ...).
type valType byte

const (
	i32 valType = 0x7f
	i64 valType = 0x7e
	f32 valType = 0x7d
	f64 valType = 0x7c
)

func (t valType) String() string {
	switch t {
	case i32:
		return "i32"
	case i64:
		return "i64"
	case f32:
		return "f32"
	case f64:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// funcSig is a function signature.
type funcSig struct {
	Params  []valType
	Results []valType
}

func (s funcSig) String() string {
	return "(" + joinTypes(s.Params) + ") -> (" + joinTypes(s.Results) + ")"
}

func (s funcSig) is(params, results []valType) bool {
	return bytes.Equal(typeBytes(s.Params), typeBytes(params)) &&
		bytes.Equal(typeBytes(s.Results), typeBytes(results))
}

func joinTypes(ts []valType) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

func typeBytes(ts []valType) []byte {
	b := make([]byte, len(ts))
	for i, t := range ts {
		b[i] = byte(t)
	}
	return b
}

// wasmImport is one import of a module. Sig is set for function imports.
type wasmImport struct {
	Module, Name string
	Kind         byte // 0 func, 1 table, 2 memory, 3 global, 4 tag
	Sig          funcSig
}

// wasmExport is one export. Sig is set for function exports.
type wasmExport struct {
	Name string
	Kind byte
	Sig  funcSig
}

// moduleInfo is what hwe needs to know about a module before running it.
type moduleInfo struct {
	Imports []wasmImport
	Exports []wasmExport
	// MinMemoryPages is the largest initial size of the module's memories
	// (defined or imported), checked against the cap before instantiation.
	MinMemoryPages uint64
}

// function returns the exported function called name.
func (m *moduleInfo) function(name string) (funcSig, bool) {
	for _, e := range m.Exports {
		if e.Kind == 0 && e.Name == name {
			return e.Sig, true
		}
	}
	return funcSig{}, false
}

// exportNames lists every export, in module order, for error messages.
func (m *moduleInfo) exportNames() []string {
	names := make([]string, len(m.Exports))
	for i, e := range m.Exports {
		names[i] = e.Name
	}
	return names
}

// importsFrom reports whether the module imports anything from module.
func (m *moduleInfo) importsFrom(module string) bool {
	for _, imp := range m.Imports {
		if imp.Module == module {
			return true
		}
	}
	return false
}

var errTruncated = errors.New("unexpected end of module")

// reader decodes the LEB128 and vector encodings of the binary format.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := uint(0); shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("integer too long")
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(r.pos)+uint64(n) > uint64(len(r.b)) {
		return nil, errTruncated
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	return string(b), err
}

func (r *reader) types() ([]valType, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	b, err := r.bytes(n)
	if err != nil {
		return nil, err
	}
	ts := make([]valType, n)
	for i, c := range b {
		ts[i] = valType(c)
	}
	return ts, nil
}

// limits reads a limits record (tables and memories) and returns its
// minimum. Flag bit 0 says a maximum follows; bit 2 marks 64-bit memories,
// whose limits hwe reads with the same 32-bit decoder (they are rejected
// by the compiler anyway).
func (r *reader) limits() (uint64, error) {
	flags, err := r.byte()
	if err != nil {
		return 0, err
	}
	min, err := r.u32()
	if err != nil {
		return 0, err
	}
	if flags&1 != 0 {
		_, err = r.u32() // max
	}
	return uint64(min), err
}

// readModuleInfo parses the headers of a WebAssembly binary. It checks only
// what it reads; the compiler validates the rest.
func readModuleInfo(wasm []byte) (*moduleInfo, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly binary (no \\0asm header)")
	}
	if v := binary.LittleEndian.Uint32(wasm[4:8]); v != 1 {
		return nil, fmt.Errorf("unsupported WebAssembly binary version %d (components are not supported)", v)
	}
	var (
		info      moduleInfo
		sigs      []funcSig
		funcTypes []uint32 // type index of every function, imports first
		exports   []struct {
			name  string
			kind  byte
			index uint32
		}
	)
	r := &reader{b: wasm, pos: 8}
	for r.pos < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		s := &reader{b: body}
		switch id {
		case 1: // types
			n, err := s.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				form, err := s.byte()
				if err != nil {
					return nil, err
				}
				if form != 0x60 {
					return nil, fmt.Errorf("unsupported type form 0x%02x", form)
				}
				params, err := s.types()
				if err != nil {
					return nil, err
				}
				results, err := s.types()
				if err != nil {
					return nil, err
				}
				sigs = append(sigs, funcSig{Params: params, Results: results})
			}
		case 2: // imports
			n, err := s.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				var imp wasmImport
				if imp.Module, err = s.name(); err != nil {
					return nil, err
				}
				if imp.Name, err = s.name(); err != nil {
					return nil, err
				}
				if imp.Kind, err = s.byte(); err != nil {
					return nil, err
				}
				switch imp.Kind {
				case 0: // func
					ti, err := s.u32()
					if err != nil {
						return nil, err
					}
					if int(ti) >= len(sigs) {
						return nil, fmt.Errorf("import %s.%s: bad type index %d", imp.Module, imp.Name, ti)
					}
					imp.Sig = sigs[ti]
					funcTypes = append(funcTypes, ti)
				case 1: // table
					if _, err := s.byte(); err != nil {
						return nil, err
					}
					if _, err := s.limits(); err != nil {
						return nil, err
					}
				case 2: // memory
					pages, err := s.limits()
					if err != nil {
						return nil, err
					}
					info.MinMemoryPages = max(info.MinMemoryPages, pages)
				case 3: // global
					if _, err := s.bytes(2); err != nil { // type, mutability
						return nil, err
					}
				case 4: // tag
					if _, err := s.byte(); err != nil {
						return nil, err
					}
					if _, err := s.u32(); err != nil {
						return nil, err
					}
				default:
					return nil, fmt.Errorf("import %s.%s: unknown kind %d", imp.Module, imp.Name, imp.Kind)
				}
				info.Imports = append(info.Imports, imp)
			}
		case 3: // functions
			n, err := s.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				ti, err := s.u32()
				if err != nil {
					return nil, err
				}
				if int(ti) >= len(sigs) {
					return nil, fmt.Errorf("function: bad type index %d", ti)
				}
				funcTypes = append(funcTypes, ti)
			}
		case 5: // memories
			n, err := s.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				pages, err := s.limits()
				if err != nil {
					return nil, err
				}
				info.MinMemoryPages = max(info.MinMemoryPages, pages)
			}
		case 7: // exports
			n, err := s.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				name, err := s.name()
				if err != nil {
					return nil, err
				}
				kind, err := s.byte()
				if err != nil {
					return nil, err
				}
				index, err := s.u32()
				if err != nil {
					return nil, err
				}
				exports = append(exports, struct {
					name  string
					kind  byte
					index uint32
				}{name, kind, index})
			}
		}
	}
	for _, e := range exports {
		exp := wasmExport{Name: e.name, Kind: e.kind}
		if e.kind == 0 {
			if int(e.index) >= len(funcTypes) {
				return nil, fmt.Errorf("export %q: bad function index %d", e.name, e.index)
			}
			exp.Sig = sigs[funcTypes[e.index]]
		}
		info.Exports = append(info.Exports, exp)
	}
	return &info, nil
}
