#!/usr/bin/env bash
# Interop of the Cerializer (piccolo-cerializer) with outside HTTP clients, run by .ci/run:
#  1. curl calls for each route, with the status each must answer;
#  2. schemathesis (from PyPI) against /openapi.json with every check: no 5xx, every response
#     matching the document (settings and their reasons: .ci/schemathesis.toml).
# Starts a server and a gateway on free ports (both log their bound address) and stops both,
# by pid, on exit. Needs curl and python3 (with venv); builds the two binaries if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet --bin piccolo-server --bin piccolo-cerializer
bin=target/debug

# wait_addr LOG: the address after "listening on" in LOG (waits up to 20 s).
wait_addr() {
    for _ in $(seq 200); do
        local addr
        addr="$(sed -n 's/.* listening on \([^ ]*\).*/\1/p' "$1" 2>/dev/null | head -n1)"
        if [ -n "$addr" ]; then
            echo "$addr"
            return 0
        fi
        sleep 0.1
    done
    echo "no address in $1:" >&2
    cat "$1" >&2
    return 1
}

"$bin/piccolo-server" --addr 127.0.0.1:0 --no-pin 2>"$work/server.log" &
pids+=("$!")
store="$(wait_addr "$work/server.log")"
"$bin/piccolo-cerializer" --listen 127.0.0.1:0 --server "$store" 2>"$work/gateway.log" &
pids+=("$!")
gateway="$(wait_addr "$work/gateway.log")"
base="http://$gateway"
echo "server on $store, gateway on $gateway"

failures=0
# expect STATUS METHOD PATH [curl args...]: one call, its status checked.
expect() {
    local want="$1" method="$2" path="$3"
    shift 3
    local got
    got="$(curl -sS -o "$work/body" -w '%{http_code}' -X "$method" "$@" "$base$path")"
    if [ "$got" = "$want" ]; then
        printf 'ok   %s %-40s %s\n' "$method" "$path" "$got"
    else
        printf 'FAIL %s %-40s got %s, want %s: %s\n' "$method" "$path" "$got" "$want" \
            "$(head -c 300 "$work/body")"
        failures=$((failures + 1))
    fi
}
json=(-H 'Content-Type: application/json')

expect 200 GET /v1/health
expect 404 GET /v1/keys/greeting
expect 200 PUT /v1/keys/greeting "${json[@]}" -d '{"value":"hello"}'
expect 200 GET /v1/keys/greeting
grep -q '"value":"hello"' "$work/body" || { echo "FAIL: GET body $(cat "$work/body")"; failures=$((failures + 1)); }
version="$(sed -n 's/.*"version":\([0-9]*\).*/\1/p' "$work/body")"
expect 412 PUT /v1/keys/greeting "${json[@]}" -H "If-Match: \"$((version + 1000))\"" -d '{"value":"x"}'
expect 200 PUT /v1/keys/greeting "${json[@]}" -H "If-Match: \"$version\"" -d '{"value":"hi","ttl_ms":60000}'
expect 409 PUT '/v1/keys/greeting?if=absent' "${json[@]}" -d '{"value":"x"}'
expect 201 PUT '/v1/keys/new?if=absent' "${json[@]}" -d '{"value":"x"}'
expect 404 PUT '/v1/keys/missing?if=present' "${json[@]}" -d '{"value":"x"}'
expect 200 PUT /v1/keys/a%2Fb%20c "${json[@]}" -d '{"value":"/w==","encoding":"base64"}'
expect 200 GET /v1/keys/a%2Fb%20c
grep -q '"encoding":"base64"' "$work/body" || { echo "FAIL: binary body $(cat "$work/body")"; failures=$((failures + 1)); }
expect 204 DELETE /v1/keys/new
expect 404 DELETE /v1/keys/new
expect 200 POST /v1/batch "${json[@]}" \
    -d '{"ops":[{"op":"set","key":"b","value":"1"},{"op":"get","key":"b"},{"op":"delete","key":"b"}]}'
expect 200 GET '/v1/keys?cursor=0&count=10&match=*'
expect 200 GET /v1/info
expect 200 GET /metrics
expect 200 GET /openapi.json
expect 400 PUT /v1/keys/k "${json[@]}" -d 'not json'
expect 405 PATCH /v1/keys/k
expect 404 GET /nowhere
expect 413 PUT /v1/keys/k "${json[@]}" --data-binary "@/dev/stdin" <<<"$(head -c 1100000 /dev/zero | tr '\0' 'x')"
# Keep-alive: several URLs on one connection (curl reuses it; -v shows "Re-using").
curl -sS -v -o /dev/null "$base/v1/health" -o /dev/null "$base/v1/keys/greeting" 2>"$work/curl-v"
if grep -qi 're-us' "$work/curl-v"; then echo "ok   keep-alive (curl re-used the connection)"; else
    echo "FAIL keep-alive: curl did not re-use the connection"; failures=$((failures + 1)); fi
if [ "$failures" -ne 0 ]; then
    echo "$failures curl checks failed"
    exit 1
fi

venv="target/schemathesis-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
"$venv/bin/schemathesis" --version
# Run from the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
root="$PWD"
(cd "$work" && "$root/$venv/bin/schemathesis" --config-file "$root/.ci/schemathesis.toml" \
    run "$base/openapi.json" --checks all --max-examples "$EXAMPLES" --seed 1)
echo "cerializer interop: ok"
