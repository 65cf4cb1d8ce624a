//! Every task carries a version, one more on every change of the row, written in the same
//! statement as the change: event subscribers keep the highest version they have seen of each
//! task and drop older ones, whatever order events arrive in. And the time of its last change,
//! so a subscriber coming back can ask for every task of a project changed since it left.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.alter_table(Table::alter().table(a("tasks")).add_column(big_integer(a("version")).default(1)).to_owned())
            .await?;
        m.alter_table(Table::alter().table(a("tasks")).add_column(big_integer(a("updated_at")).default(0)).to_owned())
            .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE tasks SET updated_at = COALESCE(finished_at, started_at, assigned_at, created_at)",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("ix_tasks_project_updated")
                .table(a("tasks"))
                .col(a("project_id"))
                .col(a("updated_at"))
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.drop_index(Index::drop().name("ix_tasks_project_updated").table(a("tasks")).to_owned()).await?;
        m.alter_table(Table::alter().table(a("tasks")).drop_column(a("updated_at")).to_owned()).await?;
        m.alter_table(Table::alter().table(a("tasks")).drop_column(a("version")).to_owned()).await
    }
}
