//! Project secrets, sealed with AES-256-GCM (`sealed` is base64 of nonce and ciphertext). Owner:
//! gateway.

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
                .table(a("project_secrets"))
                .if_not_exists()
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("project_id")))
                .col(string_len(a("name"), 100))
                // 64 KiB values sealed and base64-encoded fit in TEXT everywhere.
                .col(text(a("sealed")))
                .col(big_integer(a("created_at")))
                .col(big_integer(a("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_project_secrets")
                .table(a("project_secrets"))
                .col(a("project_id"))
                .col(a("name"))
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("project_secrets")).if_exists().to_owned()).await
    }
}
