# hwe — build, test, run the examples, benchmark.
# `make run` runs the example workflows; `make test` runs every test.

GO      ?= go
BIN     := bin
HWE     := $(BIN)/hwe
PKGS    := ./...
FUZZTIME ?= 10s

.PHONY: all build run test test-short vet fuzz bench check fmt clean plugins

all: build

build: $(HWE) plugins

$(HWE): FORCE
	@mkdir -p $(BIN)
	$(GO) build -o $(HWE) ./host/cmd/hwe

FORCE:

# Third-party runner example(s), each its own Go module.
plugins:
	@true

run: build
	$(HWE) run workflows

vet:
	$(GO) vet $(PKGS)

test: build vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz

test-short:
	$(GO) test -count=1 $(PKGS)

# A short pass of every fuzz target (go test runs one -fuzz target at a time).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoadSource$$' -fuzztime $(FUZZTIME) ./host/workflow
	$(GO) test -run '^$$' -fuzz '^FuzzJSONRoundTrip$$' -fuzztime $(FUZZTIME) ./plugins/lua

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -count 1 ./host/engine ./plugins/... | tee $(BIN)/bench.txt | grep -E '^(Benchmark|ok|PASS|FAIL)'

fmt:
	gofmt -w $$(git ls-files '*.go')

# Lint, format, vet and fail on a dirty tree.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	@git diff --exit-code --stat || { echo "working tree is dirty"; exit 1; }

clean:
	rm -rf $(BIN)
