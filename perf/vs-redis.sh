#!/usr/bin/env bash
# piccolo-server against redis-server with the same redis-benchmark load, one server at a time,
# alternating, several rounds. Prints throughput, p50/p99 latency and server CPU seconds (user +
# system, from /proc/PID/stat) per million requests, each as a Piccolo/Redis ratio of medians,
# and writes perf/results/vs-redis.md and perf/results/vs-redis.csv (every run).
#
#   perf/vs-redis.sh                  # 3 rounds of -n 1000000, -P 1 and -P 16
#   perf/vs-redis.sh --rounds 5
#   perf/vs-redis.sh --variants       # then one extra round per --queue variant (Piccolo only)
#   perf/vs-redis.sh --quick          # -n 100000, 1 round: a smoke test
#
# Installs redis-server and redis-tools with apt-get if they are missing (needs root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

rounds=3
requests=1000000
variants=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --variants) variants=1; shift ;;
        --quick) rounds=1; requests=100000; shift ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "vs-redis.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "installing redis-server and redis-tools" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi

cargo build --release --bin piccolo-server >&2
piccolo_bin="$root/target/release/piccolo-server"
out_dir="$root/perf/results"
mkdir -p "$out_dir"
csv="$out_dir/vs-redis.csv"
echo "server,variant,round,pipeline,test,rps,p50_ms,p99_ms,cpu_s,requests" > "$csv"

port=6390
ticks_per_second="$(getconf CLK_TCK)"
server_pid=""

cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

cpu_ticks() { # utime + stime of a pid, in clock ticks (fields 14 and 15 of /proc/PID/stat)
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

wait_for_port() {
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "vs-redis.sh: server on port $port did not answer" >&2
    return 1
}

start_server() { # $1 = piccolo|redis, $2 = queue variant (piccolo)
    if [ "$1" = redis ]; then
        redis-server --port "$port" --save '' --appendonly no --daemonize no \
            --logfile /dev/null >/dev/null 2>&1 &
    else
        "$piccolo_bin" --addr "127.0.0.1:$port" --queue "$2" 2>/dev/null &
    fi
    server_pid=$!
    wait_for_port
}

stop_server() {
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

run_one() { # $1 server, $2 variant, $3 round, $4 pipeline
    start_server "$1" "$2"
    for test in set get; do
        local before after line
        before="$(cpu_ticks "$server_pid")"
        line="$(redis-benchmark -p "$port" -t "$test" -n "$requests" -r 100000 -d 32 -c 50 \
            -P "$4" --csv | tail -1)"
        after="$(cpu_ticks "$server_pid")"
        # "SET","rps","avg","min","p50","p95","p99","max"
        echo "$line" | tr -d '"' | awk -F, -v s="$1" -v v="$2" -v r="$3" -v p="$4" \
            -v cpu="$(( after - before ))" -v hz="$ticks_per_second" -v n="$requests" \
            '{ printf "%s,%s,%s,%s,%s,%s,%s,%s,%.3f,%s\n", s, v, r, p, $1, $2, $5, $7, cpu / hz, n }' \
            >> "$csv"
        printf '  %-7s %-8s round %s -P %-2s %-3s %s\n' "$1" "$2" "$3" "$4" "$test" \
            "$(tail -1 "$csv" | cut -d, -f6-9)" >&2
    done
    stop_server
}

for round in $(seq 1 "$rounds"); do
    for pipeline in 1 16; do
        # Alternate which server goes first, so drift does not favour one.
        if [ $(( round % 2 )) -eq 1 ]; then order="piccolo redis"; else order="redis piccolo"; fi
        for server in $order; do
            if [ "$server" = redis ]; then variant=-; else variant=batched; fi
            run_one "$server" "$variant" "$round" "$pipeline"
        done
    done
done

if [ "$variants" -eq 1 ]; then
    for variant in lamport cached batched mutex; do
        for pipeline in 1 16; do run_one piccolo "$variant" v "$pipeline"; done
    done
fi

python3 - "$csv" "$out_dir/vs-redis.md" "$requests" "$rounds" <<'PY'
import csv, statistics, sys, datetime, platform, os
rows = list(csv.DictReader(open(sys.argv[1])))
requests, rounds = int(sys.argv[3]), sys.argv[4]
def med(server, pipeline, test, key, variant=None, main=True):
    if variant is None:
        variant = "batched" if server == "piccolo" else "-"
    vals = [float(r[key]) for r in rows if r["server"] == server and r["pipeline"] == pipeline
            and r["test"] == test and r["variant"] == variant and (r["round"] != "v") == main]
    return statistics.median(vals) if vals else float("nan")
cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = ["# piccolo-server vs redis-server", "",
         f"`perf/vs-redis.sh`, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; {cpu_model}, "
         f"{os.cpu_count()} cores, kernel {platform.release()}. Each run: `redis-benchmark -t TEST "
         f"-n {requests} -r 100000 -d 32 -c 50 -P N --csv` against a freshly started server "
         f"(redis-server with `--save '' --appendonly no`; piccolo-server with its defaults). "
         f"Median of {rounds} rounds; servers alternate which goes first. CPU = server user + system "
         "seconds during the run, per million requests.", "",
         "| -P | test | Piccolo req/s | Redis req/s | ratio | p50 ms P/R | p99 ms P/R | CPU s/M P/R | CPU ratio |",
         "|---|---|---:|---:|---:|---|---|---|---:|"]
summary = []
for p in ("1", "16"):
    for t in ("SET", "GET"):
        pr, rr = med("piccolo", p, t, "rps"), med("redis", p, t, "rps")
        pc = med("piccolo", p, t, "cpu_s") / requests * 1e6
        rc = med("redis", p, t, "cpu_s") / requests * 1e6
        lines.append(f"| {p} | {t} | {pr:,.0f} | {rr:,.0f} | **{pr/rr:.2f}** | "
                     f"{med('piccolo', p, t, 'p50_ms'):.3f} / {med('redis', p, t, 'p50_ms'):.3f} | "
                     f"{med('piccolo', p, t, 'p99_ms'):.3f} / {med('redis', p, t, 'p99_ms'):.3f} | "
                     f"{pc:.2f} / {rc:.2f} | **{pc/rc:.2f}** |")
        summary.append(f"-P {p:>2} {t}: throughput {pr/rr:.2f}x Redis (target >= 1.0), CPU/request {pc/rc:.2f}x (target <= 1.0)")
variant_rows = [r for r in rows if r["round"] == "v"]
if variant_rows:
    lines += ["", "Piccolo per `--queue` variant (one run each):", "",
              "| --queue | -P | SET req/s | GET req/s | CPU s/M SET | CPU s/M GET |", "|---|---|---:|---:|---:|---:|"]
    for v in ("lamport", "cached", "batched", "mutex"):
        for p in ("1", "16"):
            get = lambda t, k: med("piccolo", p, t, k, variant=v, main=False)
            lines.append(f"| {v} | {p} | {get('SET','rps'):,.0f} | {get('GET','rps'):,.0f} | "
                         f"{get('SET','cpu_s')/requests*1e6:.2f} | {get('GET','cpu_s')/requests*1e6:.2f} |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print()
print("\n".join(summary))
PY
echo "wrote $out_dir/vs-redis.md and $csv" >&2
