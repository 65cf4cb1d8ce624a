#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine: installs what the tests need when it
# is missing, builds once, and runs the whole suite with nextest.
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
# Scripts run by the tests use bash and coreutils, present on any Debian.

cargo nextest run --workspace --all-targets --no-fail-fast "$@"
