#!/usr/bin/env bash
# Breaks the Raft core on purpose, one shortcut at a time, and counts the seeds in which the
# simulator catches it: the table "What broke" of docs/raft.md.
#
#   perf/raft-mutations.sh              # 2,000 seeds per mutation
#   perf/raft-mutations.sh --seeds 500
#
# Each mutation is a one-line change applied to a copy of the committed tree (git archive HEAD,
# under target/raft-mutations/), built as a release piccolo-sim in its own target directory and
# run over seeds 0..N. The working tree is never touched. Prints, per mutation, the seeds with a
# violation and which invariants they broke; writes perf/results/raft-mutations.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

seeds=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        -h|--help) sed -n 2,11p "$0"; exit 0 ;;
        *) echo "raft-mutations.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

work="$root/target/raft-mutations"
copy="$work/tree"
rm -rf "$copy"
mkdir -p "$copy"
git archive HEAD | tar -x -C "$copy"

# name | file | exact text | replacement
mutations=(
"vote sent before it is durable|src/raft/node.rs|self.send_after_persist(
                    from,
                    Body::VoteResponse {
                        pre: false,
                        granted: true,|self.send_now(
                    from,
                    Body::VoteResponse {
                        pre: false,
                        granted: true,"
"reads before the no-op commits|src/raft/node.rs|        if self.committed_in_term {
            self.register_read(ctx);|        if true {
            self.register_read(ctx);"
"leader counts its unwritten log|src/raft/node.rs|            let matched = if voter == self.id {
                self.log.persisted()|            let matched = if voter == self.id {
                self.log.last_index()"
"commit entries of older terms by count (figure 8)|src/raft/node.rs|if candidate > self.log.committed() && self.log.term(candidate) == Some(self.term) {|if candidate > self.log.committed() {"
)

table="| mutation | seeds with a violation | invariants broken |
|---|---:|---|"
for mutation in "${mutations[@]}"; do
    IFS='|' read -r -d '' name file from to <<<"$mutation" || true
    to="${to%$'\n'}"
    git show "HEAD:$file" >"$copy/$file"
    python3 - "$copy/$file" "$from" "$to" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"mutation text found {text.count(old)} times in {path}")
open(path, "w").write(text.replace(old, new))
PY
    echo "== $name: building" >&2
    cargo build --release --quiet --bin piccolo-sim --manifest-path "$copy/Cargo.toml" \
        --target-dir "$work/target"
    out="$work/out.txt"
    "$work/target/release/piccolo-sim" --seeds "0..$seeds" --jobs 2 >"$out" 2>&1 || true
    git show "HEAD:$file" >"$copy/$file"
    found="$(tail -1 "$out" | awk '{print $3}')"
    kinds="$(grep -E '^seed [0-9]+: (VIOLATION|PANIC)' "$out" | sed -E 's/^seed [0-9]+: VIOLATION ([a-z ,-]+) at .*/\1/; s/^seed [0-9]+: PANIC.*/panic/' | sort | uniq -c | sort -rn | awk '{c=$1; $1=""; printf "%s%s x%s", sep, substr($0,2), c; sep=", "}')"
    printf '%-52s %6s of %s   %s\n' "$name" "${found:-?}" "$seeds" "$kinds"
    table+="
| $name | ${found:-?} of $seeds | $kinds |"
done
{
    echo "# The simulator against deliberately broken cores"
    echo
    echo "\`perf/raft-mutations.sh --seeds $seeds\` at $(git rev-parse --short HEAD); $(machine_line)."
    echo
    echo "$table"
} >"$results/raft-mutations.md"
echo "wrote $results/raft-mutations.md" >&2
