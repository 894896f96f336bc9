#!/usr/bin/env bash
# Hardware counters of piccolo-server under load, per request: cycles, instructions, cache
# references and misses, L1d and LLC load misses (`perf stat -p PID` while redis-benchmark runs
# pipelined GET and SET). Where the machine has no counters (perf prints `<not supported>`, as
# on this VM), it says so and falls back to cachegrind's simulated counts, labelled simulated:
# instructions, L1 (I1 + D1) and last-level misses, per request, taken as the difference between a
# long and a short run so start-up cancels out.
#
#   perf/stat.sh                          # -n 200000 (perf) or 20000/100000 (cachegrind), -P 16
#   perf/stat.sh --simulated              # skip perf, use cachegrind
#   LOAD=redis-benchmark perf/stat.sh     # the load generator (redis-benchmark's options)
#
# Installs valgrind, redis-tools (and tries linux-perf) with apt-get if missing. Prints a table
# and writes perf/results/stat.{md,svg}.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

force_simulated=0 pipeline=16 clients=1 keys=100000
case "${1:-}" in
    --simulated) force_simulated=1 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    "") ;;
    *) echo "stat.sh: unknown argument $1" >&2; exit 2 ;;
esac
LOAD="${LOAD:-redis-benchmark}"
need_apt redis-benchmark redis-tools
build_server
port="$(free_port)"
server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

load() { # TEST N
    $LOAD -p "$port" -t "$1" -n "$2" -r "$keys" -d 32 -c "$clients" -P "$pipeline" -q >/dev/null
}

counters_work() {
    command -v perf >/dev/null 2>&1 || need_apt perf linux-perf >/dev/null 2>&1 || return 1
    local out
    out="$(perf stat -x, -e cycles,instructions true 2>&1 || true)"
    ! grep -q "not supported\|not counted\|Permission\|Error" <<<"$out" && grep -q instructions <<<"$out"
}

md="$results/stat.md"
if [ "$force_simulated" = 0 ] && counters_work; then
    n=200000
    events=cycles,instructions,cache-references,cache-misses,L1-dcache-load-misses,LLC-load-misses
    {
        echo "# piccolo-server hardware counters per request (perf stat)"
        echo
        echo "\`perf/stat.sh\`; $(machine_line). Load: \`$LOAD -t TEST -n $n -r $keys -d 32 -c $clients -P $pipeline\`."
        echo
        echo "| test | $(tr ',' '|' <<<"$events") |"
        echo "|---|$(sed 's/[^,]*/---:/g; s/,/|/g' <<<"$events")|"
    } >"$md"
    bars=""
    for test in get set; do
        "$piccolo_bin" --addr "127.0.0.1:$port" 2>/dev/null &
        server_pid=$!
        wait_port "$port"
        load set "$keys"
        perf stat -x, -e "$events" -p "$server_pid" -o "$results/stat.$test.csv" &
        perf_pid=$!
        sleep 0.2
        load "$test" "$n"
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        row=$(python3 - "$results/stat.$test.csv" "$n" "$events" <<'PY'
import sys
path, n, events = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
values = {}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[2] in events:
        values[parts[2]] = parts[0]
cells = []
for event in events:
    raw = values.get(event, "<not counted>")
    cells.append(f"{float(raw) / n:,.1f}" if raw.replace(".", "").isdigit() else raw)
print("|".join(cells))
PY
)
        echo "| ${test^^} | $row |" >>"$md"
        bars+="${test^^} instructions"$'\t'"$(cut -d'|' -f2 <<<"$row" | tr -d ,)"$'\n'
    done
    printf '%s' "$bars" | bar_svg "$results/stat.svg" "piccolo-server: instructions per request (perf stat)" "instr"
else
    echo "stat.sh: no hardware counters here (perf stat says <not supported> or perf is missing);" >&2
    echo "stat.sh: falling back to cachegrind's SIMULATED counts" >&2
    need_apt valgrind valgrind
    short=20000 long=100000
    work="$(mktemp -d)"
    run() { # TEST N -> cachegrind summary line (Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw)
        local out="$work/cachegrind.out"
        rm -f "$out"
        port="$(free_port)"
        valgrind --tool=cachegrind --cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 \
            --LL=8388608,16,64 --cachegrind-out-file="$out" \
            "$piccolo_bin" --addr "127.0.0.1:$port" 2>/dev/null &
        server_pid=$!
        wait_port "$port"
        load set "$keys"
        load "$1" "$2"
        kill -TERM "$server_pid" || { echo "stat.sh: the server stopped early" >&2; exit 1; }
        wait "$server_pid" || true
        server_pid=""
        awk '/^summary:/ { $1 = ""; print; exit }' "$out" | grep . ||
            { echo "stat.sh: no cachegrind summary" >&2; exit 1; }
    }
    {
        echo "# piccolo-server counters per request: SIMULATED (cachegrind)"
        echo
        echo "\`perf/stat.sh\`; $(machine_line). **This machine has no hardware counters** (\`perf stat\`"
        echo "prints \`<not supported>\`), so these are cachegrind's simulated counts: I1/D1 32 KiB 8-way,"
        echo "LL 8 MiB 16-way, 64-byte lines, all threads of the server. Per request = (long run - short"
        echo "run) / $((long - short)) requests. Load: \`$LOAD -t TEST -r $keys -d 32 -c $clients -P $pipeline\`."
        echo "Simulated misses are a model (no prefetcher, no other processes), not a measurement."
        echo
        echo "| test | instructions | L1i misses | L1d misses (read + write) | LL misses (i + d) | data refs |"
        echo "|---|---:|---:|---:|---:|---:|"
    } >"$md"
    bars=""
    for test in get set; do
        read -r -a a <<<"$(run "$test" "$short")"
        read -r -a b <<<"$(run "$test" "$long")"
        row=$(python3 - "${a[*]}" "${b[*]}" "$((long - short))" <<'PY'
import sys
a, b, n = [int(x) for x in sys.argv[1].split()], [int(x) for x in sys.argv[2].split()], int(sys.argv[3])
d = [(y - x) / n for x, y in zip(a, b)]
ir, i1mr, ilmr, dr, d1mr, dlmr, dw, d1mw, dlmw = d
print(f"{ir:,.0f}|{i1mr:,.1f}|{d1mr + d1mw:,.1f}|{ilmr + dlmr + dlmw:,.2f}|{dr + dw:,.0f}")
PY
)
        echo "| ${test^^} | $row |" >>"$md"
        bars+="${test^^} instructions (simulated)"$'\t'"$(cut -d'|' -f1 <<<"$row" | tr -d ,)"$'\n'
        bars+="${test^^} L1 misses x100 (simulated)"$'\t'"$(python3 -c "r='$row'.replace(',','').split('|'); print((float(r[1]) + float(r[2])) * 100)")"$'\n'
    done
    rm -rf "$work"
    printf '%s' "$bars" | bar_svg "$results/stat.svg" "piccolo-server per request, SIMULATED (cachegrind)" ""
fi
cat "$md"
