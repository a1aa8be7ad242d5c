#!/usr/bin/env bash
# Starts the local stand-ins for every service the tests need, on 127.0.0.1 only:
#   Postgres :5432 and Redis :6379 (the machine's; started or installed if absent),
#   Redis with TLS only :6380 (certificate from a CA made in .stack/redis-tls),
#   moto :5055 (SQS, S3), the crucible BigQuery emulator :9050, the same emulator with
#   BigQuery's asynchronous jobs :9051 (crucible_async.py), a Pusher capture :5056.
# Idempotent: a service already answering is reused. Python tools live in .venv/,
# pinned by tests/stack/requirements.txt. Writes .stack/env for the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
STACK="$ROOT/.stack"
VENV="$ROOT/.venv"
mkdir -p "$STACK"

MOTO_PORT=${MOTO_PORT:-5055}
BQ_PORT=${BQ_PORT:-9050}
BQ_ASYNC_PORT=${BQ_ASYNC_PORT:-9051}
PUSHER_PORT=${PUSHER_PORT:-5056}

log() { printf '    %s\n' "$*"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "installing $1 needs root" >&2; exit 1; }; }
apt_install() {
  need_root "$*"
  if [ ! -f "$STACK/.apt-updated" ]; then apt-get update -qq && touch "$STACK/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Waits until a command succeeds (about 30 s at most).
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$what did not come up; see $STACK/*.log" >&2
  exit 1
}
http_ok() { curl -fs -o /dev/null --max-time 2 "$1"; }
command -v curl >/dev/null || apt_install curl

# --- Postgres -------------------------------------------------------------------
# A cluster this script installs gets trust auth on loopback (the tests connect
# as postgres without a password, as on the machine's own cluster).
trust_loopback() {
  local hba
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
}
pg_version() { ls /etc/postgresql | head -n1; }
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql
    trust_loopback
    # apt may have started the cluster before the trust lines existed.
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main reload >/dev/null 2>&1 || true
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
    # down.sh stops only what this script started.
    pg_version >"$STACK/postgres.started"
  fi
  wait_for "PostgreSQL" pg_isready -q -h 127.0.0.1 -p 5432
fi
# -w: never prompt for a password (CI has no stdin).
if ! psql -w -h 127.0.0.1 -U postgres -d test -c 'SELECT 1' >/dev/null 2>&1; then
  psql -w -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null 2>&1 \
    || su postgres -c "psql -c 'CREATE DATABASE test'" >/dev/null 2>&1 || true
fi
psql -w -h 127.0.0.1 -U postgres -d test -c 'SELECT 1' >/dev/null 2>&1 \
  || { echo "cannot connect to postgres://postgres@127.0.0.1:5432/test" >&2; exit 1; }
log "PostgreSQL ready on 127.0.0.1:5432 (database test)"

# --- Redis ----------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  if ! command -v redis-server >/dev/null; then
    log "installing Redis"
    apt_install redis-server
  fi
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  # Its pid file lets down.sh stop it again.
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log --pidfile "$STACK/redis.pid"
  wait_for "Redis" sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
fi
log "Redis ready on 127.0.0.1:6379"

# --- Redis over TLS ---------------------------------------------------------------
# A second Redis serving only TLS on :6380, for rediss:// (ElastiCache with
# in-transit encryption). Its certificate is signed by a CA made here, once:
# .stack/redis-tls/ca.pem is what REDIS_CA_FILE points the tests at.
REDIS_TLS_PORT=${REDIS_TLS_PORT:-6380}
TLS_DIR="$STACK/redis-tls"
if [ ! -s "$TLS_DIR/server.pem" ]; then
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=segments local test CA" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS_DIR/server.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 3650 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.pem" 2>/dev/null
  chmod 600 "$TLS_DIR"/*.key
fi
redis_tls() {
  redis-cli --tls --insecure -h 127.0.0.1 -p "$REDIS_TLS_PORT" "$@" 2>/dev/null
}
if ! redis_tls ping | grep -q PONG; then
  log "starting Redis with TLS"
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$REDIS_TLS_PORT" \
    --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
    --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --dir "$TLS_DIR" --logfile "$STACK/redis-tls.log" \
    --pidfile "$STACK/redis-tls.pid"
  wait_for "Redis with TLS" sh -c "redis-cli --tls --cacert '$TLS_DIR/ca.pem' -h 127.0.0.1 -p $REDIS_TLS_PORT ping | grep -q PONG"
fi
# A server another checkout started keeps its own CA: ask it which.
REDIS_TLS_CA=$(redis_tls CONFIG GET tls-ca-cert-file | sed -n 2p)
[ -s "$REDIS_TLS_CA" ] || { echo "Redis on :$REDIS_TLS_PORT names no readable tls-ca-cert-file" >&2; exit 1; }
redis-cli --tls --cacert "$REDIS_TLS_CA" -h 127.0.0.1 -p "$REDIS_TLS_PORT" ping 2>/dev/null | grep -q PONG \
  || { echo "Redis on :$REDIS_TLS_PORT does not verify with $REDIS_TLS_CA" >&2; exit 1; }
log "Redis with TLS ready on 127.0.0.1:$REDIS_TLS_PORT (CA $REDIS_TLS_CA)"

# --- Python tools ---------------------------------------------------------------
# Creates (or reuses) a venv holding exactly the pinned requirements.
venv() {
  local dir=$1 req=$2 sum
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ]; then
    log "creating $dir"
    python3 -m venv "$dir"
  fi
  if [ "$(cat "$dir/.requirements.sha256" 2>/dev/null)" != "$sum" ]; then
    log "installing $(basename "$req") into $dir (first run takes a minute or two)"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$sum" > "$dir/.requirements.sha256"
  fi
}
venv "$VENV" "$ROOT/tests/stack/requirements.txt"
venv "$ROOT/.venv-sam" "$ROOT/tests/stack/requirements-sam.txt"

# Starts a background service unless something already answers its health URL.
start() {
  local name=$1 health=$2; shift 2
  if http_ok "$health"; then
    log "$name already answering ($health)"
    return
  fi
  nohup "$@" >"$STACK/$name.log" 2>&1 &
  echo $! >"$STACK/$name.pid"
  wait_for "$name" http_ok "$health"
  log "$name started (pid $(cat "$STACK/$name.pid"))"
}

start moto "http://127.0.0.1:$MOTO_PORT/moto-api/" \
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
# Health: an empty project, so the answer stays instant however many datasets tests made.
start bigquery "http://127.0.0.1:$BQ_PORT/bigquery/v2/projects/stack-health/datasets" \
  "$VENV/bin/crucible" serve --dialect bigquery --host 127.0.0.1 --port "$BQ_PORT"
start bigquery-async "http://127.0.0.1:$BQ_ASYNC_PORT/bigquery/v2/projects/stack-health/datasets" \
  "$VENV/bin/python" "$ROOT/tests/stack/crucible_async.py" --host 127.0.0.1 --port "$BQ_ASYNC_PORT"
start pusher "http://127.0.0.1:$PUSHER_PORT/health" \
  "$VENV/bin/python" "$ROOT/tests/stack/pusher_capture.py" --host 127.0.0.1 --port "$PUSHER_PORT" \
  --app-id segments-local --key local-key --secret local-secret

cat >"$STACK/env" <<ENV
DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
REDIS_URL=redis://127.0.0.1:6379
REDIS_TLS_URL=rediss://127.0.0.1:$REDIS_TLS_PORT
REDIS_TLS_CA_FILE=$REDIS_TLS_CA
AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
BIGQUERY_BASE_URL=http://127.0.0.1:$BQ_PORT
BIGQUERY_ASYNC_BASE_URL=http://127.0.0.1:$BQ_ASYNC_PORT
BIGQUERY_PROJECT=segments-local
PUSHER_HOST=http://127.0.0.1:$PUSHER_PORT
PUSHER_APP_ID=segments-local
PUSHER_KEY=local-key
PUSHER_SECRET=local-secret
PUSHER_CLUSTER=local
ENV
log "wrote $STACK/env"
