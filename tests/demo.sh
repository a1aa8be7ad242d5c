#!/usr/bin/env bash
# The main job, locally: start the local stack, build the function binaries,
# then run the whole flow through them (tests/src/bin/demo.rs).
# --segment: the account's warehouse comes from Segment.com raw tables through
# the Segment models (docs/segment-source.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> local stack"
bash tests/stack/up.sh
echo "==> function binaries"
cargo build --quiet --workspace --bins
echo "==> demo"
exec cargo run --quiet -p segments-tests --bin demo -- "$@"
