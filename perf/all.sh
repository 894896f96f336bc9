#!/usr/bin/env bash
# Runs every perf script, then refreshes docs/PERFORMANCE.md's measured tables from
# perf/results/*.md in one go. Each script installs what it needs.
#
#   perf/all.sh                 # everything (about an hour on the 2-core VM)
#   perf/all.sh --quick         # shorter runs where a script has a quick mode
#   perf/all.sh --refresh-only  # only copy perf/results/*.md into docs/PERFORMANCE.md
#
# docs/PERFORMANCE.md keeps each table between `<!-- perf:NAME -->` and `<!-- /perf:NAME -->`
# (NAME = iai, instr-per-op, memory, stat, flame, vs-redis, queues); the text between the marks
# is replaced by perf/results/NAME.md without its title line. Marks that are missing are added
# at the end, under "Measured tables (perf/all.sh)". Wall-clock figures (vs-redis, queues) need
# a quiet machine; instruction counts do not.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

mode=full
case "${1:-}" in
    "") ;;
    --quick) mode=quick ;;
    --refresh-only) mode=refresh ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "all.sh: unknown argument $1" >&2; exit 2 ;;
esac

failed=()
run() { # NAME COMMAND...: runs one script, records a failure without stopping the others
    local name=$1
    shift
    printf '\n==== %s: %s (%(%H:%M:%S)T)\n' "$name" "$*" -1
    "$@" || failed+=("$name")
}

if [ "$mode" != refresh ]; then
    run iai perf/iai/gate.sh
    if [ "$mode" = quick ]; then
        run instr-per-op perf/instr-per-op.sh --short 10000 --long 40000
        run memory perf/memory.sh --keys 200000
        run stat perf/stat.sh
        run flame perf/flame.sh get
        run vs-redis perf/vs-redis.sh --quick
        run queues perf/compare-queues.sh --quick
    else
        run instr-per-op perf/instr-per-op.sh --spins
        run memory perf/memory.sh
        run stat perf/stat.sh
        run flame perf/flame.sh get
        run vs-redis perf/vs-redis.sh
        run queues perf/compare-queues.sh
    fi
fi

python3 - "$root/docs/PERFORMANCE.md" "$results" <<'PY'
import pathlib, re, sys
doc, results = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
text = doc.read_text()
names = ["iai", "instr-per-op", "memory", "stat", "flame", "vs-redis", "queues"]
for name in names:
    path = results / f"{name}.md"
    if not path.exists():
        continue
    body = path.read_text().split("\n", 1)[1].strip("\n")
    if name in ("iai", "instr-per-op", "memory", "stat", "flame"):
        body += f"\n\n![{name}](../perf/results/{name}.svg)"
    block = f"<!-- perf:{name} -->\n{body}\n<!-- /perf:{name} -->"
    pattern = re.compile(rf"<!-- perf:{re.escape(name)} -->.*?<!-- /perf:{re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        if "## Measured tables (perf/all.sh)" not in text:
            text = text.rstrip("\n") + "\n\n## Measured tables (perf/all.sh)\n"
        text = text.rstrip("\n") + f"\n\n### {name}\n\n{block}\n"
    print(f"docs/PERFORMANCE.md: {name} refreshed")
doc.write_text(text)
PY

if [ "${#failed[@]}" -gt 0 ]; then
    echo "all.sh: these failed: ${failed[*]}" >&2
    exit 1
fi
