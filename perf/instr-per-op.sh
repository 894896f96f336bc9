#!/usr/bin/env bash
# User-space instructions per request of piccolo-server and redis-server under the same
# pipelined GET and SET load, both run under callgrind, counting every thread of the server.
# Start-up and shutdown cancel out: each figure is (Ir of a long run - Ir of a short run) /
# (requests of the long run - requests of the short run).
#
#   perf/instr-per-op.sh                        # -n 20000 and 120000, -P 16, one client
#   perf/instr-per-op.sh --short 10000 --long 60000 --pipeline 16 --clients 1
#   perf/instr-per-op.sh --spins                # also Piccolo with --worker-spins 0
#   LOAD="redis-benchmark" perf/instr-per-op.sh # the load generator (takes redis-benchmark's
#                                               # -p -t -n -r -d -c -P -q options)
#
# Each run starts the server fresh under `valgrind --tool=callgrind` (no cache simulation),
# loads 100,000 keys of 32 bytes with SET (the same in both runs, so it cancels too), runs the
# measured test, and stops the server with SIGTERM; callgrind's total covers all threads.
# Installs valgrind, redis-server and redis-tools with apt-get if missing. Prints a table and
# writes perf/results/instr-per-op.{md,csv,svg}.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

short=20000 long=120000 pipeline=16 clients=1 spins=0
while [ $# -gt 0 ]; do
    case "$1" in
        --short) short=$2; shift 2 ;;
        --long) long=$2; shift 2 ;;
        --pipeline) pipeline=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --spins) spins=1; shift ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) echo "instr-per-op.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
LOAD="${LOAD:-redis-benchmark}"
keys=100000 port="$(free_port)"

need_apt valgrind valgrind
need_apt redis-server redis-server
need_apt redis-benchmark redis-tools
build_server

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# run SERVER TEST REQUESTS -> total Ir of the server process (all threads)
run() {
    local server=$1 test=$2 n=$3 out="$work/callgrind.out" total
    rm -f "$out"
    port="$(free_port)"
    case "$server" in
        piccolo) valgrind --tool=callgrind --callgrind-out-file="$out" \
                     "$piccolo_bin" --addr "127.0.0.1:$port" 2>"$work/server.log" & ;;
        piccolo-spins0) valgrind --tool=callgrind --callgrind-out-file="$out" \
                     "$piccolo_bin" --addr "127.0.0.1:$port" --worker-spins 0 2>"$work/server.log" & ;;
        redis) valgrind --tool=callgrind --callgrind-out-file="$out" \
                   redis-server --port "$port" --save '' --appendonly no >"$work/server.log" 2>&1 & ;;
    esac
    server_pid=$!
    wait_port "$port"
    $LOAD -p "$port" -t set -n "$keys" -r "$keys" -d 32 -c "$clients" -P "$pipeline" -q >/dev/null
    $LOAD -p "$port" -t "$test" -n "$n" -r "$keys" -d 32 -c "$clients" -P "$pipeline" -q >/dev/null
    if ! kill -TERM "$server_pid" 2>/dev/null; then
        echo "instr-per-op.sh: $server stopped before the end of the load:" >&2
        tail -5 "$work/server.log" >&2
        exit 1
    fi
    wait "$server_pid" || true
    server_pid=""
    total="$(awk '/^(summary|totals):/ { print $2; exit }' "$out")"
    [ -n "$total" ] || { echo "instr-per-op.sh: no callgrind total in $out" >&2; exit 1; }
    echo "$total"
}

servers=(piccolo redis)
[ "$spins" = 1 ] && servers=(piccolo piccolo-spins0 redis)
csv="$results/instr-per-op.csv"
echo "server,test,pipeline,clients,short_n,short_ir,long_n,long_ir,ir_per_request" >"$csv"
declare -A per
for test in get set; do
    for server in "${servers[@]}"; do
        a=$(run "$server" "$test" "$short")
        b=$(run "$server" "$test" "$long")
        per[$server.$test]=$(( (b - a) / (long - short) ))
        echo "$server,$test,$pipeline,$clients,$short,$a,$long,$b,${per[$server.$test]}" >>"$csv"
        printf '%-16s %-4s %12s instructions per request\n' "$server" "$test" "${per[$server.$test]}" >&2
    done
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
md="$results/instr-per-op.md"
{
    echo "# Instructions per request: piccolo-server vs redis-server"
    echo
    echo "\`perf/instr-per-op.sh\`; $(machine_line); $(valgrind --version); $(redis-server --version | awk '{ print $1, $2, $3 }')."
    echo "Load: \`$LOAD -t TEST -r $keys -d 32 -c $clients -P $pipeline\` after $keys SETs;"
    echo "per request = (Ir of -n $long - Ir of -n $short) / $((long - short)), every thread of the"
    echo "server counted (callgrind totals). Target: Piccolo at most 0.5x Redis."
    echo
    echo "| test | Piccolo | Redis | Piccolo / Redis |"
    echo "|---|---:|---:|---:|"
    for test in get set; do
        echo "| ${test^^} | ${per[piccolo.$test]} | ${per[redis.$test]} | **$(ratio "${per[piccolo.$test]}" "${per[redis.$test]}")** |"
    done
    if [ "$spins" = 1 ]; then
        echo
        echo "With \`--worker-spins 0\` (the worker parks at once instead of spinning 200 times):"
        echo "GET ${per[piccolo-spins0.get]}, SET ${per[piccolo-spins0.set]} instructions per request."
    fi
} >"$md"
for test in get set; do
    for server in "${servers[@]}"; do
        printf '%s %s\t%s\n' "$server" "${test^^}" "${per[$server.$test]}"
    done
done | bar_svg "$results/instr-per-op.svg" "User-space instructions per request (-P $pipeline, all threads)" "instr"
cat "$md"
