//! Settings gain `allowed_private_networks`: the private destinations (comma-separated CIDRs)
//! the operator opens to user traffic; empty (the default) refuses every private range.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Settings {
    Table,
    AllowedPrivateNetworks,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Settings::Table)
                    .add_column(string(Settings::AllowedPrivateNetworks).default(""))
                    .to_owned(),
            )
            .await
    }
}
