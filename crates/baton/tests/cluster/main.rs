//! Active-active HA tests with real processes only: a PostgreSQL or MariaDB database, a private
//! Redis, three `baton server --no-runner` nodes, HAProxy in front of them, and two `baton runner`
//! processes that reach the cluster through HAProxy. Most tests drive a thousand small tasks
//! through the cluster while they break something (a node, Redis, a drain) and then check that
//! every task ran exactly once; others check cross-node effects, services started apart,
//! schedules firing once per due time while a node dies, and live events (WebSocket and SSE
//! clients on different nodes) that lose and repeat no line whatever breaks.
//!
//! Every test builds its own cluster (database, Redis, ports, key prefix), but they are heavy:
//! `.config/nextest.toml` runs this binary's tests one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod cluster;
mod console;
mod haproxy;
mod load;
mod node;
mod runner;
mod verify;

mod cross_node;
mod drain;
mod events;
mod exactly_once;
mod node_kill;
mod placement;
mod redis_outage;
mod schedules;
mod split;
