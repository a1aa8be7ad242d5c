#!/usr/bin/env bash
# The arm64 (Graviton) binaries the template deploys, built as `sam build`
# builds them (cargo lambda --release --arm64, zig as the cross linker), their
# sizes, and each run under qemu's user-mode emulation behind the Lambda
# runtime API until it has answered one event. Times under qemu say nothing
# about Graviton, so they are printed only as a sign of life.
# Needs the local stack (tests/stack/up.sh); installs the aarch64 Rust target
# (rustup), and qemu-user-static and libc6-arm64-cross (apt) when missing.
# Usage: tests/bench/arm64.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  [ "$(id -u)" = 0 ] || { echo "installing qemu-user-static and libc6-arm64-cross needs root" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null
fi

# cargo lambda finds zig through the venv's python (the ziglang package).
export PATH="$ROOT/.venv/bin:$PATH"
echo "==> cargo lambda build --release --arm64"
cargo-lambda lambda build --release --arm64 --quiet -p create-segment -p check-bigquery-job -p segment-cronjob -p report-with-segment -p segment-api

PORT=9792
source tests/bench/runtime_api.sh

printf '%-22s %12s %s\n' function "size MB" "(stripped, aarch64)"
for f in "${FUNCTIONS[@]}"; do
  bin=target/lambda/$f/bootstrap
  file "$bin" | grep -q "ARM aarch64" || { echo "$bin is not an aarch64 binary" >&2; exit 1; }
  printf '%-22s %12s\n' "$f" "$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { printf "%.1f", b / 1e6 }')"
done


# What each answer must contain: the handler ran on arm64 (the first two
# asked Postgres, over TLS, for an account that does not exist; the SQS ones
# reported the bad message as a batch-item failure).
declare -A EXPECT=(
  [create-segment]='account 00000000-0000-4000-8000-000000000000 does not exist'
  [check-bigquery-job]='batchItemFailures'
  [segment-cronjob]='batchItemFailures'
  [report-with-segment]='account 00000000-0000-4000-8000-000000000000 does not exist'
  [segment-api]='account 00000000-0000-4000-8000-000000000000 does not exist'
)
echo "==> each binary under qemu-aarch64, one event through the runtime API"
failed=0
for f in "${FUNCTIONS[@]}"; do
  out=$(mktemp)
  cargo-lambda lambda invoke "$f" --invoke-address 127.0.0.1 --invoke-port $PORT \
    --data-ascii "${EVENT[$f]}" >"$out" 2>&1 &
  INV=$!
  sleep 0.3
  start=$(date +%s%N)
  AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$PORT/.rt/$f AWS_LAMBDA_FUNCTION_NAME=$f \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
    qemu-aarch64-static -L /usr/aarch64-linux-gnu "target/lambda/$f/bootstrap" \
    >".stack/arm64-$f.log" 2>&1 &
  FN=$!
  wait $INV || true
  end=$(date +%s%N)
  kill $FN 2>/dev/null || true; wait $FN 2>/dev/null || true
  if grep -q -- "${EXPECT[$f]}" "$out"; then
    printf '    %-22s answered in %5d ms under qemu: %s\n' "$f" $(( (end - start) / 1000000 )) \
      "$(grep -o -- "${EXPECT[$f]}" "$out" | head -1)"
  else
    printf '    %-22s FAILED: %s (log: .stack/arm64-%s.log)\n' "$f" "$(head -c 300 "$out")" "$f"
    failed=1
  fi
  rm -f "$out"
done
exit $failed
