//! End-to-end tests of the `baton` binary's server: the HTTP API of API.md driven against real
//! servers (in-process on port 0, or child processes when a test needs SIGKILL), running real
//! scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod attempts;
mod bad_input;
mod browser;
mod cancel_timeout;
mod child_server;
mod console;
mod database_outage;
mod events;
mod execution;
mod forgery;
mod grpc_services;
mod grpc_tls;
mod hand_runner;
mod http_server;
mod limits;
mod logins;
mod migrate_command;
mod openapi;
mod permissions;
mod remote_runners;
mod request_ids;
mod restart;
mod retention;
mod runner_bounds;
mod runner_resilience;
mod runner_trust;
mod schedule_preview;
mod schedules;
mod secrets;
mod sessions;
mod smoke;
mod undelivered;
