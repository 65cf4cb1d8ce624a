#!/usr/bin/env bash
# Entrypoint of a remote runner container: registers the runner on its first start (when its
# config file is missing), then runs it. The config file holds the runner's identity, so it must
# live on a volume; a restarted container finds it and goes straight to `baton runner run`.
#
#   baton-runner-entrypoint            register if needed, then run the runner
#   baton-runner-entrypoint register   register if needed, then exit: for a Kubernetes init
#                                      container, so the registration token never reaches the
#                                      container whose scripts run
#
# Environment:
#   BATON_CONFIG       the runner's config file (default /var/lib/baton-runner/runner.toml)
#   RUNNER_URL         the runner port's URL through the load balancer, e.g. http://haproxy:7000,
#                      or https://… over TLS (first start only)
#   RUNNER_CA_FILE     PEM file of the CA that signed the server's certificate, for an https://
#                      URL whose certificate is not from a CA the system trusts (first start only;
#                      the config file keeps its path, so it must stay mounted)
#   RUNNER_TOKEN_FILE  file holding a registration token (first start only)
#   RUNNER_TOKEN       the token itself, instead of RUNNER_TOKEN_FILE
#   RUNNER_NAME        runner name (default: the container's host name)
#   RUNNER_LABELS      comma-separated labels (default: none)
#   RUNNER_CAPACITY    scripts run at once (default 4)
#   RUNNER_WAIT_SECONDS how long to wait for the token file and the load balancer (default 300)
set -euo pipefail

config=${BATON_CONFIG:-/var/lib/baton-runner/runner.toml}
wait_seconds=${RUNNER_WAIT_SECONDS:-300}
mode=${1:-run}

log() { printf 'runner-entrypoint: %s\n' "$*" >&2; }

case $mode in
  run | register) ;;
  *) log "unknown argument ${mode@Q}: give nothing (register if needed, then run) or \`register\`"; exit 2 ;;
esac

if [[ ! -s $config ]]; then
  : "${RUNNER_URL:?is required to register: the runner port through the load balancer, e.g. http://haproxy:7000}"
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
  if [[ -n ${RUNNER_CA_FILE:-} ]]; then
    [[ -r $RUNNER_CA_FILE ]] || { log "RUNNER_CA_FILE: cannot read $RUNNER_CA_FILE"; exit 1; }
    args+=(--ca-file "$RUNNER_CA_FILE")
  fi
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

if [[ $mode == register ]]; then
  exit 0
fi

# Scripts inherit the runner's environment (all but BATON_…): keep the token out of it.
unset RUNNER_TOKEN token
exec baton runner run --config "$config"
