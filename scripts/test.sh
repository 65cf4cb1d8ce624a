#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine: installs and starts what the tests
# need (PostgreSQL and MariaDB servers on loopback; Redis, HAProxy and Chromium with chromedriver,
# of which the tests start private instances), builds once, runs the whole suite on SQLite
# (including the cluster tests, which pick their own databases, and the browser tests), then the
# store and end-to-end suites again on PostgreSQL and on MariaDB.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "error: cargo is not installed; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest…"
  cargo install cargo-nextest --locked
fi
eval "$(./scripts/services.sh)"

status=0
echo "== every test, on SQLite"
BATON_TEST_DATABASE=sqlite cargo nextest run --workspace --lib --bins --tests --no-fail-fast "$@" || status=1
for dialect in postgres mysql; do
  echo "== store and end-to-end suites, on $dialect"
  # The same selection of packages and targets as above, narrowed by a filter: selecting packages
  # with -p would unify features differently and build much of the dependency tree again. The
  # browser tests run once, on SQLite: they test pages, whose API the other suites run on every
  # database, and each costs a Chromium.
  BATON_TEST_DATABASE=$dialect cargo nextest run --workspace --lib --bins --tests --no-fail-fast \
    -E 'package(baton-store) | (package(baton) & binary(it) & !test(/^(browser|console)::/))' "$@" || status=1
done
exit $status
