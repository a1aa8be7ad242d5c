#!/usr/bin/env bash
# Scans every log the suite's function binaries wrote (.stack/lambda-*.log, run
# at RUST_LOG=debug by tests/src/lambda.rs) and the suite's own output for secrets:
# the local stack's secret values, private keys, and Authorization headers.
# Usage: tests/scan_logs.sh [extra log file ...]; exits 1 naming each finding.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a
# shellcheck disable=SC1091
source .stack/env
set +a
needles=("PRIVATE KEY" "Bearer ya29" "authorization: Bearer")
# Secret values long enough not to occur by chance (moto's "test" is not one).
for v in "${PUSHER_SECRET:-}"; do
  [ "${#v}" -ge 8 ] && needles+=("$v")
done
# The password of any connection URL in the environment, if it has one.
for url in "${DATABASE_URL:-}" "${REDIS_URL:-}"; do
  pw=$(printf '%s' "$url" | sed -n 's#^[a-z]*://[^:/@]*:\([^@]*\)@.*#\1#p')
  [ "${#pw}" -ge 8 ] && needles+=("$pw")
done
shopt -s nullglob
files=(.stack/lambda-*.log "$@")
lines=0
found=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  lines=$((lines + $(wc -l <"$f")))
  for n in "${needles[@]}"; do
    if grep -qiF -- "$n" "$f"; then
      echo "secret found in $f: a line contains ${n:0:4}... (grep -iF it)" >&2
      found=1
    fi
  done
done
echo "log scan: ${#needles[@]} secret patterns, ${#files[@]} files, $lines lines: $([ $found = 0 ] && echo clean || echo FOUND)"
exit $found
