# Shared helpers of the perf/ scripts. Source it: `. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`.
# Sets $root (the repository) and $results (perf/results), and provides:
#   need_apt CMD PACKAGE...   install PACKAGE(s) with apt-get if command CMD is missing
#   ensure_iai_runner         iai-callgrind-runner of exactly the version in Cargo.lock
#   build_server              cargo build --release of piccolo-server; sets $piccolo_bin
#   free_port                 prints a TCP port nobody listens on now (the machine is shared:
#                             fixed ports collided with other people's servers)
#   wait_port PORT            until something answers PING there (redis-cli), or fail
#   machine_line              one line naming the machine, kernel and date, for the reports
#   bar_svg OUT TITLE UNIT < "label<TAB>value" lines   a plain horizontal bar chart

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
results="$root/perf/results"
mkdir -p "$results"

need_apt() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    echo "installing $* (for $cmd)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "$@" >/dev/null
    command -v "$cmd" >/dev/null 2>&1 || { echo "$cmd still missing after installing $*" >&2; return 1; }
}

# The iai-callgrind library and its runner binary must be the very same version, or the
# benchmarks refuse to run. The version comes from Cargo.lock (pinned with `=` in Cargo.toml).
iai_version() {
    awk '/^name = "iai-callgrind"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.lock"
}

ensure_iai_runner() {
    need_apt valgrind valgrind
    export PATH="$HOME/.cargo/bin:$PATH"
    local want have
    want="$(iai_version)"
    [ -n "$want" ] || { echo "iai-callgrind is not in Cargo.lock" >&2; return 1; }
    # The runner has no --version of its own; cargo knows what it installed.
    have="$(cargo install --list 2>/dev/null | awk '$1 == "iai-callgrind-runner" { sub(/^v/, "", $2); sub(/:$/, "", $2); print $2 }')"
    command -v iai-callgrind-runner >/dev/null 2>&1 || have=""
    if [ "$have" != "$want" ]; then
        echo "installing iai-callgrind-runner $want (found: ${have:-none})" >&2
        cargo install --locked --force --version "$want" iai-callgrind-runner >&2
    fi
}

build_server() {
    (cd "$root" && cargo build --release --bin piccolo-server >&2)
    piccolo_bin="$root/target/release/piccolo-server"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1
    for _ in $(seq 1 300); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "nothing answers on port $port" >&2
    return 1
}

machine_line() {
    local cpu
    cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    printf '%s, %s cores, kernel %s, %s' "${cpu:-unknown CPU}" "$(nproc)" "$(uname -r)" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')"
}

bar_svg() {
    local data
    data="$(mktemp)"
    cat >"$data"
    python3 - "$@" "$data" <<'PY'
import sys, html
out, title, unit, data = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = []
for line in open(data):
    line = line.rstrip("\n")
    if not line:
        continue
    label, value = line.rsplit("\t", 1)
    rows.append((label, float(value)))
top = max([v for _, v in rows] + [1e-9])
label_w, bar_w, row_h = 260, 420, 22
height = 40 + row_h * len(rows) + 10
parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 120}" '
         f'height="{height}" font-family="sans-serif" font-size="12">',
         f'<text x="8" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>']
for i, (label, value) in enumerate(rows):
    y = 34 + i * row_h
    w = max(1, round(bar_w * value / top))
    color = "#c0504d" if label.lower().startswith(("redis", "memcached")) else "#4f81bd"
    parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>')
    parts.append(f'<rect x="{label_w}" y="{y}" width="{w}" height="{row_h - 6}" fill="{color}"/>')
    shown = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    parts.append(f'<text x="{label_w + w + 6}" y="{y + 14}">{shown} {html.escape(unit)}</text>')
parts.append("</svg>")
open(out, "w").write("\n".join(parts) + "\n")
PY
    rm -f "$data"
}
