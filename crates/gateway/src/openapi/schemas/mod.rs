//! The JSON shapes of the API's answers, by area, as the OpenAPI document describes them.
//!
//! Handlers build these answers with `serde_json::json!` (`model.rs` and the route files), so the
//! types here are descriptions only and are never constructed. What keeps them true is the
//! outside check in CI (`scripts/check-api.sh`), which validates every answer of a live node
//! against them; request bodies, by contrast, are the handlers' own `Deserialize` types.

mod cluster;
mod identity;
mod projects;
mod schedules;
mod tasks;

pub use cluster::*;
pub use identity::*;
pub use projects::*;
pub use schedules::*;
pub use tasks::*;
