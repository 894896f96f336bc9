#!/usr/bin/env bash
# CI check: regenerates the Cap'n Proto code into a temporary directory and fails (exit 1) if it
# differs from the checked-in schema/piccolo_capnp.rs or schema/peer_capnp.rs. Fix a failure with
# schema/generate.sh.
set -euo pipefail

schema_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp_dir="$(mktemp -d)"
trap 'rm -rf "$tmp_dir"' EXIT

"$schema_dir/generate.sh" "$tmp_dir" >/dev/null
# The header line naming the capnp binary's version is ignored: distributions ship different
# compiler versions that generate the same code.
for name in piccolo peer; do
    if ! diff -u -I '^// capnp binary version:' "$schema_dir/${name}_capnp.rs" "$tmp_dir/${name}_capnp.rs"; then
        echo "check-fresh.sh: schema/${name}_capnp.rs is stale; run schema/generate.sh and commit" >&2
        exit 1
    fi
    echo "schema/${name}_capnp.rs is fresh"
done
