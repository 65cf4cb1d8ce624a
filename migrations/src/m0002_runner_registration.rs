//! Registration tokens, which an admin mints and a runner trades for its identity. Owner:
//! dispatcher.

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
                .table(a("registration_tokens"))
                .if_not_exists()
                .col(big_pk_auto(a("id")))
                .col(char_len_uniq(a("token_hash"), 64))
                .col(text(a("labels")))
                .col(big_integer_null(a("project_id")))
                .col(big_integer(a("created_at")))
                .col(big_integer(a("expires_at")))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("registration_tokens")).if_exists().to_owned()).await
    }
}
