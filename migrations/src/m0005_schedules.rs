//! Schedules (owner: scheduler) and their fires. A fire is one due time of one schedule, unique on
//! (schedule, due time): it is inserted in the transaction that creates its task, which is what
//! makes every due time fire once however many nodes try. Fires are written only by the
//! dispatcher, as part of creating (or skipping) the task; the scheduler reads them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.create_table(
            Table::create()
                .table(a("schedules"))
                .if_not_exists()
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("project_id")))
                .col(big_integer(a("template_id")))
                .col(string_len_null(a("cron"), 200))
                .col(string_len(a("timezone"), 64))
                .col(big_integer_null(a("run_at")))
                .col(boolean(a("enabled")))
                .col(string_len(a("catch_up"), 16))
                .col(string_len(a("overlap"), 16))
                .col(big_integer_null(a("created_by")))
                .col(big_integer(a("created_at")))
                // Due times before this are never fired: a new or changed schedule starts now.
                .col(big_integer(a("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("schedule_fires"))
                .if_not_exists()
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("schedule_id")))
                .col(big_integer(a("due_at")))
                .col(string_len(a("status"), 16))
                .col(big_integer_null(a("task_id")))
                .col(string_len_null(a("reason"), 500))
                .col(big_integer(a("created_at")))
                .to_owned(),
        )
        .await?;
        for (name, table, cols, unique) in [
            ("ix_schedules_project", "schedules", &["project_id", "id"][..], false),
            ("ux_schedule_fires", "schedule_fires", &["schedule_id", "due_at"][..], true),
            ("ix_tasks_schedule", "tasks", &["schedule_id", "status"][..], false),
        ] {
            let mut i = Index::create();
            i.name(name).table(a(table)).if_not_exists();
            for c in cols {
                i.col(a(c));
            }
            if unique {
                i.unique();
            }
            m.create_index(i.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.drop_index(Index::drop().name("ix_tasks_schedule").table(a("tasks")).to_owned()).await?;
        m.drop_table(Table::drop().table(a("schedule_fires")).if_exists().to_owned()).await?;
        m.drop_table(Table::drop().table(a("schedules")).if_exists().to_owned()).await
    }
}
