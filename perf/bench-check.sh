#!/usr/bin/env bash
# piccolo-bench checked against redis-benchmark: one release piccolo-server, the same GET load
# from both tools (-t get -n N -r 100000 -d 32 -c 50, -P 16 and -P 1), alternating which goes
# first, several rounds. Prints the medians and the piccolo-bench/redis-benchmark throughput
# ratio, and (when piccolo-bench supports it) Cap'n Proto against RESP on the same server.
# Writes perf/results/bench-check.md (table) and bench-check.csv (every run); with
# --connections N other than 50, bench-check-cN.md and .csv.
#
#   perf/bench-check.sh                 # 3 rounds of -n 300000
#   perf/bench-check.sh --rounds 5 --requests 1000000
#   perf/bench-check.sh --connections 2 # -c 2 (and --threads 2 for the thread-per-connection rows)
#   perf/bench-check.sh --quick         # 1 round of -n 50000: a smoke test
#   nice -n -10 perf/bench-check.sh     # on a shared machine: server and clients ahead of others
#
# The server listens on a port the kernel picks (a fixed port may belong to another server).
#
# The keyspace is filled first (100,000 SETs of 32 bytes, keys key:000000000000..099999, the
# same bytes redis-benchmark's -r 100000 uses), so every GET of both tools hits.
# Installs redis-tools with apt-get if redis-benchmark is missing (needs root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

rounds=3
requests=300000
connections=50
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --quick) rounds=1; requests=50000; shift ;;
        -h|--help) sed -n 2,19p "$0"; exit 0 ;;
        *) echo "bench-check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if ! command -v redis-benchmark >/dev/null; then
    echo "installing redis-tools" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null
fi

cargo build --release --bin piccolo-server --bin piccolo-bench >&2
server_bin="$root/target/release/piccolo-server"
bench_bin="$root/target/release/piccolo-bench"
out_dir="$root/perf/results"
mkdir -p "$out_dir"
suffix=""
[ "$connections" != 50 ] && suffix="-c$connections"
csv="$out_dir/bench-check$suffix.csv"
md="$out_dir/bench-check$suffix.md"
server_pid=""
server_log="$(mktemp)"
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -f "$server_log"
}
trap cleanup EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# Port 0: the kernel picks a free port, and the server logs it (a fixed port may be taken by
# another server, which the tools would then measure instead).
"$server_bin" --addr 127.0.0.1:0 2>"$server_log" &
server_pid=$!
port=""
for _ in $(seq 1 200); do
    port="$(sed -n 's/.* listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$server_log" | head -1)"
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "piccolo-server did not start: $(cat "$server_log")" >&2; exit 1; }
echo "piccolo-server (pid $server_pid) on port $port" >&2

protocols="resp"
if "$bench_bin" -q -p "$port" --protocol capnp -n 1 -c 1 --ratio 0:1 >/dev/null 2>&1; then
    protocols="resp capnp"
else
    echo "piccolo-bench has no --protocol capnp yet: RESP only" >&2
fi

"$bench_bin" -q -p "$port" --ratio 1:0 --key-pattern sequential -n 100000 -r 100000 -d 32 \
    -c 50 -P 16 >/dev/null

echo "tool,protocol,mode,round,pipeline,rps,p50_ms,p99_ms,client_cpu_us_per_request" > "$csv"
cpu_file="$(mktemp)"

client_cpu_us() { # CPU seconds (user + system) of the last client, per request, in microseconds
    awk -v n="$requests" '{ printf "%.2f", ($1 + $2) * 1e6 / n }' "$cpu_file"
}

run_redis_benchmark() { # pipeline round
    local line
    line="$(/usr/bin/time -f "%U %S" -o "$cpu_file" redis-benchmark -p "$port" -t get -n "$requests" -r 100000 -d 32 -c "$connections" -P "$1" --csv \
        2>/dev/null | grep '^"GET"')"
    # "GET","rps","avg","min","p50","p95","p99","max"
    echo "$line" | tr -d '"' | awk -F, -v round="$2" -v p="$1" -v cpu="$(client_cpu_us)" \
        '{ printf "redis-benchmark,resp,batch,%s,%s,%s,%s,%s,%s\n", round, p, $2, $5, $7, cpu }' >> "$csv"
}

run_piccolo_bench() { # protocol mode pipeline round
    local result batch=""
    case "$1/$2" in
        resp/batch) batch="--batch" ;;
        resp/batch-threads) batch="--batch --threads $connections" ;;
    esac
    result="$(/usr/bin/time -f "%U %S" -o "$cpu_file" "$bench_bin" -q -p "$port" --protocol "$1" \
        -n "$requests" -r 100000 -d 32 -c "$connections" -P "$3" --ratio 0:1 $batch --json)"
    echo "$result" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["errors"] == 0, r
l = r["latency_us"]
print("piccolo-bench,%s,%s,%s,%s,%.2f,%.3f,%.3f,%s" % (sys.argv[1], sys.argv[2], sys.argv[4],
      sys.argv[3], r["throughput_rps"], l["p50"] / 1000, l["p99"] / 1000, sys.argv[5]))' \
        "$1" "$2" "$3" "$4" "$(client_cpu_us)" >> "$csv"
}

run_piccolo_variants() { # pipeline round
    run_piccolo_bench resp topup "$1" "$2"
    # With -P 1 both RESP modes send the same way.
    [ "$1" -gt 1 ] && run_piccolo_bench resp batch "$1" "$2"
    for protocol in $protocols; do
        if [ "$protocol" = capnp ]; then
            # The same shape as capnp (a thread per connection, batches), for capnp vs RESP.
            run_piccolo_bench resp batch-threads "$1" "$2"
            run_piccolo_bench capnp batch-threads "$1" "$2"
        fi
    done
    return 0
}

for pipeline in 16 1; do
    for round in $(seq 1 "$rounds"); do
        echo "pipeline $pipeline, round $round" >&2
        if [ $((round % 2)) -eq 1 ]; then
            run_redis_benchmark "$pipeline" "$round"
            run_piccolo_variants "$pipeline" "$round"
        else
            run_piccolo_variants "$pipeline" "$round"
            run_redis_benchmark "$pipeline" "$round"
        fi
    done
done

rm -f "$cpu_file"
python3 - "$csv" "$md" "$requests" "$rounds" "$connections" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import csv, statistics, sys, datetime
rows = list(csv.DictReader(open(sys.argv[1])))
requests, rounds = sys.argv[3], sys.argv[4]
def med(tool, protocol, mode, pipeline, field):
    values = [float(r[field]) for r in rows
              if (r["tool"], r["protocol"], r["mode"], r["pipeline"])
              == (tool, protocol, mode, pipeline)]
    return statistics.median(values) if values else None
lines = [
    "# piccolo-bench against redis-benchmark (perf/bench-check.sh)", "",
    f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC. One release piccolo-server (default flags), "
    f"GET only, -n {requests} -r 100000 -d 32 -c {sys.argv[5]}, keyspace filled first (all hits); "
    f"{rounds} rounds alternating which tool goes first; medians. RESP: both tools one thread "
    f"(piccolo-bench polls its connections with mio); capnp: piccolo-bench runs a thread per "
    f"connection (piccolo::client is blocking). Mode: topup = refill the pipeline after every "
    f"read (memtier), batch = send the next P only when all P answers are in (redis-benchmark), "
    f"batch-threads = batch with a thread per connection (what capnp mode does). "
    f"Load average before {sys.argv[6]}, after {sys.argv[7]} (2 cores).", "",
    "| pipeline | tool | protocol | mode | req/s | p50 ms | p99 ms | client CPU us/request | client cores busy | req/s vs redis-benchmark |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
for pipeline in ["16", "1"]:
    base = med("redis-benchmark", "resp", "batch", pipeline, "rps")
    for tool, protocol, mode in [("redis-benchmark", "resp", "batch"),
                                 ("piccolo-bench", "resp", "topup"),
                                 ("piccolo-bench", "resp", "batch"),
                                 ("piccolo-bench", "resp", "batch-threads"),
                                 ("piccolo-bench", "capnp", "batch-threads")]:
        rps = med(tool, protocol, mode, pipeline, "rps")
        if rps is None:
            continue
        m = lambda field: med(tool, protocol, mode, pipeline, field)
        lines.append(f"| {pipeline} | {tool} | {protocol} | {mode} | {rps:,.0f} | "
                     f"{m('p50_ms'):.3f} | {m('p99_ms'):.3f} | "
                     f"{m('client_cpu_us_per_request'):.1f} | "
                     f"{rps * m('client_cpu_us_per_request') / 1e6:.2f} | {rps / base:.2f} |")
lines += ["", "client cores busy = req/s x client CPU per request: near 1 (or near the share the "
          "scheduler gives a busy machine) means the load generator, not the server, set the pace."]
text = "\n".join(lines) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
