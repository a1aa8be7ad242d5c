#!/usr/bin/env bash
# The project's test command (README, .ci/run): starts the local stand-ins for
# every cloud service, then runs formatting, lints and every test against them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "local stack (Postgres, Redis, SQS/S3, BigQuery emulator, Pusher capture)"
bash tests/stack/up.sh
set -a
# shellcheck disable=SC1091
source .stack/env
set +a

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "function binaries (the end-to-end test runs them behind the Lambda runtime API)"
cargo build --workspace --bins --locked

step "tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The function binaries run at RUST_LOG=debug (tests/src/lambda.rs), so the
# log scan below sees everything they can print.
cargo test --workspace --locked 2>&1 | tee "$log"

step "log scan: no secret in any function log or test output"
bash tests/scan_logs.sh "$log"

if [ -x tests/deploy/check.sh ]; then
  step "template checks (cfn-lint, sam validate)"
  bash tests/deploy/check.sh
fi

# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
