#!/usr/bin/env bash
# Cold start of each release function binary under the Lambda runtime API:
# time from process start to the first handled event, and peak memory (max RSS).
# Needs the local stack (tests/stack/up.sh) and `cargo build --release --workspace --bins`.
# Usage: tests/bench/cold_start.sh [runs per function, default 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
export PATH="$PWD/.venv/bin:$PATH"
PORT=9791
source tests/bench/runtime_api.sh
printf '%-22s %14s %14s %12s\n' function "median ms" "max ms" "peak RSS MB"
for f in "${FUNCTIONS[@]}"; do
  times=(); rss=0
  for i in $(seq 1 "$RUNS"); do
    # The invocation waits until the function asks for work.
    cargo-lambda lambda invoke "$f" --invoke-address 127.0.0.1 --invoke-port $PORT --data-ascii "${EVENT[$f]}" >/dev/null 2>&1 &
    INV=$!
    sleep 0.3
    start=$(date +%s%N)
    AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$PORT/.rt/$f AWS_LAMBDA_FUNCTION_NAME=$f AWS_LAMBDA_FUNCTION_VERSION=1 \
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 /usr/bin/time -f "%M" -o /tmp/cold-rss-$f \
      target/release/$f >/dev/null 2>&1 &
    FN=$!
    wait $INV || true
    end=$(date +%s%N)
    pkill -P $FN 2>/dev/null || true; kill $FN 2>/dev/null || true; wait $FN 2>/dev/null || true
    times+=($(( (end - start) / 1000000 )))
    r=$(cat /tmp/cold-rss-$f 2>/dev/null | tail -1); r=${r:-0}; [ "$r" -gt "$rss" ] 2>/dev/null && rss=$r
  done
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  printf '%-22s %14s %14s %12s\n' "$f" "${sorted[$(( RUNS / 2 ))]}" "${sorted[-1]}" "$(( rss / 1024 ))"
done
