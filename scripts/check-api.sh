#!/usr/bin/env bash
# Checks the HTTP API against its own OpenAPI document with outside tools, on a live node:
#   - openapi-spec-validator: the document served at /api/v1/openapi.json is valid OpenAPI 3.1;
#   - schemathesis: every operation, called with data that fits the document and data that does
#     not (examples, coverage, fuzzing and stateful phases, a fixed seed), as an administrator
#     with an API token. It fails on any server error (5xx), any answer the document does not
#     allow (an undocumented status, a body that does not match its schema, a wrong content type
#     or a missing documented header), and any invalid input that the server accepts.
#
# The node is `target/debug/baton server --no-runner` (no script ever runs, whatever the fuzzer
# makes) on free loopback ports, with SQLite in a temporary directory. The binary is the one
# `scripts/test.sh` builds (the same cargo selection: nothing is rebuilt when it is up to date).
# The Python tools come from `scripts/services.sh` ($BATON_TEST_API_TOOLS), which installs them
# when missing.
#
# Not fuzzed: the WebSocket upgrade (GET /api/v1/ws) and the server-sent events of a task's log
# (GET …/log/stream). Neither answers with a document a fuzzer can check: one switches protocols,
# the other streams until its task ends, which with no runner is never. Both are described in
# the document, validated with it, and tested by the `events` tests.
#
# Options come from the environment: API_CHECK_MAX_EXAMPLES (default 25) cases per operation and
# phase, API_CHECK_SEED (default 20240614) for the data generation, API_CHECK_BIN a `baton`
# binary to check instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples=${API_CHECK_MAX_EXAMPLES:-25}
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
  cargo nextest run --workspace --lib --bins --tests --no-run
  bin=$PWD/target/debug/baton
fi

work=$(mktemp -d)
server_pid=""
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

# Logs in as the administrator and mints the API token the fuzzer sends; prints "<id> <token>".
BASE=$base PASSWORD=$admin_password "$py" - >"$work/token" <<'PY'
import http.cookiejar, json, os, sys, time, urllib.request

base = os.environ["BASE"]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
for _ in range(600):
    try:
        if opener.open(f"{base}/api/ready", timeout=2).status == 200:
            break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the server did not become ready within a minute")


def post(path, body):
    req = urllib.request.Request(f"{base}{path}", json.dumps(body).encode(), {"content-type": "application/json"})
    return json.load(opener.open(req, timeout=10))


post("/api/v1/auth/login", {"username": "admin", "password": os.environ["PASSWORD"]})
token = post("/api/v1/tokens", {"name": "api-check"})
print(token["id"], token["token"])
PY
read -r token_id token <"$work/token"

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

echo "== schemathesis: every operation but the two streams, seed $seed, up to $max_examples cases each"
started=$(date +%s)
# The hooks keep the fuzzer from deleting its own token (which would leave the rest of the run
# testing 401s only); everything else it may do as the administrator.
if ! PYTHONPATH=scripts SCHEMATHESIS_HOOKS=check_api_hooks API_CHECK_TOKEN_ID=$token_id \
  "$tools/schemathesis" --config-file scripts/schemathesis.toml run "$work/openapi.json" \
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
  --exclude-operation-id stream_log \
  --no-color \
  --report junit --report-junit-path "$work/schemathesis.xml"; then
  status=1
  echo "   the server's log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
echo "   schemathesis took $(($(date +%s) - started)) s"

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
