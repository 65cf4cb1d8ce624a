#!/usr/bin/env bash
# Entrypoint of a remote runner container: registers the runner on its first start (when its
# config file is missing), then runs it. The config file holds the runner's identity, so it must
# live on a volume; a restarted container finds it and goes straight to `baton runner run`.
#
# Environment:
#   BATON_CONFIG       the runner's config file (default /var/lib/baton-runner/runner.toml)
#   RUNNER_URL         gRPC URL of the load balancer, e.g. http://haproxy:7000 (first start only)
#   RUNNER_TOKEN_FILE  file holding a registration token (first start only)
#   RUNNER_TOKEN       the token itself, instead of RUNNER_TOKEN_FILE
#   RUNNER_NAME        runner name (default: the container's host name)
#   RUNNER_LABELS      comma-separated labels (default: none)
#   RUNNER_CAPACITY    scripts run at once (default 4)
#   RUNNER_WAIT_SECONDS how long to wait for the token file and the load balancer (default 300)
set -euo pipefail

config=${BATON_CONFIG:-/var/lib/baton-runner/runner.toml}
wait_seconds=${RUNNER_WAIT_SECONDS:-300}

log() { printf 'runner-entrypoint: %s\n' "$*" >&2; }

if [[ ! -s $config ]]; then
  : "${RUNNER_URL:?is required to register: the load balancer gRPC URL, e.g. http://haproxy:7000}"
  name=${RUNNER_NAME:-$(hostname)}

  token=${RUNNER_TOKEN:-}
  if [[ -z $token ]]; then
    : "${RUNNER_TOKEN_FILE:?is required to register (or set RUNNER_TOKEN)}"
    # The token is written by a one-shot admin job that may still be running.
    for ((i = 0; i < wait_seconds; i++)); do
      [[ -s $RUNNER_TOKEN_FILE ]] && break
      sleep 1
    done
    [[ -s $RUNNER_TOKEN_FILE ]] || { log "no registration token in $RUNNER_TOKEN_FILE after ${wait_seconds}s"; exit 1; }
    token=$(<"$RUNNER_TOKEN_FILE")
  fi

  args=(runner register --url "$RUNNER_URL" --token "$token" --name "$name"
        --capacity "${RUNNER_CAPACITY:-4}" --config "$config")
  if [[ -n ${RUNNER_LABELS:-} ]]; then args+=(--labels "$RUNNER_LABELS"); fi
  # An empty file left by an interrupted start would make `register` refuse to overwrite it.
  rm -f -- "$config"

  # The load balancer or every node may still be starting: retry until the deadline.
  deadline=$((SECONDS + wait_seconds))
  until baton "${args[@]}"; do
    if ((SECONDS >= deadline)); then
      log "registration through $RUNNER_URL failed for ${wait_seconds}s; giving up"
      exit 1
    fi
    log "registration failed; retrying in 3s"
    sleep 3
  done
  log "registered as $name; identity stored in $config"
fi

exec baton runner run --config "$config"
