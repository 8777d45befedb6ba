//! `idx_users_enabled_disabled_reason` (enabled, disabled_reason): the dashboard counts users per
//! state and disable reason with one `GROUP BY enabled, disabled_reason`. With this index the
//! count reads the index alone, already in group order, instead of the whole table and a
//! temporary sort (`DashboardService` in the manager; timings in docs/performance.md).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Enabled,
    DisabledReason,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_users_enabled_disabled_reason")
                    .table(Users::Table)
                    .col(Users::Enabled)
                    .col(Users::DisabledReason)
                    .to_owned(),
            )
            .await
    }
}
