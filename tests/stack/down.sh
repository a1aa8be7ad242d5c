#!/usr/bin/env bash
# Stops what tests/stack/up.sh started (the services it found running stay up).
set -euo pipefail
cd "$(dirname "$0")/../.."
for pidfile in .stack/*.pid; do
  [ -e "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" && echo "    stopped $(basename "$pidfile" .pid) (pid $pid)"
  fi
  rm -f "$pidfile"
done
