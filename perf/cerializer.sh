#!/usr/bin/env bash
# What the JSON hop costs: GET and PUT of random keys (10,000 keys, 32-byte values) through the
# Cerializer with `wrk`, beside the same load sent directly over Cap'n Proto by piccolo-bench
# (`--protocol capnp --pipeline 1`: one blocking client per connection, one request in flight
# each, as wrk keeps one per connection). Keys are piccolo-bench's: `key:` and 12 digits. Release builds; server and gateway started here on free ports
# and stopped by pid. Prints one line per run; quote medians over the rounds.
#
#   perf/cerializer.sh [--rounds 3] [--conns 16] [--seconds 10] [--gateway-workers 4]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=3 conns=16 seconds=10 gw_workers=4
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --conns) conns="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --gateway-workers) gw_workers="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

cargo build --quiet --release --bin piccolo-server --bin piccolo-cerializer --bin piccolo-bench
bin=target/release
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

wait_addr() {
    for _ in $(seq 200); do
        local addr
        addr="$(sed -n 's/.* listening on \([^ ]*\).*/\1/p' "$1" 2>/dev/null | head -n1)"
        if [ -n "$addr" ]; then echo "$addr"; return 0; fi
        sleep 0.1
    done
    cat "$1" >&2
    return 1
}

"$bin/piccolo-server" --addr 127.0.0.1:0 --no-pin 2>"$work/server.log" &
pids+=("$!")
store="$(wait_addr "$work/server.log")"
"$bin/piccolo-cerializer" --listen 127.0.0.1:0 --server "$store" --workers "$gw_workers" \
    2>"$work/gateway.log" &
pids+=("$!")
gateway="$(wait_addr "$work/gateway.log")"
head -n1 "$work/server.log"
head -n1 "$work/gateway.log"
# bench ARGS...: piccolo-bench against the store over Cap'n Proto, JSON summary on stdout.
bench() {
    "$bin/piccolo-bench" --host "${store%:*}" --port "${store##*:}" --protocol capnp \
        --keyspace 10000 --value-size 32 --json -q "$@"
}
bench --connections 1 --ratio 1:0 --key-pattern sequential --requests 10000 >/dev/null

cat >"$work/get.lua" <<'EOF'
math.randomseed(os.time())
request = function()
    return wrk.format("GET", "/v1/keys/" .. string.format("key:%012d", math.random(0, 9999)))
end
EOF
cat >"$work/put.lua" <<'EOF'
math.randomseed(os.time())
local body = '{"value":"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"}'
local headers = { ["Content-Type"] = "application/json" }
request = function()
    return wrk.format("PUT", "/v1/keys/" .. string.format("key:%012d", math.random(0, 9999)), headers, body)
end
-- Any answer but 200 is counted and reported (wrk's "Non-2xx" line).
EOF

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server_pid="${pids[0]}" gateway_pid="${pids[1]}"
hz="$(getconf CLK_TCK)"

# wrk_line LABEL SCRIPT: one wrk run, summarised on one line, with the CPU time the gateway and
# the server used per request (less sensitive to a shared machine than req/s).
wrk_line() {
    local out gw0 sv0 gw1 sv1
    gw0="$(cpu_ticks "$gateway_pid")" sv0="$(cpu_ticks "$server_pid")"
    out="$(wrk -t2 -c"$conns" -d"${seconds}s" --latency -s "$2" "http://$gateway")"
    gw1="$(cpu_ticks "$gateway_pid")" sv1="$(cpu_ticks "$server_pid")"
    local requests
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    local cpu
    cpu="$(awk -v g=$((gw1 - gw0)) -v s=$((sv1 - sv0)) -v n="$requests" -v hz="$hz" \
        'BEGIN {printf "gateway_cpu_us/req=%.1f server_cpu_us/req=%.1f", g / hz * 1e6 / n, s / hz * 1e6 / n}')"
    local rps p50 p90 p99 errors
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
    p90="$(awk '$1=="90%" {print $2}' <<<"$out")"
    p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
    errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)"
    echo "http $1 conns=$conns seconds=$seconds req/s=$rps p50=$p50 p90=$p90 p99=$p99 $cpu ${errors:-errors=none}"
}

# capnp_line MODE: the same load directly over Cap'n Proto, with the server's CPU per request.
capnp_line() {
    local sv0 sv1 out requests
    sv0="$(cpu_ticks "$server_pid")"
    local ratio="0:1"
    [ "$1" = set ] && ratio="1:0"
    out="$(bench --connections "$conns" --pipeline 1 --ratio "$ratio" --duration "${seconds}s")"
    sv1="$(cpu_ticks "$server_pid")"
    requests="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])' <<<"$out")"
    out="$(python3 -c 'import json,sys; j=json.load(sys.stdin); l=j["latency_us"]
print("capnp %s conns=%s req/s=%.0f p50=%.0fus p90=%.0fus p99=%.0fus errors=%d" % (sys.argv[1], sys.argv[2], j["throughput_rps"], l["p50"], l["p90"], l["p99"], j["errors"]))' "$1" "$conns" <<<"$out")"
    echo "$out $(awk -v s=$((sv1 - sv0)) -v n="$requests" -v hz="$hz" \
        'BEGIN {printf "server_cpu_us/req=%.1f", s / hz * 1e6 / n}')"
}

for round in $(seq "$rounds"); do
    echo "# round $round ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    wrk_line get "$work/get.lua"
    capnp_line get
    wrk_line put "$work/put.lua"
    capnp_line set
done
