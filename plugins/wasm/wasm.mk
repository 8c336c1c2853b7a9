# Rebuilds hwe's WebAssembly fixtures and example guests. Included from the
# top-level Makefile; every path is relative to the repository root.
#
# The built .wasm files are committed, so `go build`, `go test` and
# `hwe run` never need these tools. Rebuilding needs:
#   wat2wasm   Debian package wabt          (WAT fixtures)
#   go         with GOOS=wasip1 GOARCH=wasm  (Go guests; no extra packages)
#   npm, node  npm packages assemblyscript and @extism/as-pdk, installed
#              into guest-sdks/assemblyscript/node_modules by `npm ci`
#
#   make wasm-fixtures   WAT test fixtures, the reference example module,
#                        and the Go test guest
#   make wasm-guests     the Go and AssemblyScript SDK example steps
#   make wasm-all        both
#   make wasm-clean-cache  drop the compiled-module cache (~/.cache/hwe/wasm)

WASM_WAT_SOURCES := $(wildcard testdata/wasm/*.wat) workflows/example_wasm_module.wat
WASM_WAT_TARGETS := $(WASM_WAT_SOURCES:.wat=.wasm)

# Reproducible Go guests: no file paths or build IDs in the module.
WASM_GO_FLAGS := -buildmode=c-shared -trimpath -ldflags='-s -w -buildid='
WASM_GO_SDK := $(wildcard guest-sdks/go/go.mod guest-sdks/go/hwe/*.go)

WASM_AS_DIR := guest-sdks/assemblyscript
WASM_AS_SDK := $(wildcard $(WASM_AS_DIR)/assembly/*.ts) $(WASM_AS_DIR)/package.json $(WASM_AS_DIR)/asconfig.json

.PHONY: wasm-all wasm-fixtures wasm-guests wasm-tools wasm-clean-cache

wasm-all: wasm-fixtures wasm-guests

wasm-fixtures: $(WASM_WAT_TARGETS) testdata/wasm/goguest.wasm testdata/wasm/asguest.wasm

wasm-guests: workflows/wasm_go_stats.wasm workflows/wasm_as_text.wasm

%.wasm: %.wat
	@command -v wat2wasm >/dev/null || { echo "wat2wasm missing: apt-get install wabt" >&2; exit 1; }
	wat2wasm $< -o $@

testdata/wasm/goguest.wasm: $(wildcard testdata/wasm/goguest/*.go testdata/wasm/goguest/go.mod) $(WASM_GO_SDK)
	cd testdata/wasm/goguest && GOOS=wasip1 GOARCH=wasm go build $(WASM_GO_FLAGS) -o ../goguest.wasm .

workflows/wasm_go_stats.wasm: $(wildcard guest-sdks/go/examples/stats/*.go) $(WASM_GO_SDK)
	cd guest-sdks/go && GOOS=wasip1 GOARCH=wasm go build $(WASM_GO_FLAGS) -o ../../$@ ./examples/stats

$(WASM_AS_DIR)/node_modules/.package-lock.json: $(WASM_AS_DIR)/package.json $(WASM_AS_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm missing: install Node.js 18 or later" >&2; exit 1; }
	cd $(WASM_AS_DIR) && npm ci --no-audit --no-fund

workflows/wasm_as_text.wasm: $(WASM_AS_DIR)/examples/text.ts $(WASM_AS_SDK) $(WASM_AS_DIR)/node_modules/.package-lock.json
	cd $(WASM_AS_DIR) && npm run --silent build:example

testdata/wasm/asguest.wasm: $(WASM_AS_DIR)/tests/asguest.ts $(WASM_AS_SDK) $(WASM_AS_DIR)/node_modules/.package-lock.json
	cd $(WASM_AS_DIR) && npm run --silent build:test

wasm-clean-cache:
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/hwe/wasm"
