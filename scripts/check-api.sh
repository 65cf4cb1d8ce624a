#!/usr/bin/env bash
# Checks the HTTP API against its own OpenAPI document with outside tools, on a live node:
#   - openapi-spec-validator: the document served at /api/v1/openapi.json is valid OpenAPI 3.1;
#   - schemathesis: every operation but the WebSocket (below), called with data that fits the
#     document and data that does not (coverage, fuzzing and stateful phases, a fixed seed), as
#     an administrator with an API token. It fails on any server error (5xx), any answer the
#     document does not allow (an undocumented status, a body that does not match its schema, a
#     wrong content type or a missing required header), and any invalid input that the server
#     accepts.
#
# The node is `baton server --no-runner` (no script ever runs, whatever the fuzzer makes) on free
# loopback ports, with SQLite in a temporary directory. The binary is the debug one that
# `scripts/test.sh` builds, in `$CARGO_TARGET_DIR` when set: the script asks cargo for the same
# selection, so after test.sh nothing is rebuilt. `check_api_setup.py` gives the node fixtures (a
# project with a template, tasks, a schedule, a secret, a member, a runner) whose ids the fuzzer
# uses most of the time, so that its cases get past "not found" to the handlers' own checks.
# The Python tools come from `scripts/services.sh` ($BATON_TEST_API_TOOLS), which installs them
# when missing.
#
# Not fuzzed: the WebSocket upgrade (GET /api/v1/ws). Its answer to a valid request is a switch of
# protocols, which schemathesis takes for a server error, and even requests it means as invalid
# ones (an extra header) are valid upgrades. It is described in the document, validated with it,
# and tested by the `events` tests. The server-sent events of a task's log are fuzzed: the
# fixtures' cancelled task gives a stream that ends at once.
#
# Options come from the environment: API_CHECK_MAX_EXAMPLES (default 50) cases per operation and
# phase, API_CHECK_SEED (default 20240614) for the data generation, API_CHECK_BIN a `baton`
# binary to check instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

max_examples=${API_CHECK_MAX_EXAMPLES:-50}
seed=${API_CHECK_SEED:-20240614}

if [[ -z ${BATON_TEST_API_TOOLS:-} ]]; then
  eval "$(./scripts/services.sh)"
fi
tools=$BATON_TEST_API_TOOLS
py=$tools/python

if [[ -n ${API_CHECK_BIN:-} ]]; then
  bin=$API_CHECK_BIN
else
  echo "== building (nothing to do after scripts/test.sh)"
  # Exactly test.sh's selection of packages and targets: any other (`-p baton`, `--bin baton`)
  # unifies features differently and would build much of the tree again.
  cargo nextest run --workspace --lib --bins --tests --no-run
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/debug/baton")
fi

work=$(mktemp -d)
server_pid=""
# Called by the EXIT trap below (which shellcheck does not count as a call here).
# shellcheck disable=SC2329
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

admin_password=$("$py" -c 'import secrets; print(secrets.token_urlsafe(24))')
http_port=$(free_port)
grpc_port=$(free_port)
base=http://127.0.0.1:$http_port

echo "== starting baton server --no-runner on 127.0.0.1:$http_port (SQLite in $work)"
# A clean environment: the caller's BATON_… variables (the tests' own, a developer's settings)
# would change the node, or be refused as unknown keys.
env -i PATH="$PATH" HOME="$HOME" \
  BATON_DATA_DIR="$work" \
  BATON_HTTP_LISTEN="127.0.0.1:$http_port" \
  BATON_GRPC_LISTEN="127.0.0.1:$grpc_port" \
  BATON_CLUSTER_LISTEN=127.0.0.1:0 \
  BATON_ADMIN_USERNAME=admin \
  BATON_ADMIN_PASSWORD="$admin_password" \
  BATON_LOG_LEVEL=warn \
  BATON_LOG_FORMAT=text \
  "$bin" server --no-runner >"$work/server.log" 2>&1 &
server_pid=$!

# The API token the fuzzer sends, its config with the fixtures, and what it must not delete.
if ! BASE=$base PASSWORD=$admin_password BIN=$bin RUNNER_URL=http://127.0.0.1:$grpc_port \
  "$py" scripts/check_api_setup.py "$work"; then
  echo "the node could not be prepared; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
read -r _ token <"$work/token"

status=0
echo "== openapi-spec-validator $base/api/v1/openapi.json"
"$py" -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' \
  "$base/api/v1/openapi.json" >"$work/openapi.json"
if "$tools/openapi-spec-validator" "$work/openapi.json"; then
  "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print("   OpenAPI", d["openapi"] + ",", sum(len(v) for v in d["paths"].values()), "operations")' \
    "$work/openapi.json"
else
  status=1
fi

echo "== schemathesis: every operation but the WebSocket, seed $seed, up to $max_examples cases each"
started=$(date +%s)
# The hooks keep the fuzzer from deleting its own token and the fixtures (which would leave the
# rest of the run testing 401s and 404s only); everything else it may do as the administrator. Valid data may still be
# refused (`positive_data_acceptance` is off): the document cannot say that a template id must
# exist or a name be unused, so a 404 or 409 to well-formed data is right. It runs in the
# temporary directory, where its caches (.schemathesis, .hypothesis) go with the rest.
if ! (cd "$work" && PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=check_api_hooks API_CHECK_FIXTURES="$work/fixtures.json" \
  "$tools/schemathesis" --config-file "$work/schemathesis.toml" run "$work/openapi.json" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --mode all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$max_examples" \
  --seed "$seed" \
  --generation-database none \
  --workers 1 \
  --request-timeout 10 \
  --exclude-operation-id events \
  --no-color); then
  status=1
  echo "   the server's log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
echo "   schemathesis took $(($(date +%s) - started)) s"

# The run tested what it seems to have tested only if its token worked to the end (else most
# answers were 401s) and the fixtures were still there (else 404s).
if ! BASE=$base TOKEN=$token "$py" - "$work/fixtures.json" <<'PY'
import json, os, sys, urllib.request

pid = json.load(open(sys.argv[1]))["delete_project"]["pid"]
req = urllib.request.Request(f"{os.environ['BASE']}/api/v1/projects/{pid}/templates",
                             headers={"authorization": f"Bearer {os.environ['TOKEN']}"})
items = json.load(urllib.request.urlopen(req, timeout=10))["items"]
sys.exit(None if items else "the fixture project has no template left")
PY
then
  echo "the fuzzer's token or fixtures were gone by the end of the run" >&2
  status=1
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "the server died during the check; its log:" >&2
  cat "$work/server.log" >&2
  status=1
fi
if grep -q ' ERROR ' "$work/server.log"; then
  echo "the server logged errors:" >&2
  grep ' ERROR ' "$work/server.log" >&2
  status=1
fi
if ((status == 0)); then echo "api check: all checks passed"; else echo "api check: FAILED" >&2; fi
exit $status
