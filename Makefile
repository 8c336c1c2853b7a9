# hwe — build, test, run the examples, benchmark.
# `make run` runs the example workflows; `make test` runs every test.

GO      ?= go
BIN     := bin
HWE     := $(BIN)/hwe
PKGS    := ./...
FUZZTIME ?= 10s

.PHONY: all build run test test-short vet fuzz bench check fmt clean plugins deps

all: build wasm-all

include plugins/wasm/wasm.mk

build: $(HWE) plugins

$(HWE): FORCE
	@mkdir -p $(BIN)
	$(GO) build -o $(HWE) ./host/cmd/hwe

FORCE:

# The third-party runner example: its own Go module, found through the plugin
# path with its pinned checksum beside it.
plugins:
	@mkdir -p $(BIN)/plugins
	cd plugins/sql-runner && $(GO) build -o ../../$(BIN)/plugins/hwe-runner-sql .
	cd $(BIN)/plugins && sha256sum hwe-runner-sql > hwe-runner-sql.sha256

run: build
	HWE_PLUGIN_PATH=$(CURDIR)/$(BIN)/plugins $(HWE) run workflows testdata/plugins

vet:
	$(GO) vet $(PKGS)

# What the tests need beyond Go, python3, node and bash: Chromium for the web
# UI's browser tests, wabt to rebuild WAT fixtures, bubblewrap for `hwe doctor`
# comparisons. Installed with apt-get when missing (needs root).
DEB_DEPS := chromium:chromium wat2wasm:wabt bwrap:bubblewrap
deps:
	@missing=""; for d in $(DEB_DEPS); do cmd=$${d%%:*}; pkg=$${d##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; fi; fi
	@for t in python3 node bash; do command -v $$t >/dev/null || echo "missing $$t: install it (apt-get install python3 nodejs bash)"; done

# The attack battery runs without -race: it measures the memory of hwe and its
# plugins during floods, which the race detector's shadow memory would swamp
# (and under -race its floods shrink to a fifth).
test: deps build vet
	$(GO) test -race -count=1 -timeout 20m -skip '^TestAttacks$$' $(PKGS)
	$(GO) test -count=1 -timeout 10m -run '^TestAttacks$$' ./host/cmd/hwe
	cd plugins/sql-runner && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	$(MAKE) fuzz

test-short:
	$(GO) test -count=1 $(PKGS)

# A short pass of every fuzz target (go test runs one -fuzz target at a time).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoadSource$$' -fuzztime $(FUZZTIME) ./host/workflow
	$(GO) test -run '^$$' -fuzz '^FuzzJSONRoundTrip$$' -fuzztime $(FUZZTIME) ./plugins/lua

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s -count 1 ./host/cmd/hwe ./host/plugin ./host/queue ./host/server ./host/sandbox ./plugins/... 2>&1 | tee $(BIN)/bench.txt | grep -E '^(Benchmark|ok|PASS|FAIL)'

fmt:
	gofmt -w $$(git ls-files '*.go')

# Lint, format, vet and fail on a dirty tree.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	@git diff --exit-code --stat || { echo "working tree is dirty"; exit 1; }

clean:
	rm -rf $(BIN)
