#!/usr/bin/env bash
# readme-walkthrough.sh PORT: runs the curl walk-through in README.md, exactly as
# written there (only the port changes), against a local server on PORT, and
# checks that every step answered as the README says it does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT=${1:?usage: readme-walkthrough.sh PORT}
script=$(sed -n '/<!-- walkthrough:begin -->/,/<!-- walkthrough:end -->/p' README.md |
	sed -n '/^```bash$/,/^```$/p' | grep -v '^```' | sed "s/127.0.0.1:8080/127.0.0.1:$PORT/g")
[ -n "$script" ] || { echo "README.md has no walk-through between the walkthrough markers" >&2; exit 1; }
out=$(bash -euo pipefail -c "$script" 2>&1) || { echo "$out"; echo "the README walk-through failed" >&2; exit 1; }
echo "$out"
fail=0
expect() {
	if grep -q -- "$1" <<<"$out"; then echo "ok: $2"; else echo "MISSING: $2 ($1)"; fail=1; fi
}
expect '"skey":"' "login answered with an skey"
expect '"expires_in":' "validate answered with expires_in"
expect '"stepInfoList"' "decrypt answered with the WeRun data"
expect '"purePhoneNumber":"' "phonenumber answered with the phone number"
expect 'HTTP/1.1 204' "logout answered 204"
expect '"error":"session_expired"' "the skey stopped working after logout"
[ $fail -eq 0 ] || { echo "the README walk-through did not answer as documented" >&2; exit 1; }
echo "1 passed, 0 failed"
