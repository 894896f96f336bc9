#!/usr/bin/env bash
# The instruction-count gate: runs the iai-callgrind benchmarks (benches/iai_*.rs) and compares
# each one's instruction count (callgrind's Ir) with the committed baseline,
# perf/baselines/iai.tsv. Fails when any count is more than 5% above its baseline, when a
# benchmark has no baseline or a baseline has no benchmark, or when the baseline was recorded
# with another compiler, valgrind, iai-callgrind or CPU feature set (counts are only comparable
# for the same toolchain; see docs/performance-guards.md).
#
#   perf/iai/gate.sh                  # run and check (what .ci/run does)
#   perf/iai/gate.sh --update         # run and rewrite the baseline; commit it saying why
#   perf/iai/gate.sh --check-only     # compare the last run's results without running again
#   IAI_GATE_LIMIT_PCT=5              # the allowed rise, percent
#
# Installs valgrind (apt-get) and iai-callgrind-runner (cargo install, exact version of the
# library in Cargo.lock) if they are missing. Writes perf/results/iai.md and perf/results/iai.svg.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$root"

mode=check
case "${1:-}" in
    "") ;;
    --update) mode=update ;;
    --check-only) mode=check-only ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "gate.sh: unknown argument $1" >&2; exit 2 ;;
esac

benches=(iai_proto iai_queues iai_store iai_request iai_persist iai_raft)
baseline="$root/perf/baselines/iai.tsv"
home="$root/target/iai-gate"
current="$home/current.tsv"

toolchain() {
    local rustc llvm valgrind cpu
    rustc="$(rustc -vV | awk '/^release:/ { print $2 }')"
    llvm="$(rustc -vV | awk '/^LLVM version:/ { print $3 }')"
    valgrind="$(valgrind --version)"
    # glibc picks memcpy/memcmp variants by CPU feature, so these flags change counts too.
    cpu="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx|avx2|bmi2|erms|fsrm' | sort | paste -sd+ -)"
    printf 'rustc %s, LLVM %s, %s, iai-callgrind %s, cpu %s' "$rustc" "$llvm" "$valgrind" \
        "$(iai_version)" "${cpu:-none}"
}

if [ "$mode" != check-only ]; then
    ensure_iai_runner
    rm -rf "$home"
    mkdir -p "$home"
    for bench in "${benches[@]}"; do
        echo "== cargo bench --bench $bench" >&2
        IAI_CALLGRIND_HOME="$home" IAI_CALLGRIND_SAVE_SUMMARY=json \
            cargo bench --bench "$bench" >"$home/$bench.log" 2>&1 || {
            tail -40 "$home/$bench.log" >&2
            echo "gate: cargo bench --bench $bench failed (log: $home/$bench.log)" >&2
            exit 1
        }
    done
    # One row per benchmark: name, then the totals of every thread of it.
    python3 - "$home" "$current" "$(toolchain)" <<'PY'
import json, pathlib, sys
home, out, toolchain = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
fields = ["Ir", "L1hits", "LLhits", "RamHits", "EstimatedCycles", "D1mr", "DLmr"]
rows = []
for path in sorted(home.rglob("summary.json")):
    summary = json.loads(path.read_text())
    name = summary["module_path"] + "::" + (summary.get("id") or "")
    metrics = summary["profiles"][0]["summaries"]["total"]["summary"]["Callgrind"]
    values = []
    for field in fields:
        side = metrics[field]["metrics"]
        # "Both": [this run, the previous one]; "Left": this run only.
        value = side["Both"][0] if "Both" in side else side["Left"]
        values.append(str(value["Int"]))
    rows.append("\t".join([name] + values))
with open(out, "w") as f:
    f.write(f"# toolchain: {toolchain}\n")
    f.write("\t".join(["bench"] + fields) + "\n")
    f.write("\n".join(rows) + "\n")
print(f"{len(rows)} benchmarks measured", file=sys.stderr)
PY
fi

[ -s "$current" ] || { echo "gate: no results in $current (run without --check-only)" >&2; exit 1; }

if [ "$mode" = update ]; then
    {
        echo "# Instruction-count baseline of benches/iai_*.rs, checked by perf/iai/gate.sh (5% rule)."
        echo "# Recorded $(date -u '+%Y-%m-%d') on: $(machine_line | sed 's/, [0-9-]* [0-9:]* UTC$//')."
        echo "# Update only on purpose, in a commit that says why (docs/performance-guards.md)."
        cat "$current"
    } >"$baseline"
    echo "gate: baseline rewritten: $baseline" >&2
    echo "gate: commit it with a message that says why the counts moved" >&2
fi

[ -s "$baseline" ] || { echo "gate: no baseline at $baseline (perf/iai/gate.sh --update, then commit it)" >&2; exit 1; }

status=0
python3 - "$baseline" "$current" "${IAI_GATE_LIMIT_PCT:-5}" "$results" <<'PY' || status=$?
import re, sys
baseline_path, current_path, limit, results = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]

def load(path):
    toolchain, rows = None, {}
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("# toolchain: "):
            toolchain = line[len("# toolchain: "):]
        if not line or line.startswith("#") or line.startswith("bench\t"):
            continue
        name, *values = line.split("\t")
        rows[name] = [int(v) for v in values]
    return toolchain, rows

def ops(name):
    """Operations one benchmark runs, from its name: x1000 (store), 64 values (rings), or the
    number ending the id (get16: 16 pipelined requests, get1: one)."""
    if name.endswith("x1000"):
        return 1000
    if name.startswith("iai_queues::"):
        return 64
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else 1

base_tc, base = load(baseline_path)
cur_tc, cur = load(current_path)
failures = []
if base_tc != cur_tc:
    failures.append(f"toolchain differs: baseline '{base_tc}', this run '{cur_tc}'; counts are "
                    "not comparable: re-record the baseline (--update) in a commit that says so")
lines = ["| benchmark | Ir | Ir per op | baseline Ir | change | L1 hits | LL hits | RAM hits | est. cycles |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
print(f"{'benchmark':58} {'Ir':>10} {'baseline':>10} {'change':>8}  {'RAM hits':>8} {'est.cycles':>10}")
for name in sorted(set(base) | set(cur)):
    if name not in base:
        failures.append(f"{name}: no baseline (new benchmark? record it with --update)")
        continue
    if name not in cur:
        failures.append(f"{name}: in the baseline but not measured (renamed or removed?)")
        continue
    ir, l1, ll, ram, cycles = cur[name][:5]
    old = base[name][0]
    change = (ir - old) * 100.0 / old if old else 0.0
    mark = ""
    if change > limit:
        failures.append(f"{name}: {ir:,} instructions, {change:+.2f}% over the baseline {old:,} "
                        f"(limit +{limit:g}%)")
        mark = "  REGRESSED"
    elif change < -limit:
        mark = "  improved (update the baseline to keep the gain)"
    print(f"{name:58} {ir:>10,} {old:>10,} {change:>+7.2f}%  {ram:>8,} {cycles:>10,}{mark}")
    lines.append(f"| `{name}` | {ir:,} | {ir / ops(name):,.0f} | {old:,} | {change:+.2f}% | {l1:,} | {ll:,} | {ram:,} | {cycles:,} |")
with open(f"{results}/iai.md", "w") as f:
    f.write("# Instruction counts of the hot path (iai-callgrind)\n\n")
    f.write(f"`perf/iai/gate.sh`; {cur_tc}. Simulated caches: I1/D1 32 KiB 8-way, LL 8 MiB 16-way, "
            "64-byte lines. est. cycles = L1 hits + 5 x LL hits + 35 x RAM hits.\n\n")
    f.write("\n".join(lines) + "\n")
with open(f"{results}/iai.bars", "w") as f:
    for name in sorted(cur):
        f.write(f"{name.split('::', 1)[1]} /{ops(name)}\t{cur[name][0] / ops(name):.0f}\n")
if failures:
    print("\nGATE FAILED:", file=sys.stderr)
    for failure in failures:
        print("  " + failure, file=sys.stderr)
    sys.exit(1)
print(f"\ngate: {len(cur)} benchmarks within +{limit:g}% of the baseline")
PY
bar_svg "$results/iai.svg" "Instructions per operation (callgrind Ir / operations of the benchmark)" "Ir/op" <"$results/iai.bars"
rm -f "$results/iai.bars"
exit $status
