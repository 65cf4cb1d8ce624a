# Everyday commands. `just --list` shows them all.

# Start a single node on the embedded default (SQLite, in-process coordination, a local runner).
run *ARGS:
    cargo run --release -- server {{ARGS}}

# Every test (installs what the tests need).
test *ARGS:
    ./scripts/test.sh {{ARGS}}

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# What CI runs.
ci:
    bash .ci/run

# Print the effective configuration with secrets masked.
config-check:
    cargo run --release -- config check

# Measure trigger-to-start latency against a running node: `just bench --password ...`.
bench *ARGS:
    cargo run --release -- bench {{ARGS}}

# Validate the Dockerfile, compose files, load balancer configs and Helm chart (no Docker needed).
deploy-check:
    ./scripts/check-deploy.sh
