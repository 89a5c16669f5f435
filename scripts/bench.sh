#!/usr/bin/env bash
# bench.sh: what `make bench` runs, on a fresh machine as on a used one.
#   1. start DynamoDB Local and redis-server (scripts/test-services.sh, as make
#      test does; it installs them if missing), unless WXSESSION_DYNAMODB_URL and
#      WXSESSION_REDIS_URL already name running ones, or a set is already running
#   2. build and run bench/cmd/wxbench: it prints the report and writes it to
#      docs/performance.md (and the raw Go benchmarks to docs/benchmarks.txt;
#      benchstat, which summarises them, comes through the Go module proxy)
#   3. stop the servers it started
# Arguments go to wxbench (e.g. make bench BENCHFLAGS='-spawns 51').
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
CACHE=$ROOT/.cache
mkdir -p "$CACHE"

for tool in go java curl; do
	command -v "$tool" >/dev/null || { echo "make bench needs $tool on PATH" >&2; exit 1; }
done

stop_services=
if [ -z "${WXSESSION_DYNAMODB_URL:-}" ] || [ -z "${WXSESSION_REDIS_URL:-}" ]; then
	if ./scripts/test-services.sh status | grep -q '^dynamodb: running' &&
		./scripts/test-services.sh status | grep -q '^redis: running'; then
		echo "bench: using the DynamoDB Local and redis-server already running" >&2
	else
		./scripts/test-services.sh start
		stop_services=1
	fi
	set -a
	# shellcheck disable=SC1091
	. "$CACHE/test-services.env"
	set +a
fi
cleanup() { [ -z "$stop_services" ] || ./scripts/test-services.sh stop || true; }
trap cleanup EXIT

go build -o "$CACHE/wxbench" ./bench/cmd/wxbench
"$CACHE/wxbench" "$@"
