#!/usr/bin/env bash
# Compares piccolo's four SPSC queue variants with rtrb, crossbeam's ArrayQueue and std's
# sync_channel (benches/queues/), and writes the results under perf/results/:
#   queues.md   Markdown tables with the machine's description
#   queues.svg  bar chart: throughput and round trip per queue
#   queues.json every run's raw figures
#
# Usage: perf/compare-queues.sh [--runs N] [--quick]
# Extra arguments go to the bench (see `cargo bench --bench queues -- --help`).
# Needs nothing but cargo. Close other heavy processes first: the bench spins two cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo bench --bench queues -- --out perf/results "$@"

echo
echo "Results:"
for file in queues.md queues.svg queues.json; do
    echo "  $root/perf/results/$file"
done
