#!/usr/bin/env bash
# Measures Baton on this machine with `baton bench`: N `baton server --no-runner` nodes behind
# HAProxy on PostgreSQL (from scripts/services.sh) with a private Redis, or one node on MariaDB or
# SQLite, and `baton runner run` processes of their own registered through HAProxy. Everything
# runs on loopback and is torn down at the end. Arguments after `--` go to `baton bench`, e.g.:
#
#   cargo build --release
#   scripts/bench-cluster.sh --nodes 3 -- --tasks 1000 --concurrency 32 --script true
#   scripts/bench-cluster.sh --database sqlite --runners 1 --capacity 64 -- --tasks 5000 --concurrency 64 --script true
#
# --database postgres (default) | mysql | sqlite: SQLite takes one node and no Redis (the embedded
# default: in-process coordination), MariaDB one node or more. --runners R (default 2) and
# --capacity C (default 8) size the runners. With `--direct` the bench talks to node-1 without
# HAProxy. The bench reads every node's /metrics for the CPU and SQL statements per task.
# BATON_BIN picks the servers' and runners' binary, BATON_BENCH_BIN the bench client's (to
# measure an older server with today's client).
#
# With `--node-cpu F` every node runs in a CPU cgroup of its own that lets it use F of a CPU (0.25:
# a quarter): nodes then have cores of their own, as on separate machines, while PostgreSQL,
# Redis, HAProxy, the runners and the bench share the rest. It measures whether adding nodes adds
# capacity where the nodes are what runs short, which a machine whose every process shares the
# same two cores cannot show. Needs root and the cgroup v1 `cpu` controller (or cgroup v2).
#
# The runners' work directories (a directory, a script and a pid file made and removed per task)
# go under --runner-dir, by default /dev/shm when it is there: on a file system that scans
# recently freed inodes for every new file (ext4 without a journal), the runners' CPU per task
# grew threefold over a few minutes of benches and drowned the servers' figures.
#
# After the bench's own report comes the CPU every process of the setup used while it ran
# (servers, database, Redis, HAProxy, runners, their scripts, the bench client:
# scripts/cpu_by_process.py): on a machine they all share, their sum is what bounds the
# throughput. `--balance first` sends every request and runner stream to the first node that is
# up instead of round robin, to tell what splitting the load costs from what more nodes cost.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3
direct=false
database=postgres
runners=2
capacity=8
runner_dir=
node_cpu=
balance=roundrobin
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --direct) direct=true; shift ;;
    --database) database=$2; shift 2 ;;
    --runners) runners=$2; shift 2 ;;
    --capacity) capacity=$2; shift 2 ;;
    --runner-dir) runner_dir=$2; shift 2 ;;
    --balance) balance=$2; shift 2 ;;
    --node-cpu) node_cpu=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--nodes N] [--direct] [--database postgres|mysql|sqlite] [--runners R] [--capacity C] [--runner-dir DIR] [--node-cpu F] [--balance roundrobin|first] [-- baton bench arguments]" >&2; exit 2 ;;
  esac
done
case $balance in
  roundrobin | first) ;;
  *) echo "error: --balance is roundrobin or first" >&2; exit 2 ;;
esac
case $database in
  postgres | mysql) ;;
  sqlite) [ "$nodes" = 1 ] || { echo "error: SQLite serves one node; give --nodes 1" >&2; exit 2; } ;;
  *) echo "error: --database is postgres, mysql or sqlite" >&2; exit 2 ;;
esac
if [ -n "$node_cpu" ] && ! python3 -c 'import sys; sys.exit(not 0.1 <= float(sys.argv[1]) <= 64)' "$node_cpu" 2>/dev/null; then
  echo "error: --node-cpu is a share of one CPU between 0.1 and 64, e.g. 0.25 (the kernel allows no less than 1 ms in each 10 ms period)" >&2; exit 2
fi
bin=${BATON_BIN:-target/release/baton}
# The bench client may be another build than the servers' (to measure an older server with the
# same client): BATON_BENCH_BIN, by default the same binary.
bench_bin=${BATON_BENCH_BIN:-$bin}
# Not configuration keys: the nodes would refuse to start with them in their environment.
unset BATON_BIN BATON_BENCH_BIN
for b in "$bin" "$bench_bin"; do
  [ -x "$b" ] || { echo "error: $b missing; run cargo build --release first" >&2; exit 1; }
done
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)

eval "$(./scripts/services.sh)"
pg_admin=$BATON_TEST_POSTGRES_URL
my_admin=$BATON_TEST_MYSQL_URL
# The test harness's variables are no configuration keys: Baton would refuse them.
mapfile -t harness_vars < <(compgen -v BATON_TEST_)
unset "${harness_vars[@]}"
work=$(mktemp -d)
if [ -z "$runner_dir" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then runner_dir=/dev/shm; fi
runs=$(mktemp -d -p "${runner_dir:-$work}")
pids=()
cgroups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for g in "${cgroups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  rm -rf "$work" "$runs"
}
trap cleanup EXIT

# Puts process $1 (node $2) in a cgroup of its own limited to $node_cpu of a CPU.
limit_cpu() {
  # A short period spreads the allowance evenly: a node is never held back for long at once.
  local period=10000 quota g
  quota=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * int(sys.argv[2])))' "$node_cpu" "$period")
  if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
    g=/sys/fs/cgroup/cpu/baton-bench-$$-node-$2
    mkdir "$g" && cgroups+=("$g")
    echo "$period" >"$g/cpu.cfs_period_us"
    echo "$quota" >"$g/cpu.cfs_quota_us"
  elif [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then
    g=/sys/fs/cgroup/baton-bench-$$-node-$2
    grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
    mkdir "$g" && cgroups+=("$g")
    echo "$quota $period" >"$g/cpu.max"
  else
    echo "error: --node-cpu needs a writable CPU cgroup (run as root)" >&2
    exit 1
  fi
  echo "$1" >"$g/cgroup.procs"
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

db="bench_$(date +%s)_$$"
# mysql://user:pass@host:port/db → the client's options.
my_client() {
  python3 - "$my_admin" "$@" <<'PY'
import os, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
os.execvp("mariadb", ["mariadb", "-h", u.hostname, "-P", str(u.port or 3306), "-u", u.username,
                      f"-p{u.password}", "-e", sys.argv[2]])
PY
}
drop_db() {
  case $database in
    postgres) psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null 2>&1 || true ;;
    mysql) my_client "DROP DATABASE $db" >/dev/null 2>&1 || true ;;
  esac
}
case $database in
  postgres)
    psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
    db_url="${pg_admin%/*}/$db"
    ;;
  mysql)
    my_client "CREATE DATABASE $db" >/dev/null
    db_url="${my_admin%/*}/$db"
    ;;
  sqlite) db_url="sqlite://$work/baton.db" ;;
esac
password=bench-password-1

cluster_secret=$(openssl rand -hex 32)
encryption_key=$(openssl rand -base64 32)
export BATON_DATABASE_URL="$db_url" BATON_CLUSTER_SECRET="$cluster_secret" \
  BATON_SECRETS_ENCRYPTION_KEY="$encryption_key" BATON_ADMIN_PASSWORD=$password BATON_LOG_LEVEL=warn \
  BATON_LOG_FORMAT=text
if [ "$database" != sqlite ]; then
  redis_port=$(port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$work/redis.pid" --logfile "$work/redis.log"
  export BATON_HA_ENABLED=true BATON_HA_REDIS_URL="redis://127.0.0.1:$redis_port/0"
fi
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
  [ -n "$node_cpu" ] && limit_cpu "$!" "$n"
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
    balance $balance
    option httpchk GET /api/ready
$backends_http
frontend grpc
    bind 127.0.0.1:$lb_grpc proto h2
    default_backend nodes_grpc
backend nodes_grpc
    balance $balance
    option httpchk GET /api/ready
$backends_grpc
EOF
"$haproxy_bin" -f "$work/haproxy.cfg" -q &
pids+=($!)
haproxy_pid=$!
node_pids=("${pids[@]:0:$nodes}")
if $direct; then api="http://127.0.0.1:$first_http"; else api="http://127.0.0.1:$lb_http"; fi
for _ in $(seq 1 100); do curl -fsS "$api/api/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$api/api/ready" >/dev/null || { tail -n 20 "$work"/node-*.log >&2; exit 1; }

jar="$work/jar"
runner_pids=()
curl -fsS -c "$jar" -H 'content-type: application/json' -d "{\"username\":\"admin\",\"password\":\"$password\"}" \
  "$api/api/v1/auth/login" >/dev/null
for r in $(seq 1 "$runners"); do
  token=$(curl -fsS -b "$jar" -H 'content-type: application/json' -d '{"expires_in_seconds":600}' \
    "$api/api/v1/runner-registration-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  env -u BATON_HA_ENABLED -u BATON_DATABASE_URL -u BATON_HA_REDIS_URL -u BATON_CLUSTER_SECRET \
    -u BATON_SECRETS_ENCRYPTION_KEY -u BATON_ADMIN_PASSWORD \
    "$bin" runner register --url "http://127.0.0.1:$lb_grpc" --token "$token" --name "runner-$r" --capacity "$capacity" \
    --config "$work/runner-$r.toml" >/dev/null
  sed -i "1i work_dir = \"$runs/runner-$r\"" "$work/runner-$r.toml"
  env -u BATON_HA_ENABLED -u BATON_DATABASE_URL -u BATON_HA_REDIS_URL -u BATON_CLUSTER_SECRET \
    -u BATON_SECRETS_ENCRYPTION_KEY -u BATON_ADMIN_PASSWORD \
    "$bin" runner run --config "$work/runner-$r.toml" >"$work/runner-$r.log" 2>&1 &
  pids+=($!)
  runner_pids+=($!)
done
sleep 2
echo "cluster: $nodes node(s), $database$([ "$database" = sqlite ] || echo ", Redis"), $runners runner(s) (capacity $capacity) through HAProxy$([ -n "$node_cpu" ] && echo ", $node_cpu CPU per node"); bench via $([ "$direct" = true ] && echo "node-1 directly" || echo HAProxy)"
# The processes whose CPU is reported beside the bench's own figures.
join() { local IFS=,; echo "$*"; }
groups=(--group "servers:self:$(join "${node_pids[@]}")" --group "runners:self:$(join "${runner_pids[@]}")"
  --group "scripts:children:$(join "${runner_pids[@]}")" --group "haproxy:self:$haproxy_pid")
[ -f "$work/redis.pid" ] && groups+=(--group "redis:self:$(cat "$work/redis.pid")")
case $database in
  postgres) groups+=(--group "postgresql:tree:$(head -n 1 "$(psql "$pg_admin" -Atc 'SHOW data_directory')/postmaster.pid")") ;;
  mysql) groups+=(--group "mariadb:self:$(cat "$(my_client 'SELECT @@pid_file' | tail -n 1)")") ;;
esac
tasks=100
args=("$@")
for i in "${!args[@]}"; do
  case ${args[$i]} in
    --tasks) tasks=${args[$((i + 1))]} ;;
    --tasks=*) tasks=${args[$i]#--tasks=} ;;
  esac
done
python3 scripts/cpu_by_process.py --tasks "$tasks" "${groups[@]}" -- \
  "$bench_bin" bench --url "$api" --password "$password" "${metrics_args[@]}" "$@"
drop_db
