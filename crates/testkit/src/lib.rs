//! Test support: a Baton server started in-process on port 0 in a throwaway data directory, an
//! API client that speaks API.md, clients of the live events (WebSocket and SSE), a headless
//! Chromium for the web console's tests, and helpers for the steps most tests share. Everything
//! here panics with a clear message on failure: it is only ever used by tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod client;
mod databases;
pub mod events;
mod metrics;
mod postgres;
mod redis;
mod server;

pub use browser::Browser;
pub use client::{Client, Resp};
pub use databases::{Dialect, TestDatabase};
pub use metrics::{Sample, Scrape};
pub use postgres::PrivatePostgres;
pub use redis::PrivateRedis;
pub use server::{TestServer, free_port, test_config};

/// The password of the admin every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-1";
