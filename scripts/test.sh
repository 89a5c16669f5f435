#!/usr/bin/env bash
# test.sh: everything `make test` runs, on a fresh machine as on a used one.
#   1. start DynamoDB Local and redis-server (scripts/test-services.sh installs them if missing)
#   2. go test -race ./... against them (store conformance, runtimes, flows)
#   3. the load test on every store, on its own (go test skips it there)
#   4. every fuzz target briefly (make fuzz runs them longer)
#   5. the mini-program client's tests (after npm ci: type check, es-check), including against the real local server
#   6. the README's curl walk-through, verbatim, against the local server
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
CACHE=$ROOT/.cache
mkdir -p "$CACHE"

step() { printf '\n==> %s\n' "$*"; }

for tool in go node npm java curl jq; do
	command -v "$tool" >/dev/null || { echo "make test needs $tool on PATH" >&2; exit 1; }
done

step "starting DynamoDB Local and redis-server"
./scripts/test-services.sh start
LOCAL_PID=
cleanup() {
	[ -n "$LOCAL_PID" ] && kill "$LOCAL_PID" 2>/dev/null || true
	./scripts/test-services.sh stop || true
}
trap cleanup EXIT
set -a
# From test-services.sh itself, which honours WXSESSION_CACHE (a second set
# of servers, for a second checkout or a parallel run).
eval "$(./scripts/test-services.sh env)"
set +a

step "go vet"
go vet ./...

step "go test -race ./..."
go test -race -count=1 ./...

step "load: 300 concurrent users on the local server, each store, nothing lost"
# On its own, once the services are warm: see TestLoadNothingLost.
WXSESSION_LOAD=1 go test -count=1 -v -run '^TestLoadNothingLost$' ./cmd/local

step "fuzzing each target briefly (${FUZZTIME:-5s})"
FUZZTIME=${FUZZTIME:-5s} ./scripts/fuzz.sh

step "starting the local server (make run) for the client and README tests"
go build -o "$CACHE/local" ./cmd/local
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
PORT=$PORT "$CACHE/local" >"$CACHE/local.out" 2>"$CACHE/local.log" &
LOCAL_PID=$!
for _ in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$PORT/validate" && break
	sleep 0.1
done

step "mini-program client: npm ci (typescript, miniprogram-api-typings, es-check), node --test"
# Pinned by miniprogram/package-lock.json; from npm's cache when it has them.
(cd miniprogram && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
# WXSESSION_CLIENT_CHECKS: the type check, es-check and npm pack tests fail
# rather than skip when their tools are missing.
(cd miniprogram && WXSESSION_CLIENT_CHECKS=required WXSESSION_URL="http://127.0.0.1:$PORT" node --test test/)

step "README walk-through, verbatim"
./scripts/readme-walkthrough.sh "$PORT"

step "all tests passed"
