# wxsession — the two commands a newcomer needs:
#   make run    the whole product on this machine: every route, memory store, WeChat emulator
#   make test   every test, starting the real servers the tests need (DynamoDB Local, redis-server)

SHELL := /bin/bash
GO ?= go
FUNCTIONS := login validate decrypt logout phonenumber token
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

lint: ## go mod tidy, gofmt, go vet and golangci-lint (pinned; installed into .cache on first use)
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@test -x $(CACHE)/bin/golangci-lint && $(CACHE)/bin/golangci-lint version 2>/dev/null | grep -q "$(GOLANGCI_LINT_VERSION:v%=%)" || \
		GOBIN=$(CACHE)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(CACHE)/bin/golangci-lint run ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 10s; e.g. make fuzz FUZZTIME=10m)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

build: ## build each function, the local server and the operator's command (wxsession) for this machine into bin/
	@mkdir -p bin
	@for f in $(FUNCTIONS); do echo "go build -o bin/$$f ./functions/$$f"; $(GO) build -trimpath -o bin/$$f ./functions/$$f || exit 1; done
	$(GO) build -trimpath -o bin/local ./cmd/local
	$(GO) build -trimpath -o bin/wxsession ./cmd/wxsession

clean: ## remove build output and the test cache (DynamoDB Local, golangci-lint)
	rm -rf bin dist .aws-sam .cache

.PHONY: bench
bench: ## measure cold start, latency, memory, size, store operations and throughput into docs/performance.md
	./scripts/bench.sh $(BENCHFLAGS)

# --- deployment builds --------------------------------------------------------
# Static, stripped binaries, each linking only its cloud's runtime and store
# (build tags, see shared/platform and shared/store): a Lambda binary carries
# the Runtime API client and DynamoDB but not scf-go-lib and go-redis, an SCF
# binary the reverse, which keeps each small and quick to start (make bench).
# The tags opt out: lambda.norpc drops aws-lambda-go's own net/rpc mode
# (provided.al2023 uses the Runtime API), wxsession_no<x> leaves <x> out.
# Another store on a cloud: drop its tag, e.g.
#   make build-lambda LAMBDA_TAGS=lambda.norpc,wxsession_noscf
RELEASE_FLAGS := -trimpath -ldflags='-s -w'
LAMBDA_TAGS ?= lambda.norpc,wxsession_noscf,wxsession_noredis
SCF_TAGS ?= wxsession_nolambda,wxsession_nodynamodb

.PHONY: package build-lambda build-scf build-LoginFunction build-ValidateFunction build-DecryptFunction build-LogoutFunction build-PhoneNumberFunction build-TokenFunction

build-lambda: ## each function for AWS Lambda (provided.al2023, arm64) into dist/lambda/<name>/bootstrap
	@for f in $(FUNCTIONS); do \
		echo "GOOS=linux GOARCH=arm64 go build -o dist/lambda/$$f/bootstrap ./functions/$$f"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags $(LAMBDA_TAGS) $(RELEASE_FLAGS) -o dist/lambda/$$f/bootstrap ./functions/$$f || exit 1; \
	done

build-scf: ## each function for Tencent SCF (Go1 runtime, amd64) into dist/scf/<name>/{main,scf_bootstrap}
	@for f in $(FUNCTIONS); do \
		echo "GOOS=linux GOARCH=amd64 go build -o dist/scf/$$f/main ./functions/$$f"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -tags $(SCF_TAGS) $(RELEASE_FLAGS) -o dist/scf/$$f/main ./functions/$$f || exit 1; \
		install -m 0755 scf_bootstrap dist/scf/$$f/scf_bootstrap || exit 1; \
	done

package: ## upload-ready zips for the AWS Lambda and Tencent SCF consoles, with SHA256SUMS, into dist/package
	$(GO) run ./cmd/package -out dist/package -lambda-tags $(LAMBDA_TAGS) -scf-tags $(SCF_TAGS) -scf-bootstrap scf_bootstrap

# sam build (template.yaml, BuildMethod: makefile) runs build-<LogicalId> in a
# copy of the source with ARTIFACTS_DIR set; the function's binary is bootstrap.
sam-build = @test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is unset; sam build sets it" >&2; exit 1; }; \
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags $(LAMBDA_TAGS) $(RELEASE_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(1)
build-LoginFunction: ; $(call sam-build,login)
build-ValidateFunction: ; $(call sam-build,validate)
build-DecryptFunction: ; $(call sam-build,decrypt)
build-LogoutFunction: ; $(call sam-build,logout)
build-PhoneNumberFunction: ; $(call sam-build,phonenumber)
build-TokenFunction: ; $(call sam-build,token)
