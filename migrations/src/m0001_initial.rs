//! The first schema: identity (users, sessions, API tokens), projects and templates (owned by the
//! gateway), tasks, their attempts and log chunks, and runners (owned by the dispatcher).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let big = Big(m.get_database_backend());
        for table in tables(big) {
            m.create_table(table).await?;
        }
        for index in indexes() {
            m.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "task_log_chunks",
            "task_attempts",
            "tasks",
            "runners",
            "templates",
            "projects",
            "api_tokens",
            "sessions",
            "users",
        ] {
            m.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

fn t(name: &str) -> TableCreateStatement {
    Table::create().table(Alias::new(name)).if_not_exists().to_owned()
}

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// Text that may be large (scripts, log chunks, JSON). MySQL's `TEXT` stops at 64 KiB, so there it
/// is `LONGTEXT`; the other databases' `TEXT` has no such limit.
#[derive(Clone, Copy)]
struct Big(sea_orm_migration::sea_orm::DbBackend);

impl Big {
    fn text(self, name: &str) -> ColumnDef {
        match self.0 {
            sea_orm_migration::sea_orm::DbBackend::MySql => {
                ColumnDef::new(c(name)).custom(c("LONGTEXT")).not_null().to_owned()
            }
            _ => text(c(name)),
        }
    }

    fn text_null(self, name: &str) -> ColumnDef {
        match self.0 {
            sea_orm_migration::sea_orm::DbBackend::MySql => {
                ColumnDef::new(c(name)).custom(c("LONGTEXT")).null().to_owned()
            }
            _ => text_null(c(name)),
        }
    }
}

fn tables(big: Big) -> Vec<TableCreateStatement> {
    vec![
        t("users")
            .col(big_pk_auto(c("id")))
            .col(string_len_uniq(c("username"), 100))
            .col(string_len(c("password_hash"), 255))
            .col(boolean(c("admin")))
            .col(big_integer(c("created_at")))
            .to_owned(),
        t("sessions")
            .col(big_pk_auto(c("id")))
            .col(big_integer(c("user_id")))
            .col(char_len_uniq(c("token_hash"), 64))
            .col(big_integer(c("created_at")))
            .col(big_integer(c("expires_at")))
            .to_owned(),
        t("api_tokens")
            .col(big_pk_auto(c("id")))
            .col(big_integer(c("user_id")))
            .col(string_len(c("name"), 100))
            .col(char_len_uniq(c("token_hash"), 64))
            .col(big_integer(c("created_at")))
            .col(big_integer_null(c("expires_at")))
            .to_owned(),
        t("projects")
            .col(big_pk_auto(c("id")))
            .col(string_len_uniq(c("name"), 100))
            .col(big.text("description"))
            .col(integer(c("max_parallel")))
            .col(big_integer(c("created_at")))
            .col(big_integer(c("updated_at")))
            .to_owned(),
        t("templates")
            .col(big_pk_auto(c("id")))
            .col(big_integer(c("project_id")))
            .col(string_len(c("name"), 100))
            .col(big.text("script"))
            .col(string_len(c("shell"), 16))
            .col(big.text("env"))
            .col(big.text("secrets"))
            .col(big.text("labels"))
            .col(integer(c("timeout_seconds")))
            .col(integer(c("max_attempts")))
            .col(integer(c("max_parallel")))
            .col(integer(c("priority")))
            .col(big_integer(c("created_at")))
            .col(big_integer(c("updated_at")))
            .to_owned(),
        t("tasks")
            .col(big_pk_auto(c("id")))
            .col(big_integer(c("project_id")))
            .col(big_integer(c("template_id")))
            .col(string_len(c("status"), 16))
            .col(integer(c("attempt")))
            .col(integer(c("max_attempts")))
            .col(big_integer(c("epoch")))
            .col(integer(c("priority")))
            .col(big_integer_null(c("runner_id")))
            .col(integer_null(c("exit_code")))
            .col(big.text_null("error"))
            .col(big_integer_null(c("schedule_id")))
            .col(big_integer_null(c("created_by")))
            .col(boolean(c("cancel_requested")))
            .col(big.text("spec"))
            .col(integer(c("template_max_parallel")))
            .col(integer(c("project_max_parallel")))
            .col(big_integer(c("created_at")))
            .col(big_integer_null(c("assigned_at")))
            .col(big_integer_null(c("started_at")))
            .col(big_integer_null(c("finished_at")))
            .to_owned(),
        t("task_attempts")
            .col(big_pk_auto(c("id")))
            .col(big_integer(c("task_id")))
            .col(integer(c("attempt")))
            .col(big_integer(c("epoch")))
            .col(big_integer_null(c("runner_id")))
            .col(string_len(c("status"), 16))
            .col(integer_null(c("exit_code")))
            .col(big.text_null("error"))
            .col(big_integer_null(c("started_at")))
            .col(big_integer(c("finished_at")))
            .to_owned(),
        t("task_log_chunks")
            .col(big_pk_auto(c("id")))
            .col(big_integer(c("task_id")))
            .col(big_integer(c("seq_first")))
            .col(big_integer(c("seq_last")))
            .col(big.text("data"))
            .to_owned(),
        t("runners")
            .col(big_pk_auto(c("id")))
            .col(string_len_uniq(c("name"), 100))
            .col(big.text("labels"))
            .col(integer(c("capacity")))
            .col(char_len(c("secret_hash"), 64))
            .col(boolean(c("paused")))
            .col(boolean(c("revoked")))
            .col(string_len(c("version"), 32))
            .col(string_len_null(c("node_id"), 100))
            .col(big_integer_null(c("last_seen")))
            .col(big_integer(c("created_at")))
            .to_owned(),
    ]
}

fn idx(name: &str, table: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(Alias::new(table)).if_not_exists();
    for col in cols {
        i.col(Alias::new(*col));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

/// The indexes of the hot queries: listing a project's tasks newest first (optionally by status
/// or template), picking the queue head, finding a runner's tasks, and reading a task's log.
fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        idx("ix_sessions_user", "sessions", &["user_id"], false),
        idx("ix_api_tokens_user", "api_tokens", &["user_id"], false),
        idx("ux_templates_project_name", "templates", &["project_id", "name"], true),
        idx("ix_tasks_project", "tasks", &["project_id", "id"], false),
        idx("ix_tasks_project_status", "tasks", &["project_id", "status", "id"], false),
        idx("ix_tasks_project_template", "tasks", &["project_id", "template_id", "id"], false),
        idx("ix_tasks_queue", "tasks", &["status", "priority", "id"], false),
        idx("ix_tasks_runner", "tasks", &["runner_id", "status"], false),
        idx("ix_task_attempts_task", "task_attempts", &["task_id", "attempt"], false),
        idx("ux_task_log_chunks", "task_log_chunks", &["task_id", "seq_first"], true),
    ]
}
