#!/usr/bin/env bash
# Starts the database servers the tests use, each a private instance on loopback, installing the
# Debian packages when they are missing (redis-server, haproxy, chromium and chromium-driver are
# only installed: the coordination, cluster and browser tests start private ones each), installs
# the Python gRPC client the reflection test runs and the API checkers of check-api.sh, and prints
# the variables that point the tests at them (`eval "$(scripts/services.sh)"`):
#   BATON_TEST_POSTGRES_URL  admin URL of a PostgreSQL server (tests create a database each)
#   BATON_TEST_MYSQL_URL     admin URL of a MariaDB server (likewise)
#   BATON_TEST_PYTHON        a Python with grpcio and grpcio-reflection
#   BATON_TEST_API_TOOLS     bin directory of a virtualenv with the API checkers of
#                            `scripts/check-api.sh` (openapi-spec-validator, schemathesis)
# Instances are reused while they run, so repeated test runs start at once.
set -euo pipefail

services_dir="${BATON_TEST_SERVICES_DIR:-/tmp/baton-test-services}"
pg_port="${BATON_TEST_POSTGRES_PORT:-55432}"
my_port="${BATON_TEST_MYSQL_PORT:-53306}"
mkdir -p "$services_dir"
chmod 755 "$services_dir"

apt_updated=""
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: $* missing and not root; install it (apt-get install $*) and retry" >&2
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    apt-get -o DPkg::Lock::Timeout=120 update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq "$@" >/dev/null 2>&1
}

# Runs a command as the given system user (root cannot run the database servers).
as_user() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# The bin directory of the newest PostgreSQL installed from Debian packages, if any.
newest_postgres() {
  find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
  local bin
  bin=$(newest_postgres)
  if [ -z "$bin" ]; then
    apt_install postgresql
    bin=$(newest_postgres)
  fi
  export BATON_TEST_PG_BIN="$bin"
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then return; fi
  local data="$services_dir/postgres"
  local owner=postgres
  [ "$(id -u)" = 0 ] || owner=$(id -un)
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown "$owner" "$data"
    as_user "$owner" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  # A server killed abruptly leaves its lock files (data directory and socket), and PostgreSQL
  # refuses to start while the PID in them exists: as a zombie not yet reaped, or reused by
  # another process. Drop each unless a live postgres process holds its PID.
  local lock old_pid state
  for lock in "$data/postmaster.pid" "$data/.s.PGSQL.$pg_port.lock"; do
    [ -f "$lock" ] || continue
    old_pid=$(head -n 1 "$lock")
    state=$(sed -n 's/^[0-9]* (\(.*\)) \([A-Z]\).*/\1 \2/p' "/proc/$old_pid/stat" 2>/dev/null || true)
    if [ "${state% *}" != postgres ] || [ "${state#* }" = Z ]; then
      rm -f "$lock" "${lock%.lock}"
    fi
  done
  # Test data is throwaway: skip durability for speed; many tests run at once.
  as_user "$owner" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $pg_port -k $data -c listen_addresses=127.0.0.1 -c max_connections=1000 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB" \
    start >/dev/null
}

start_mariadb() {
  if ! command -v mariadbd >/dev/null; then apt_install mariadb-server; fi
  local dir="$services_dir/mariadb" owner=mysql
  [ "$(id -u)" = 0 ] || owner=$(id -un)
  if ! mariadb-admin --socket="$dir/sock" -uroot ping >/dev/null 2>&1; then
    if [ ! -d "$dir/data/mysql" ]; then
      rm -rf "$dir"; mkdir -p "$dir"; chown "$owner" "$dir"
      as_user "$owner" mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal >/dev/null
    fi
    as_user "$owner" bash -c "nohup mariadbd --no-defaults --datadir='$dir/data' --port=$my_port --bind-address=127.0.0.1 \
      --socket='$dir/sock' --pid-file='$dir/pid' --skip-log-bin --skip-name-resolve --max-connections=1000 \
      --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=128M --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_unicode_ci >'$dir/server.log' 2>&1 &"
    for _ in $(seq 1 120); do
      mariadb-admin --socket="$dir/sock" -uroot ping >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  # Anonymous accounts would shadow the test user on loopback.
  mariadb --socket="$dir/sock" -uroot -e "DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES;
    CREATE USER IF NOT EXISTS 'baton'@'%' IDENTIFIED BY 'baton'; GRANT ALL ON *.* TO 'baton'@'%' WITH GRANT OPTION; FLUSH PRIVILEGES;"
}

# The coordination tests start their own redis-server per test; it only has to be installed.
install_redis() {
  if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
}

# The cluster tests put HAProxy in front of their nodes; each test runs its own instance.
install_haproxy() {
  if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then apt_install haproxy; fi
}

# The browser tests (the web console's) start their own chromedriver and headless Chromium;
# Debian's two packages come in matching versions, which chromedriver requires.
install_chromium() {
  if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then apt_install chromium chromium-driver; fi
}

# Makes (or keeps) a virtualenv at $1 with the packages that follow, pinned so that every machine
# tests with the same ones; the machine's own Python stays as it was. Standard output is for the
# variables alone: pip's messages go to standard error.
install_venv() {
  local venv=$1
  shift
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.tools" 2>/dev/null)" = "$*" ]; then return; fi
  if ! command -v python3 >/dev/null; then apt_install python3 python3-venv; fi
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv separately.
    apt_install python3-venv
    python3 -m venv "$venv" >/dev/null
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
  echo "$*" >"$venv/.tools"
}

# grpcio-reflection is the official Python reflection client (it speaks only v1alpha), which the
# gRPC reflection test points at a node.
install_python_tools() {
  install_venv "$services_dir/python" grpcio==1.85.1 grpcio-reflection==1.85.1
  BATON_TEST_PYTHON="$services_dir/python/bin/python"
}

# The outside checkers of the HTTP API (scripts/check-api.sh).
install_api_tools() {
  install_venv "$services_dir/api-tools" openapi-spec-validator==0.9.0 schemathesis==4.32.5
  BATON_TEST_API_TOOLS="$services_dir/api-tools/bin"
}

start_postgres
start_mariadb
install_haproxy
install_redis
install_chromium
install_python_tools
install_api_tools
echo "export BATON_TEST_PG_BIN='$BATON_TEST_PG_BIN'"
echo "export BATON_TEST_PYTHON='$BATON_TEST_PYTHON'"
echo "export BATON_TEST_API_TOOLS='$BATON_TEST_API_TOOLS'"
echo "export BATON_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$pg_port/postgres'"
echo "export BATON_TEST_MYSQL_URL='mysql://baton:baton@127.0.0.1:$my_port/mysql'"
echo "test services: PostgreSQL on 127.0.0.1:$pg_port, MariaDB on 127.0.0.1:$my_port" >&2
