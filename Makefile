# trafficlab — see README.md. `make help` lists the targets.

# sudo resets PATH, and Go usually lives outside secure_path.
GO ?= $(shell PATH="$$PATH:/usr/local/go/bin:$$HOME/go/bin" command -v go)
ifeq ($(GO),)
$(error Go 1.26 or newer is needed: install it from go.dev/dl into /usr/local/go, or set GO=/path/to/go)
endif
GOFMT := $(dir $(GO))gofmt

# go.mod names the toolchain (a patch release with the standard library's
# security fixes); Go fetches it from the module proxy once. The
# environment still wins.
export GOTOOLCHAIN ?= auto

BIN := bin
FUZZTIME ?= 10s

.PHONY: help build tools test-deps demo test lint bench fuzz lab-test e2e e2e-kraft ci

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the provision, consumer and lab binaries into bin/
	$(GO) build -o $(BIN)/ ./provision ./consumer ./lab

tools: ## the pulumi CLI of the SDK's version: from PATH, else built once into a cache outside the work tree
	@GO=$(GO) scripts/pulumi-cli.sh

test-deps: ## what the unit tests need on the host (MariaDB for the consumer's store tests; root)
	@scripts/test-deps.sh

demo: tools build ## the main job on the local lab: create the machines, provision, verify, print the URLs (root)
	$(BIN)/lab up
	$(BIN)/provision up
	$(BIN)/provision verify
	@echo
	@$(BIN)/provision status --offline | grep -E '^(site_url|vip_url|dashboard_url):'
	@echo "site through the VIP:  curl -H 'Host: www.sc.com' $$($(BIN)/provision status --offline | sed -n 's/^vip_url: //p')"
	@echo "drills:                sudo $(BIN)/provision drill all   (or zookeeper, kafka, web, lb, consumer)"

test: ## unit tests (no root, no lab), with the race detector
	$(GO) test -race -count=1 ./...

# staticcheck is built from the Go module proxy at this version (cached
# in the module and build caches after the first run).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# govulncheck scans against the vulnerability database of this date
# (scripts/vulndb.sh builds it from the module proxy, once).
GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB ?= v0.0.0-20261105234957-e22db6528018

lint: ## go vet (with and without the lab tag), gofmt, staticcheck and govulncheck
	$(GO) vet ./...
	$(GO) vet -tags lab ./...
	@out=$$($(GOFMT) -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) -tags lab ./...
	$(GO) run $(GOVULNCHECK) -db $$(GO=$(GO) VULNDB=$(VULNDB) scripts/vulndb.sh) -tags lab ./...

bench: ## benchmarks (parser and friends), figures on stdout
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run every fuzz target for FUZZTIME each
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./inventory/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./consumer/nginxlog/
	$(GO) test -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime $(FUZZTIME) ./consumer/dashboard/

lab-test: ## lab tests: machines on this host (root; installs what it needs)
	$(GO) test -tags lab -count=1 -timeout 30m $$($(GO) list -tags lab ./lab/... | grep -v /e2e)

e2e: tools ## the end-to-end run on a default lab (Kafka 3.9, ZooKeeper mode): lab up, provision, checks, drills, destroy, lab down (root)
	$(GO) test -tags lab -count=1 -v -timeout 60m -run '^TestEndToEnd$$' ./lab/e2e/

e2e-kraft: tools ## the end-to-end run on a KRaft lab (Kafka 4, three broker+controller nodes) (root)
	$(GO) test -tags lab -count=1 -v -timeout 45m -run '^TestEndToEndKRaft$$' ./lab/e2e/

# In CI a missing MariaDB fails the store tests instead of skipping them.
ci: export TRAFFICLAB_REQUIRE_MARIADB = 1
ci: tools test-deps lint test fuzz lab-test e2e e2e-kraft ## everything CI runs (.ci/run); the README's test command (root)
