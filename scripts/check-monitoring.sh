#!/usr/bin/env bash
# Validates docker/monitoring/ with Prometheus' own tools and against a live node:
#   - prometheus.yml (promtool check config, which checks the rule files it loads too)
#   - alerts.yml (promtool check rules) and its unit tests (promtool test rules alerts-test.yml),
#     in which every alert is shown to fire
#   - a live `baton server` (the debug build, on SQLite and loopback ports) after real work: tasks
#     run, succeed and fail, a log is streamed. Its /metrics passes `promtool check metrics` and
#     holds every metric API.md lists, with its type
#   - a real Prometheus scraping that node with prometheus.yml's job and relabelling, loading
#     alerts.yml: every rule evaluates without error and none fires on the healthy node, and every
#     query of the Grafana dashboard (grafana-dashboard.json) returns data. Every metric name the
#     dashboard or the rules use is in the node's output, so a renamed metric cannot leave a
#     panel empty or an alert silent.
#
# Needs promtool and prometheus (Debian package `prometheus`; scripts/check-deploy.sh installs
# it and runs this script), python3, curl, and the baton binary: BATON_BIN, else
# ${CARGO_TARGET_DIR:-target}/debug/baton (built by scripts/test.sh or `cargo build -p baton`).
# Exits non-zero if any check fails, after running them all.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

monitoring=docker/monitoring
baton=${BATON_BIN:-${CARGO_TARGET_DIR:-target}/debug/baton}
for tool in promtool prometheus python3 curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (Debian: apt-get install prometheus python3 curl)" >&2; exit 1; }
done
[[ -x $baton ]] || { echo "error: no baton binary at $baton; build it with cargo build -p baton (or set BATON_BIN)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/steps.sh
source scripts/steps.sh

# Prints the command's output indented, keeping its status.
indented() {
  "$@" 2>&1 | sed 's/^/   /'
  return "${PIPESTATUS[0]}"
}

step "promtool check config $monitoring/prometheus.yml" indented promtool check config "$monitoring/prometheus.yml"
step "promtool check rules $monitoring/alerts.yml" indented promtool check rules "$monitoring/alerts.yml"
step "promtool test rules $monitoring/alerts-test.yml" indented promtool test rules "$monitoring/alerts-test.yml"

# wait_for URL SECONDS: until the URL answers 2xx.
wait_for() {
  local url=$1 tries=$(($2 * 5))
  while ((tries-- > 0)); do
    curl -sf -o /dev/null -m 2 "$url" && return 0
    sleep 0.2
  done
  echo "   $url did not answer within $2 s" >&2
  return 1
}

# A node of its own: SQLite in a fresh data directory, every port on loopback, a known admin.
base=$((20000 + RANDOM % 20000))
node=http://127.0.0.1:$base
admin_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
start_node() {
  env BATON_DATA_DIR="$work/node" BATON_HA_NODE_ID=monitoring-check \
    BATON_HTTP_LISTEN="127.0.0.1:$base" BATON_GRPC_LISTEN="127.0.0.1:$((base + 1))" \
    BATON_CLUSTER_LISTEN="127.0.0.1:$((base + 2))" \
    BATON_ADMIN_USERNAME=admin BATON_ADMIN_PASSWORD="$admin_password" \
    "$baton" server >"$work/node.log" 2>&1 &
  pids+=($!)
  if ! wait_for "$node/api/ready" 60; then
    tail -n 20 "$work/node.log" >&2
    return 1
  fi
  echo "   $("$baton" --version 2>/dev/null || echo baton) ready at $node"
}

# Prometheus with the shipped configuration, its targets swapped for the live node, scraping
# and evaluating every second so that rates have samples within seconds.
prom_port=$((base + 3))
prom=http://127.0.0.1:$prom_port
start_prometheus() {
  mkdir -p "$work/prom"
  cp "$monitoring/alerts.yml" "$work/prom/"
  sed -E -e 's/^( *(scrape|evaluation)_interval:).*/\1 1s/' \
    -e "s/^( *- targets: )\[\"baton-1:3000\".*\]\$/\1[\"127.0.0.1:$base\"]/" \
    "$monitoring/prometheus.yml" >"$work/prom/prometheus.yml"
  if ! grep -q "127.0.0.1:$base" "$work/prom/prometheus.yml"; then
    echo "   prometheus.yml has no baton-1:3000 targets line to point at the live node" >&2
    return 1
  fi
  prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prom.log" 2>&1 &
  pids+=($!)
  if ! wait_for "$prom/-/ready" 30; then
    tail -n 20 "$work/prom.log" >&2
    return 1
  fi
  echo "   prometheus ready at $prom, scraping $node"
}

live() {
  start_node || return 1
  python3 scripts/monitoring_check.py work "$node" "$admin_password" || return 1
  curl -sf "$node/metrics" >"$work/scrape.txt" || { echo "   GET $node/metrics failed" >&2; return 1; }
  echo "   scraped $(grep -vc '^#' "$work/scrape.txt") samples"
}
step "a live node does real work" live

if [[ -s $work/scrape.txt ]]; then
  step "promtool check metrics (the live node's /metrics)" indented promtool check metrics <"$work/scrape.txt"
  step "the live node has API.md's metrics" python3 scripts/monitoring_check.py api-md "$work/scrape.txt"
  step "prometheus scrapes the live node with prometheus.yml and alerts.yml" start_prometheus
  step "dashboard and rules: valid, their metrics exist, every query returns data, no alert fires" \
    python3 scripts/monitoring_check.py prometheus "$work/scrape.txt" "$prom" "$monitoring"
fi

report "monitoring check"
