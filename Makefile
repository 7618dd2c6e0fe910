# The sensor's build. `make help` lists the targets.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO       ?= go
BIN      := bin/sensor
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s
BENCHCOUNT ?= 6

.PHONY: help generate check-generate build run trace test unit rules kernel e2e fuzz fuzz-long bench install lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

# bpf2go hands clang the source's absolute path, and clang's BTF string order
# follows it: generating in one fixed directory keeps the objects the same
# bytes wherever the checkout is, so CI can compare them.
GENDIR := /tmp/mcpsec-sensor-generate

generate: ## regenerate the eBPF objects and Go bindings (needs clang-19)
	rm -rf $(GENDIR) && mkdir -p $(GENDIR)
	cp -r go.mod go.sum bpf pkg $(GENDIR)/
	cd $(GENDIR)/pkg/loader && $(GO) generate ./...
	cp $(GENDIR)/pkg/loader/*_bpfel.go $(GENDIR)/pkg/loader/*_bpfel.o pkg/loader/
	rm -rf $(GENDIR)

check-generate: generate ## fail if the committed eBPF objects differ from a fresh build
	git diff --exit-code -- pkg/loader/ || { echo "bpf2go output is stale: run make generate and commit"; exit 1; }

build: ## build bin/sensor
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/sensor

run: build ## the service in the foreground: discover, judge and contain MCP servers, alerts on stdout (root)
	./$(BIN) daemon

trace: build ## discover MCP servers and print everything they say and do (root)
	./$(BIN) trace

test: lint unit rules kernel e2e fuzz ## everything: unit, rules, kernel, end-to-end tests and short fuzz runs (root)

unit: ## pure tests: decoders, parsers, the correlator, the pipeline's queues (no kernel)
	$(GO) test -count=1 ./pkg/wire/ ./pkg/decode/ ./pkg/correlate/ ./pkg/identity/ ./pkg/contain/harden/ ./pkg/contain/respond/ ./pkg/audit/ ./pkg/sink/ ./pkg/config/ ./pkg/pipeline/ ./internal/unitrun/ ./internal/jsonscan/ ./pkg/inspect/ ./pkg/gateway/ ./pkg/scan/ ./pkg/posture/ ./pkg/report/ ./pkg/dashboard/ ./pkg/metrics/ ./pkg/fleet/ ./cmd/...

rules: ## validate the shipped rules and run their fixtures
	$(GO) run ./cmd/sensor rules lint rules/
	$(GO) run ./cmd/sensor rules test rules/

kernel: ## eBPF tests on the real kernel (root)
	$(GO) test -count=1 ./pkg/loader/ ./pkg/contain/

e2e: ## end-to-end tests: the sensor binary with real MCP servers and clients (root)
	$(GO) test -count=1 -timeout 15m ./test/e2e/

fuzz: ## short fuzz runs of every fuzz target (FUZZTIME=10s each)
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./test/fuzz.sh

fuzz-long: ## longer fuzz runs (FUZZTIME=5m each)
	$(MAKE) fuzz FUZZTIME=5m

bench: ## overhead on real servers, scale, capture, decode, rules, connect-hook and containment-latency benchmarks (root)
	$(GO) test -run '^$$' -bench . -skip Scale -benchmem -count $(BENCHCOUNT) -timeout 90m ./test/bench/ ./pkg/decode/ ./pkg/correlate/ ./pkg/inspect/ ./pkg/gateway/ ./internal/jsonscan/ | tee bench.txt
	$(GO) test -run '^$$' -bench Scale -timeout 30m ./test/bench/ | tee -a bench.txt
	$(GO) test -run '^$$' -bench Containment -timeout 10m ./test/e2e/ | tee -a bench.txt
	$(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da -col /hooks bench.txt
	$(GO) run ./internal/benchtable bench.txt

PREFIX ?= /usr/local
install: build ## install the binary, the systemd unit and (if none) a starting configuration
	install -D -m 0755 bin/sensor $(DESTDIR)$(PREFIX)/bin/sensor
	install -D -m 0644 packaging/mcp-sensor.service $(DESTDIR)/etc/systemd/system/mcp-sensor.service
	sed -i 's#/usr/local/bin/sensor#$(PREFIX)/bin/sensor#g' $(DESTDIR)/etc/systemd/system/mcp-sensor.service
	bin/sensor man --dir $(DESTDIR)$(PREFIX)/share/man/man1 >/dev/null
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	bin/sensor completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sensor
	bin/sensor completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sensor
	@if [ ! -e $(DESTDIR)/etc/mcp-sensor/config.yaml ]; then \
		install -d -m 0700 $(DESTDIR)/etc/mcp-sensor; \
		bin/sensor init --profile baseline --out $(DESTDIR)/etc/mcp-sensor/config.yaml; \
	fi
	@echo "installed; start with: systemctl daemon-reload && systemctl enable --now mcp-sensor"

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# the decoder and the correlator build and test on any OS (no eBPF package)
	GOOS=darwin $(GO) vet ./pkg/wire/ ./pkg/decode/ ./pkg/correlate/ ./pkg/identity/ ./pkg/inspect/
	GOOS=windows $(GO) vet ./pkg/wire/ ./pkg/decode/ ./pkg/correlate/ ./pkg/identity/ ./pkg/inspect/
	$(GO) tool staticcheck ./...

clean: ## remove build output
	rm -rf bin bench.txt
