//! Every ended attempt records the node its runner was connected to, so a task's history shows
//! where each attempt ran (and which node to look at when one was lost). Rows written before this
//! migration have no node.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        // As long as `runners.node_id`, where it is copied from.
        let node = string_len_null(a("node_id"), 100);
        m.alter_table(Table::alter().table(a("task_attempts")).add_column(node).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.alter_table(Table::alter().table(a("task_attempts")).drop_column(a("node_id")).to_owned()).await
    }
}
