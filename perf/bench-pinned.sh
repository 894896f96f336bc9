#!/usr/bin/env bash
# piccolo-bench vs redis-benchmark with the server pinned to CPU 0 and the load generator to CPU 1,
# so the generator's own CPU cost cannot set the pace. GET, -r 100000 -d 32 -c 50, 300k requests.
# Prints one line per round (throughput of each tool and piccolo-bench/redis-benchmark); quote medians.
#
#   perf/bench-pinned.sh
#
# Installs redis-tools with apt-get if redis-benchmark is missing (needs root). Needs 2+ CPUs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v redis-benchmark >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null
fi
(cd "$root" && cargo build --quiet --release --bin piccolo-server --bin piccolo-bench)
srv=$root/target/release/piccolo-server
pb=$root/target/release/piccolo-bench
port=$((7600 + RANDOM % 300))
taskset -c 0 "$srv" --addr "127.0.0.1:$port" --pin off 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for i in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.05; done
taskset -c 1 $pb --port $port --connections 50 --ratio 1:0 --key-pattern sequential --keyspace 100000 --requests 100000 -q >/dev/null
for P in 16 1; do
 n=300000; [ $P = 1 ] && n=100000
 for round in 1 2 3; do
  rb=$(taskset -c 1 redis-benchmark -p $port -t get -n $n -r 100000 -d 32 -c 50 -P $P --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
  pbr=$(taskset -c 1 $pb --port $port --connections 50 --pipeline $P --batch --ratio 0:1 --keyspace 100000 --requests $n --json -q | python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["throughput_rps"])')
  pbt=$(taskset -c 1 $pb --port $port --connections 50 --pipeline $P --ratio 0:1 --keyspace 100000 --requests $n --json -q | python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["throughput_rps"])')
  echo "P=$P round=$round redis-benchmark=$rb piccolo-bench-batch=$pbr ratio=$(python3 -c "print('%.2f' % ($pbr/$rb))") piccolo-bench-topup=$pbt ratio=$(python3 -c "print('%.2f' % ($pbt/$rb))")"
 done
done
kill "$pid"; wait "$pid" 2>/dev/null || true
