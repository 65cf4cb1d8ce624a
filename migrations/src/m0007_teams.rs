//! Teams (owner: gateway): who is in which project with which role, API tokens narrowed to one
//! project and a lower role, and the audit log of every write through the API.

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
                .table(a("project_members"))
                .if_not_exists()
                .col(big_integer(a("project_id")))
                .col(big_integer(a("user_id")))
                // owner | manager | runner | viewer
                .col(string_len(a("role"), 16))
                .col(big_integer(a("created_at")))
                .primary_key(Index::create().col(a("project_id")).col(a("user_id")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("audit_log"))
                .if_not_exists()
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("time")))
                .col(big_integer_null(a("user_id")))
                .col(string_len(a("username"), 100))
                .col(big_integer_null(a("token_id")))
                .col(string_len(a("client_ip"), 64))
                .col(string_len(a("node"), 64))
                .col(string_len(a("action"), 64))
                .col(string_len(a("target"), 300))
                .col(string_len(a("detail"), 500))
                .col(big_integer_null(a("project_id")))
                .col(integer(a("status")))
                .to_owned(),
        )
        .await?;
        // One column per statement: SQLite alters one column at a time.
        m.alter_table(Table::alter().table(a("api_tokens")).add_column(big_integer_null(a("project_id"))).to_owned())
            .await?;
        m.alter_table(Table::alter().table(a("api_tokens")).add_column(string_len_null(a("role"), 16)).to_owned())
            .await?;
        for (name, table, cols) in [
            ("ix_project_members_user", "project_members", &["user_id", "project_id"][..]),
            ("ix_audit_log_project", "audit_log", &["project_id", "id"][..]),
            ("ix_audit_log_time", "audit_log", &["time"][..]),
        ] {
            let mut i = Index::create();
            i.name(name).table(a(table)).if_not_exists();
            for c in cols {
                i.col(a(c));
            }
            m.create_index(i.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.alter_table(Table::alter().table(a("api_tokens")).drop_column(a("role")).to_owned()).await?;
        m.alter_table(Table::alter().table(a("api_tokens")).drop_column(a("project_id")).to_owned()).await?;
        m.drop_table(Table::drop().table(a("audit_log")).if_exists().to_owned()).await?;
        m.drop_table(Table::drop().table(a("project_members")).if_exists().to_owned()).await
    }
}
