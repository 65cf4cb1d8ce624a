//! Integration tests of `baton-store`: one suite, run against SQLite, PostgreSQL and MariaDB
//! (`BATON_TEST_DATABASE`), with a fresh, migrated database per test.

#![allow(clippy::unwrap_used)]

mod attempts;
mod batch;
mod catalog;
mod counts;
mod identity;
mod logs;
mod members;
mod migrations;
mod races;
mod reports;
mod runners;
mod support;
mod tasks;
mod views;
