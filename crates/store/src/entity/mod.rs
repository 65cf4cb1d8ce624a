//! sea-orm entities, one module per table. Times are milliseconds since the Unix epoch (UTC);
//! JSON-valued columns are `String`s that the query modules parse.

pub mod api_token;
pub mod audit_entry;
pub mod project;
pub mod project_member;
pub mod project_secret;
pub mod registration_token;
pub mod runner;
pub mod schedule;
pub mod schedule_fire;
pub mod session;
pub mod task;
pub mod task_attempt;
pub mod task_log_chunk;
pub mod template;
pub mod user;
