//! Registration tokens are single use unless minted with `max_uses` (0 = unlimited until expiry,
//! for autoscaled runners): `uses` counts the runners each token created. Tokens minted before
//! this migration get one more use each.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        // One column per statement: SQLite alters one column at a time.
        m.alter_table(
            Table::alter().table(a("registration_tokens")).add_column(integer(a("max_uses")).default(1)).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(a("registration_tokens")).add_column(integer(a("uses")).default(0)).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = Alias::new;
        m.alter_table(Table::alter().table(a("registration_tokens")).drop_column(a("uses")).to_owned()).await?;
        m.alter_table(Table::alter().table(a("registration_tokens")).drop_column(a("max_uses")).to_owned()).await
    }
}
