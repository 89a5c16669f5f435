# wxsession — the two commands a newcomer needs:
#   make run    the whole product on this machine: every route, memory store, WeChat emulator
#   make test   every test, starting the real servers the tests need (DynamoDB Local, redis-server)

SHELL := /bin/bash
GO ?= go
FUNCTIONS := login validate decrypt logout
GOLANGCI_LINT_VERSION := v2.15.0
CACHE := $(CURDIR)/.cache
FUZZTIME ?= 10s

.PHONY: run test test-go test-client lint fuzz build clean help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

run: ## serve every route on $$PORT (8080) with the memory store and the WeChat emulator
	$(GO) run ./cmd/local

test: ## set up and run every test (Go, fuzz briefly, client library, README walk-through)
	./scripts/test.sh

lint: ## gofmt, go vet and golangci-lint (pinned; installed into .cache on first use)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@test -x $(CACHE)/bin/golangci-lint && $(CACHE)/bin/golangci-lint version 2>/dev/null | grep -q "$(GOLANGCI_LINT_VERSION:v%=%)" || \
		GOBIN=$(CACHE)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(CACHE)/bin/golangci-lint run ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 10s; e.g. make fuzz FUZZTIME=10m)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

build: ## build each function for this machine into bin/<name>
	@mkdir -p bin
	@for f in $(FUNCTIONS); do echo "go build -o bin/$$f ./functions/$$f"; $(GO) build -trimpath -o bin/$$f ./functions/$$f || exit 1; done
	$(GO) build -trimpath -o bin/local ./cmd/local

clean: ## remove build output and the test cache (DynamoDB Local, golangci-lint)
	rm -rf bin dist .aws-sam .cache
