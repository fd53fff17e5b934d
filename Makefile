# agenthost — build, run and test.
#
#   make run    start the host on the quickstart config (embedded defaults)
#   make test   vet, the whole test suite, and the race detector where it matters
#   make test-postgres  only the PostgreSQL tests (AGENTHOST_TEST_POSTGRES_DSN names the server)
#   make bench  benchmarks, then the ratio suite (bench/results.md; README.md, "Performance")
#   make fuzz   every fuzz target for FUZZTIME each (not part of make test)
#   make generate  regenerate committed generated code (needs protoc: apt-get install protobuf-compiler)
#   make browser-deps  install Debian's Chromium for the browser test (runtime/host; skipped without it)
#   make interop-deps  install the A2A JS SDK for the interop test (a2a/interop; needs Node.js, skipped without it)
#   make spire-deps  build the SPIRE server and agent the SPIRE tests run (tools/spire; skipped without them)

GO        ?= go
BIN       := bin
CONFIG    ?= examples/quickstart/agenthost.yaml
DATA_DIR  ?= .agenthost
FUZZTIME  ?= 30s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/agenthost/agenthost/cmd/agenthost/internal/cli.version=$(VERSION)

# Packages with concurrent state: run under the race detector in make test.
RACE_PKGS := ./runtime/store/... ./credentials/ca/... ./credentials/authserver/... ./credentials/oauth/... ./credentials/workloadapi/... ./runtime/host/... ./runtime/supervisor/... ./plugins/... ./runtime/audit/... ./runtime/policy/... ./runtime/signals/... ./runtime/localapi/... ./credentials/attest/... ./consent/... ./a2a/... ./credentials/wimse/... ./credentials/federation/... ./credentials/svidtls/... ./runtime/mcphost/... ./runtime/remotetools/... ./runtime/console/...

# Code generators; their versions are also named in the generated files.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
TOOLS              := $(CURDIR)/$(BIN)/tools

.PHONY: all build run test test-postgres vet fmt-check race bench fuzz generate browser-deps interop-deps spire-deps clean

all: build

# Example agent plugins, built into bin/agents/, and tool plugins, built into
# bin/toolplugins/ (the quickstart config runs them).
AGENTS := $(notdir $(wildcard examples/agents/*))
TOOLPLUGINS := $(notdir $(wildcard examples/toolplugins/*))

# Plugins are built static (no libc to map into each sandbox) and without
# gRPC's request tracing (x/net/trace and html/template): an idle example
# agent holds about 2 MiB less (go test -bench IdleAgentMemory ./plugins).
PLUGIN_BUILD := CGO_ENABLED=0 $(GO) build -tags grpcnotrace

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/agenthost ./cmd/agenthost
	@for a in $(AGENTS); do echo "$(PLUGIN_BUILD) -o $(BIN)/agents/$$a ./examples/agents/$$a"; \
	  $(PLUGIN_BUILD) -o $(BIN)/agents/$$a ./examples/agents/$$a || exit 1; done
	@for p in $(TOOLPLUGINS); do echo "$(PLUGIN_BUILD) -o $(BIN)/toolplugins/$$p ./examples/toolplugins/$$p"; \
	  $(PLUGIN_BUILD) -o $(BIN)/toolplugins/$$p ./examples/toolplugins/$$p || exit 1; done

run: build
	./$(BIN)/agenthost up --config $(CONFIG) --data-dir $(DATA_DIR)

# The quickstart config names the example agents' binaries, so they are
# built before the tests that load it.
test: fmt-check vet build
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

# Only the PostgreSQL tests, against the server AGENTHOST_TEST_POSTGRES_DSN
# names (default: the local one; docs/multi-host.md). make test runs them too.
test-postgres:
	$(GO) test -count=1 ./runtime/store/pgstore ./runtime/host -run 'Postgres|TwoHosts|Outage'

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The last line is the ratio suite: the built host against a bare mcp-go
# server, with the floors and targets, written to bench/results.md.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./credentials/... ./runtime/... ./plugins/... ./llm/... ./mcp/...
	$(GO) test -run '^$$' -bench TokenEndpoint -benchtime 3000x ./cmd/tokenload
	$(GO) run ./cmd/hostbench -out bench/results.md

# Each fuzz target runs alone (go test -fuzz takes one target per package).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The committed code was generated with protoc 3.21.12 (Debian's
# protobuf-compiler); `git diff --exit-code` after this shows it is current.
generate:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler"; exit 1; }
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(TOOLS) $(GO) install $(PROTOC_GEN_GO_GRPC)
	cd plugins/proto && PATH="$(TOOLS):$$PATH" protoc --proto_path=. \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

# The browser test (TestApprovalInBrowser, runtime/host) drives Debian's
# Chromium and skips when it is missing. apt-get's package lists are
# refreshed only when the install cannot find the package without it.
CHROMIUM := /usr/bin/chromium
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

browser-deps:
	@if [ -x $(CHROMIUM) ]; then echo "$(CHROMIUM) is installed"; \
	else $(APT_INSTALL) chromium || { apt-get update && $(APT_INSTALL) chromium; }; fi

# The interop test (TestJSSDKClient, a2a/interop) runs the A2A JS SDK's
# client, pinned in package-lock.json, and skips without Node.js or without
# it. npm ci installs it again whenever the lock file is newer than the
# installed copy.
INTEROP_JS := a2a/interop/js

interop-deps: $(INTEROP_JS)/node_modules/.package-lock.json

$(INTEROP_JS)/node_modules/.package-lock.json: $(INTEROP_JS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 18 or later (e.g. apt-get install nodejs npm)"; exit 1; }
	cd $(INTEROP_JS) && npm ci --no-audit --no-fund
	@touch $@

# The SPIRE tests (spire_test.go) run a real SPIRE server and agent, pinned
# as tools in tools/spire/go.mod (a module of its own, not part of agenthost),
# and skip without them. They are built again whenever go.mod or go.sum is
# newer than the binaries. SPIRE's SQLite datastore needs cgo (a C compiler).
SPIRE_BIN := $(BIN)/tools/spire

spire-deps: $(SPIRE_BIN)/spire-server $(SPIRE_BIN)/spire-agent

$(SPIRE_BIN)/spire-%: tools/spire/go.mod tools/spire/go.sum
	cd tools/spire && CGO_ENABLED=1 GOBIN=$(CURDIR)/$(SPIRE_BIN) $(GO) install github.com/spiffe/spire/cmd/spire-$*
	@touch $@

clean:
	rm -rf $(BIN)
