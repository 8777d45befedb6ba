//! Users gain an expiry:
//!
//! - `users.expire_at`: Unix ms after which the user is disabled with reason `expired`
//!   (NULL = never);
//! - `users.expire_after_first_use`: a duration in ms; the clock starts at the user's first
//!   counted byte, which sets `expire_at` (NULL = no such clock);
//! - `users.first_used_at`: Unix ms of the first counted byte (NULL = none yet).
//!
//! An index on `expire_at` keeps the periodic expiry check from reading every user.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    ExpireAt,
    ExpireAfterFirstUse,
    FirstUsedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer_null(Users::ExpireAt),
            big_integer_null(Users::ExpireAfterFirstUse),
            big_integer_null(Users::FirstUsedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_users_expire_at")
                    .table(Users::Table)
                    .col(Users::ExpireAt)
                    .to_owned(),
            )
            .await
    }
}
