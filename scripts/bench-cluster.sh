#!/usr/bin/env bash
# Measures a Baton cluster on this machine with `baton bench`: PostgreSQL (from
# scripts/services.sh), a private Redis, N `baton server --no-runner` nodes behind HAProxy, and
# two `baton runner run` processes registered through HAProxy. Everything runs on loopback and is
# torn down at the end. Arguments after `--` go to `baton bench`, e.g.:
#
#   cargo build --release
#   scripts/bench-cluster.sh --nodes 3 -- --tasks 1000 --concurrency 32 --script true
#
# With `--nodes 1 --direct` the bench talks to the single node without HAProxy.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3
direct=false
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --direct) direct=true; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--nodes N] [--direct] [-- baton bench arguments]" >&2; exit 2 ;;
  esac
done
bin=${BATON_BIN:-target/release/baton}
[ -x "$bin" ] || { echo "error: $bin missing; run cargo build --release first" >&2; exit 1; }
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)

eval "$(./scripts/services.sh)"
pg_admin=$BATON_TEST_POSTGRES_URL
# The test harness's variables are no configuration keys: Baton would refuse them.
unset BATON_TEST_PG_BIN BATON_TEST_POSTGRES_URL BATON_TEST_MYSQL_URL
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

db="bench_$(date +%s)_$$"
psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
db_url="${pg_admin%/*}/$db"
redis_port=$(port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --logfile "$work/redis.log"
password=bench-password-1

cluster_secret=$(openssl rand -hex 32)
encryption_key=$(openssl rand -base64 32)
export BATON_HA_ENABLED=true BATON_DATABASE_URL="$db_url" BATON_HA_REDIS_URL="redis://127.0.0.1:$redis_port/0" \
  BATON_CLUSTER_SECRET="$cluster_secret" BATON_SECRETS_ENCRYPTION_KEY="$encryption_key" \
  BATON_ADMIN_PASSWORD=$password BATON_LOG_LEVEL=warn BATON_LOG_FORMAT=text
backends_http="" backends_grpc=""
first_http=""
# Every node's own /metrics, for the bench's CPU and SQL figures per task (HAProxy does not
# forward /metrics).
metrics_args=()
for n in $(seq 1 "$nodes"); do
  http=$(port) grpc=$(port) internal=$(port)
  mkdir -p "$work/node-$n"
  BATON_HA_NODE_ID="node-$n" BATON_DATA_DIR="$work/node-$n" BATON_HTTP_LISTEN="127.0.0.1:$http" \
    BATON_GRPC_LISTEN="127.0.0.1:$grpc" BATON_CLUSTER_LISTEN="127.0.0.1:$internal" \
    "$bin" server --no-runner >"$work/node-$n.log" 2>&1 &
  pids+=($!)
  first_http=${first_http:-$http}
  metrics_args+=(--metrics "http://127.0.0.1:$http/metrics")
  backends_http+="    server node-$n 127.0.0.1:$http"$'\n'
  backends_grpc+="    server node-$n 127.0.0.1:$grpc proto h2 check-proto h1 check port $http"$'\n'
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$http/api/ready" >/dev/null 2>&1 && break; sleep 0.2; done
done

lb_http=$(port) lb_grpc=$(port)
cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 4096
    noreuseport
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    default-server check inter 500ms fall 2 rise 2
frontend api
    bind 127.0.0.1:$lb_http
    default_backend nodes_http
backend nodes_http
    balance roundrobin
    option httpchk GET /api/ready
$backends_http
frontend grpc
    bind 127.0.0.1:$lb_grpc proto h2
    default_backend nodes_grpc
backend nodes_grpc
    balance roundrobin
    option httpchk GET /api/ready
$backends_grpc
EOF
"$haproxy_bin" -f "$work/haproxy.cfg" -q &
pids+=($!)
if $direct; then api="http://127.0.0.1:$first_http"; else api="http://127.0.0.1:$lb_http"; fi
for _ in $(seq 1 100); do curl -fsS "$api/api/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$api/api/ready" >/dev/null || { tail -n 20 "$work"/node-*.log >&2; exit 1; }

jar="$work/jar"
curl -fsS -c "$jar" -H 'content-type: application/json' -d "{\"username\":\"admin\",\"password\":\"$password\"}" \
  "$api/api/v1/auth/login" >/dev/null
for r in 1 2; do
  token=$(curl -fsS -b "$jar" -H 'content-type: application/json' -d '{"expires_in_seconds":600}' \
    "$api/api/v1/runner-registration-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  env -u BATON_HA_ENABLED -u BATON_DATABASE_URL -u BATON_HA_REDIS_URL -u BATON_CLUSTER_SECRET \
    -u BATON_SECRETS_ENCRYPTION_KEY -u BATON_ADMIN_PASSWORD \
    "$bin" runner register --url "http://127.0.0.1:$lb_grpc" --token "$token" --name "runner-$r" --capacity 8 \
    --config "$work/runner-$r.toml" >/dev/null
  env -u BATON_HA_ENABLED -u BATON_DATABASE_URL -u BATON_HA_REDIS_URL -u BATON_CLUSTER_SECRET \
    -u BATON_SECRETS_ENCRYPTION_KEY -u BATON_ADMIN_PASSWORD \
    "$bin" runner run --config "$work/runner-$r.toml" >"$work/runner-$r.log" 2>&1 &
  pids+=($!)
done
sleep 2
echo "cluster: $nodes node(s), PostgreSQL, Redis, 2 runners (capacity 8) through HAProxy; bench via $([ "$direct" = true ] && echo "node-1 directly" || echo HAProxy)"
"$bin" bench --url "$api" --password "$password" "${metrics_args[@]}" "$@"
psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null 2>&1 || true
