#!/usr/bin/env bash
# The main job, locally: start the local stack, then build, refresh and report
# on the example segments of docs/examples/ against the BigQuery emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/stack/up.sh
set -a
# shellcheck disable=SC1091
source .stack/env
set +a
cargo run --quiet -p segments-tests --bin demo
