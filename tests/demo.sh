#!/usr/bin/env bash
# The main job, locally: start the local stack, build the function binaries,
# then run the whole flow through them (tests/src/bin/demo.rs; with
# --warehouse postgres, tests/src/bin/demo_postgres.rs on a Postgres warehouse).
# --segment: the account's warehouse comes from Segment.com raw tables through
# the Segment models (docs/segment-source.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> local stack"
bash tests/stack/up.sh
echo "==> function binaries"
cargo build --quiet --workspace --bins
echo "==> demo"
# `--warehouse postgres`: the same functions on a Postgres warehouse, no emulator.
if [ "${1:-}" = "--warehouse" ] && [ "${2:-}" = "postgres" ]; then
    exec cargo run --quiet -p segments-tests --bin demo_postgres
fi
exec cargo run --quiet -p segments-tests --bin demo -- "$@"
