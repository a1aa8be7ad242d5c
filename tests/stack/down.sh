#!/usr/bin/env bash
# Stops what tests/stack/up.sh started, and nothing else: services it found
# already running stay up. Safe to run twice, or when nothing is running.
set -euo pipefail
cd "$(dirname "$0")/../.."
STACK=.stack

# What each pid file's process must be; a pid the system has since reused for
# another program is left alone.
program_of() {
  case $1 in
    moto) echo moto_server ;;
    bigquery) echo crucible ;;
    bigquery-async) echo crucible_async.py ;;
    pusher) echo pusher_capture.py ;;
    redis | redis-tls) echo redis-server ;;
    *) echo "" ;;
  esac
}

for pidfile in "$STACK"/*.pid; do
  [ -e "$pidfile" ] || continue
  name=$(basename "$pidfile" .pid)
  pid=$(cat "$pidfile")
  program=$(program_of "$name")
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  if [ -n "$program" ] && [ -n "$cmdline" ] && [[ $cmdline == *"$program"* ]]; then
    kill "$pid" 2>/dev/null || true
    # Bounded wait, so a following up.sh finds the port free.
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    echo "    stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
done

if [ -f "$STACK/postgres.started" ]; then
  version=$(cat "$STACK/postgres.started")
  pg_ctlcluster --skip-systemctl-redirect "$version" main stop && echo "    stopped PostgreSQL $version"
  rm -f "$STACK/postgres.started"
fi
