# shellcheck shell=bash
# Sourced by the check scripts (check-deploy.sh, check-monitoring.sh): each check is a step that
# prints its output and is recorded when it fails, so that one run shows every failure.

failed=()

# step NAME COMMAND...: runs one check, prints its output, records a failure.
step() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    echo "   ok"
  else
    echo "   FAILED: $name" >&2
    failed+=("$name")
  fi
}

# report WHAT: the summary of the steps; exits non-zero if any failed.
report() {
  echo
  if ((${#failed[@]})); then
    echo "$1: ${#failed[@]} check(s) failed:" >&2
    printf '  - %s\n' "${failed[@]}" >&2
    exit 1
  fi
  echo "$1: all checks passed"
}
