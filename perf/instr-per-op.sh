#!/usr/bin/env bash
# User-space instructions of one server process (all its threads) under callgrind while
# redis-benchmark runs one test. Prints the total instruction count of the run.
#   perf/instr-per-op.sh piccolo|redis get|set REQUESTS PIPELINE
# Per request: run it with two request counts and divide the difference by the difference in
# requests, so start-up and shutdown cancel out, e.g.
#   a=$(perf/instr-per-op.sh piccolo get 20000 16); b=$(perf/instr-per-op.sh piccolo get 60000 16)
#   echo $(( (b - a) / 40000 ))
# A first version of issue 6's instr-per-op.sh: it needs valgrind, redis-server, redis-tools and
# a release build of piccolo-server (cargo build --release), and installs nothing yet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
server=$1 test=$2 n=$3 p=$4 port=7411
out="${TMPDIR:-/tmp}/callgrind.$server.$test.$n.$p"
rm -f "$out"
if [ "$server" = piccolo ]; then
  valgrind --tool=callgrind --callgrind-out-file=$out "$root/target/release/piccolo-server" --addr 127.0.0.1:$port 2>/dev/null &
else
  valgrind --tool=callgrind --callgrind-out-file=$out redis-server --port $port --save '' --appendonly no 2>/dev/null >/dev/null &
fi
for i in $(seq 1 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$test" = get ]; then redis-benchmark -p $port -t set -n 20000 -r 1000 -d 32 -c 50 -P 16 -q >/dev/null; fi
redis-benchmark -p $port -t $test -n $n -r 1000 -d 32 -c 50 -P $p -q >/dev/null
redis-cli -p $port shutdown nosave >/dev/null 2>&1 || redis-cli -p $port shutdown >/dev/null 2>&1 || true
for i in $(seq 1 100); do [ -s "$out" ] && grep -q '^totals:\|^summary:' "$out" && break; sleep 0.2; done
sleep 1
grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}'
