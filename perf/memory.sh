#!/usr/bin/env bash
# Bytes per key of the server process for 1M keys with 32-byte values: piccolo-server against
# redis-server and memcached loaded with the same keys (key:000000000000 .. key:000000999999).
# bytes per key = (RSS after loading - RSS of the idle server) / keys, RSS from /proc/PID/status.
#
#   perf/memory.sh                # 1,000,000 keys
#   perf/memory.sh --keys 200000
#
# The loader is a small Python script that pipelines the writes (RESP SET for Piccolo and Redis,
# the text protocol's `set ... noreply` for memcached) and then checks the count (DBSIZE,
# `stats` curr_items). Installs redis-server, redis-tools and memcached with apt-get if missing.
# Prints a table and writes perf/results/memory.{md,svg}.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

keys=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) keys=$2; shift 2 ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "memory.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
need_apt redis-server redis-server
need_apt redis-cli redis-tools
need_apt memcached memcached
build_server

port="$(free_port)"
server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

load() { # PROTOCOL PORT KEYS: writes the keys, prints how many the server says it holds
    python3 - "$@" <<'PY'
import socket, sys
protocol, port, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
value = b"v" * 32
sock = socket.create_connection(("127.0.0.1", port))
batch = 1000
def read_until(count_marker, count):
    # Reads until `count` occurrences of the reply marker have arrived.
    seen, buf = 0, b""
    while seen < count:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed the connection")
        buf += chunk
        seen += chunk.count(count_marker)
    return buf
for start in range(0, keys, batch):
    end = min(keys, start + batch)
    if protocol == "resp":
        out = b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n" % (i, value)
                       for i in range(start, end))
        sock.sendall(out)
        read_until(b"+OK\r\n", end - start)
    else:
        out = b"".join(b"set key:%012d 0 0 32 noreply\r\n%s\r\n" % (i, value)
                       for i in range(start, end))
        sock.sendall(out)
if protocol == "resp":
    sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
    reply = read_until(b"\r\n", 1)
    print(int(reply[1:reply.index(b"\r\n")]))
else:
    sock.sendall(b"stats\r\n")
    reply = read_until(b"END\r\n", 1).decode()
    for line in reply.splitlines():
        if line.startswith("STAT curr_items "):
            print(int(line.split()[2]))
PY
}

declare -A idle loaded held
measure() { # NAME PROTOCOL COMMAND...
    local name=$1 protocol=$2
    shift 2
    "$@" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.5
    idle[$name]=$(rss_kib "$server_pid")
    held[$name]=$(load "$protocol" "$port" "$keys")
    sleep 1
    loaded[$name]=$(rss_kib "$server_pid")
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    [ "${held[$name]}" = "$keys" ] || { echo "$name holds ${held[$name]} keys, not $keys" >&2; exit 1; }
    printf '%-10s idle %8s KiB, loaded %8s KiB, %6.1f bytes/key\n' "$name" "${idle[$name]}" \
        "${loaded[$name]}" "$(python3 -c "print((${loaded[$name]} - ${idle[$name]}) * 1024 / $keys)")" >&2
}

measure piccolo resp "$piccolo_bin" --addr "127.0.0.1:$port"
measure redis resp redis-server --port "$port" --save '' --appendonly no
measure memcached text memcached -p "$port" -U 0 -m 4096 -l 127.0.0.1 -u "$(id -un)"

per_key() { python3 -c "print(f'{(${loaded[$1]} - ${idle[$1]}) * 1024 / $keys:.1f}')"; }
md="$results/memory.md"
{
    echo "# Memory per key: piccolo-server vs redis-server vs memcached"
    echo
    echo "\`perf/memory.sh\`; $(machine_line); $(redis-server --version | awk '{ print $1, $2, $3 }'), $(memcached -V)."
    echo "$keys keys \`key:\` + 12 digits (16 bytes), 32-byte values; RSS from /proc/PID/status;"
    echo "bytes per key = (RSS loaded - RSS idle) / keys. Redis: \`--save '' --appendonly no\`;"
    echo "memcached: \`-m 4096\` (its default 64 MiB would evict)."
    echo
    echo "| server | RSS idle KiB | RSS loaded KiB | bytes per key | vs Piccolo |"
    echo "|---|---:|---:|---:|---:|"
    for name in piccolo redis memcached; do
        echo "| $name | ${idle[$name]} | ${loaded[$name]} | **$(per_key "$name")** | $(python3 -c "print(f'{(${loaded[$name]} - ${idle[$name]}) / (${loaded[piccolo]} - ${idle[piccolo]}):.2f}x')") |"
    done
} >"$md"
for name in piccolo redis memcached; do printf '%s\t%s\n' "$name" "$(per_key "$name")"; done |
    bar_svg "$results/memory.svg" "Bytes per key, $keys keys of 32-byte values (RSS)" "B/key"
cat "$md"
