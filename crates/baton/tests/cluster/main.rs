//! Active-active HA tests with real processes only: a PostgreSQL or MariaDB database, a private
//! Redis, three `baton server --no-runner` nodes, HAProxy in front of them, and two `baton runner`
//! processes that reach the cluster through HAProxy. Each test drives a thousand small tasks
//! through the cluster while it breaks something (a node, Redis, a drain) and then checks that
//! every task ran exactly once.
//!
//! Every test builds its own cluster (database, Redis, ports, key prefix), but they are heavy:
//! `.config/nextest.toml` runs this binary's tests one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod cluster;
mod haproxy;
mod load;
mod node;
mod runner;
mod verify;

mod cross_node;
mod drain;
mod exactly_once;
mod node_kill;
mod redis_outage;
mod schedules;
mod split;
