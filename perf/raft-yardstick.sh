#!/usr/bin/env bash
# Instructions per committed entry (and per ReadIndex read) of Piccolo's Raft core against
# tikv/raft-rs 0.7, on the same in-memory 3-node workloads, both counted by callgrind.
#
#   perf/raft-yardstick.sh            # build perf/raft-yardstick (release), run, print, write
#                                     # perf/results/raft-yardstick.md
#
# The workloads (perf/raft-yardstick/src/main.rs; the same as benches/iai_raft.rs): 64 entries
# of 32 bytes proposed one at a time, 10 batches of 64, 64 reads. Setup (nodes, election,
# warm-up) is outside the count: callgrind starts with collection off and counts only inside
# the `measured_*` function (--toggle-collect). Each count is the median of three runs
# (callgrind counts are deterministic; the runs guard against a flaky build or environment).
# Counts cover the work of all three nodes: stepping, readying, applying, and the in-memory
# storage each implementation is used with (Piccolo: none, the core keeps its log; raft-rs:
# its MemStorage).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
need_apt valgrind valgrind

crate="$root/perf/raft-yardstick"
target_dir="$root/target/raft-yardstick"
echo "== building perf/raft-yardstick (release; compiles raft-rs the first time)" >&2
cargo build --release --locked --quiet --manifest-path "$crate/Cargo.toml" --target-dir "$target_dir"
bin="$target_dir/release/piccolo-raft-yardstick"

count() {
    # Ir inside measured_* for one implementation and workload.
    local implementation=$1 workload=$2 out
    out="$(mktemp)"
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_*' \
        --callgrind-out-file=/dev/null "$bin" "$implementation" "$workload" 2>"$out" >/dev/null || {
        cat "$out" >&2
        rm -f "$out"
        return 1
    }
    awk '/Collected :/ { print $4 }' "$out"
    rm -f "$out"
}

median3() {
    printf '%s\n' "$@" | sort -n | sed -n 2p
}

declare -A ops=([single]=64 [batch]=640 [read]=64)
declare -A what=([single]="per entry, proposed one at a time" [batch]="per entry, batches of 64" [read]="per ReadIndex read")
table="| workload | Piccolo Ir/op | raft-rs 0.7 Ir/op | Piccolo / raft-rs |
|---|---:|---:|---:|"
printf '%-36s %14s %14s %10s\n' "workload" "Piccolo Ir/op" "raft-rs Ir/op" "ratio"
for workload in single batch read; do
    ours=() theirs=()
    for _ in 1 2 3; do
        ours+=("$(count piccolo "$workload")")
        theirs+=("$(count raft-rs "$workload")")
    done
    a="$(median3 "${ours[@]}")" b="$(median3 "${theirs[@]}")"
    n=${ops[$workload]}
    line="$(python3 -c "a, b, n = $a, $b, $n; print(f'{a / n:.0f} {b / n:.0f} {a / b:.2f}')")"
    read -r per_ours per_theirs ratio <<<"$line"
    printf '%-36s %14s %14s %10s\n' "${what[$workload]}" "$per_ours" "$per_theirs" "$ratio"
    table+="
| ${what[$workload]} | $per_ours | $per_theirs | $ratio |"
done
{
    echo "# Raft core: instructions per operation, Piccolo against tikv/raft-rs 0.7"
    echo
    echo "\`perf/raft-yardstick.sh\`; $(machine_line); $(rustc --version); $(valgrind --version)."
    echo "3 nodes in one process, perfect network, writes durable at once; 32-byte entries;"
    echo "counts cover all three nodes (median of 3 callgrind runs)."
    echo
    echo "$table"
} >"$results/raft-yardstick.md"
echo "wrote $results/raft-yardstick.md" >&2
