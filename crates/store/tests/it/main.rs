//! Integration tests of `baton-store` against a fresh, migrated SQLite database per test.

#![allow(clippy::unwrap_used)]

mod attempts;
mod catalog;
mod identity;
mod logs;
mod migrations;
mod races;
mod support;
mod tasks;
mod views;
