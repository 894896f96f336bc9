#!/usr/bin/env bash
# Where piccolo-server spends its time under a pipelined GET load (redis-benchmark -P 16).
# Where `perf record` works: a flame graph (perf record -g, folded and drawn with inferno,
# installed with cargo if missing) at perf/results/flame.svg. Otherwise (no hardware counters
# or no perf, as on this VM): a callgrind profile of the same load, all threads, and its
# annotated hot spots: functions by exclusive and inclusive instructions in
# perf/results/flame.md, the top ones drawn as bars in perf/results/flame.svg.
#
#   perf/flame.sh                 # GET
#   perf/flame.sh set             # SET
#   perf/flame.sh get --callgrind # skip perf even where it works
#   LOAD=redis-benchmark perf/flame.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

test=get force_callgrind=0
for arg in "$@"; do
    case "$arg" in
        get|set) test=$arg ;;
        --callgrind) force_callgrind=1 ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "flame.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
LOAD="${LOAD:-redis-benchmark}"
keys=100000 port="$(free_port)"
need_apt redis-benchmark redis-tools
build_server
server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
load() { $LOAD -p "$port" -t "$1" -n "$2" -r "$keys" -d 32 -c 1 -P 16 -q >/dev/null; }

perf_works() {
    command -v perf >/dev/null 2>&1 || need_apt perf linux-perf >/dev/null 2>&1 || return 1
    perf record -o /dev/null -e cycles -- true >/dev/null 2>&1
}

md="$results/flame.md"
if [ "$force_callgrind" = 0 ] && perf_works; then
    command -v inferno-flamegraph >/dev/null 2>&1 || cargo install --locked inferno >&2
    "$piccolo_bin" --addr "127.0.0.1:$port" 2>/dev/null &
    server_pid=$!
    wait_port "$port"
    load set "$keys"
    data="$(mktemp)"
    perf record -g -F 999 -p "$server_pid" -o "$data" 2>/dev/null &
    perf_pid=$!
    sleep 0.2
    load "$test" 2000000
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf script -i "$data" | inferno-collapse-perf | inferno-flamegraph >"$results/flame.svg"
    rm -f "$data"
    {
        echo "# piccolo-server flame graph ($test, perf record)"
        echo
        echo "\`perf/flame.sh\`; $(machine_line). \`perf record -g -F 999\` of the server while"
        echo "\`$LOAD -t $test -n 2000000 -r $keys -d 32 -c 1 -P 16\` runs: [flame.svg](flame.svg)."
    } >"$md"
else
    if [ "$force_callgrind" = 1 ]; then
        why="callgrind asked for with \`--callgrind\`"
    else
        why="\`perf record\` does not work on this machine"
    fi
    echo "flame.sh: using callgrind (instruction counts, all threads): $why" >&2
    need_apt valgrind valgrind
    out="$(mktemp)"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$piccolo_bin" --addr "127.0.0.1:$port" 2>/dev/null &
    server_pid=$!
    wait_port "$port"
    load set "$keys"
    load "$test" 200000
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    callgrind_annotate --auto=no --threshold=99 "$out" >"$out.exclusive"
    callgrind_annotate --auto=no --inclusive=yes --threshold=99 "$out" >"$out.inclusive"
    python3 - "$out.exclusive" "$out.inclusive" "$md" "$results/flame.bars" "$test" "$LOAD" "$(machine_line)" "$why" <<'PY'
import re, sys
excl, incl, md, bars, test, load, machine, why = sys.argv[1:9]
def rows(path, limit):
    # callgrind_annotate splits a function by the source file of its inlined parts; sum them.
    total, sums = None, {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?\(?\s*([\d.]+)?%?\)?\s*(.*)", line)
        if line.strip().endswith("PROGRAM TOTALS"):
            total = int(line.split()[0].replace(",", ""))
            continue
        if total and m and ":" in m.group(3):
            ir = int(m.group(1).replace(",", ""))
            name = m.group(3).split(":", 1)[1].split(" [")[0].strip()
            name = re.sub(r"::h[0-9a-f]{16}$", "", name)
            sums[name] = sums.get(name, 0) + ir
    out = sorted(((ir, name) for name, ir in sums.items()), reverse=True)[:limit]
    return total, out
total, top = rows(excl, 30)
_, top_incl = rows(incl, 30)
with open(md, "w") as f:
    f.write(f"# piccolo-server hot spots ({test.upper()}, callgrind)\n\n")
    f.write(f"`perf/flame.sh`; {machine}. {why[0].upper() + why[1:]}, so this is a "
            f"callgrind profile (instructions, every thread) of the server while `{load} -t {test} "
            f"-n 200000 -r 100000 -d 32 -c 1 -P 16` runs, after 100,000 SETs. "
            f"Total: {total:,} instructions.\n\n")
    f.write("## Exclusive (instructions in the function itself)\n\n| share | instructions | function |\n|---:|---:|---|\n")
    for ir, name in top:
        f.write(f"| {100 * ir / total:.1f}% | {ir:,} | `{name}` |\n")
    f.write("\n## Inclusive (with callees)\n\n| share | instructions | function |\n|---:|---:|---|\n")
    for ir, name in top_incl:
        f.write(f"| {100 * ir / total:.1f}% | {ir:,} | `{name}` |\n")
with open(bars, "w") as f:
    for ir, name in top[:15]:
        short = name if len(name) <= 40 else "..." + name[-37:]
        f.write(f"{short}\t{100 * ir / total:.2f}\n")
PY
    bar_svg "$results/flame.svg" "piccolo-server ${test^^}: exclusive instructions by function (callgrind)" "%" \
        <"$results/flame.bars"
    rm -f "$results/flame.bars" "$out" "$out.exclusive" "$out.inclusive"
fi
cat "$md"
