#!/usr/bin/env bash
# Regenerates schema/piccolo_capnp.rs from schema/piccolo.capnp and schema/peer_capnp.rs from
# schema/peer.capnp.
#
# Needs: the Cap'n Proto compiler on PATH (Debian/Ubuntu: `apt-get install -y capnproto`) and cargo.
# The generator is the small standalone crate in schema/gen (capnpc pinned to 0.27.0); it is not a
# workspace member, so the normal build never needs capnp installed.
#
# Usage: schema/generate.sh [OUT_DIR]   (default: schema/, i.e. update the checked-in file)
set -euo pipefail

schema_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(dirname "$schema_dir")"
out_dir="${1:-$schema_dir}"

if ! command -v capnp >/dev/null 2>&1; then
    echo "generate.sh: the capnp compiler is not on PATH (apt-get install -y capnproto)" >&2
    exit 2
fi

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
tmp_dir="$(mktemp -d)"
trap 'rm -rf "$tmp_dir"' EXIT

# Build under the root target dir (already git-ignored) so schema/gen stays clean.
cargo run --quiet --locked \
    --manifest-path "$schema_dir/gen/Cargo.toml" \
    --target-dir "$root_dir/target/schema-gen" \
    -- "$schema_dir" "$tmp_dir"

# capnpc writes <name>_capnp.rs; rustfmt them so the checked-in files read like the rest of the
# code and so freshness does not depend on the generator's whitespace.
for name in piccolo peer; do
    rustfmt --edition 2024 "$tmp_dir/${name}_capnp.rs"
    mv "$tmp_dir/${name}_capnp.rs" "$out_dir/${name}_capnp.rs"
    echo "wrote $out_dir/${name}_capnp.rs"
done
