//! Baton's SQL schema as sea-orm migrations. The same migrations create the same schema on SQLite,
//! PostgreSQL and MySQL/MariaDB, so they use only portable column types: ids are 64-bit integers,
//! times are milliseconds since the Unix epoch (UTC) in 64-bit integers, and structured values
//! (env, labels) are JSON in text columns.

pub use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_runner_registration;
mod m0003_project_secrets;
mod m0004_runner_project;
mod m0005_schedules;
mod m0006_registration_token_uses;
mod m0007_teams;
mod m0008_task_version;
mod m0009_attempt_node;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_runner_registration::Migration),
            Box::new(m0003_project_secrets::Migration),
            Box::new(m0004_runner_project::Migration),
            Box::new(m0005_schedules::Migration),
            Box::new(m0006_registration_token_uses::Migration),
            Box::new(m0007_teams::Migration),
            Box::new(m0008_task_version::Migration),
            Box::new(m0009_attempt_node::Migration),
        ]
    }
}
