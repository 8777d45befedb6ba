//! Periodic usage resets, per-node usage multipliers and usage history:
//!
//! - `users.reset_strategy` (`none`, `daily`, `weekly`, `monthly`, `every_30_days`, `yearly`),
//!   `users.reset_day` (the day of the month a `monthly` reset falls on, 1–31),
//!   `users.usage_reset_at` (Unix ms of the last reset; the user's creation time until then) and
//!   `users.next_reset_at` (Unix ms of the next reset, NULL = none; indexed, so the periodic check
//!   reads only users whose reset is due);
//! - `nodes.usage_multiplier_permille`: what a byte through the node counts for its users, in
//!   thousandths (1000 = 1.0);
//! - `settings.time_zone`: the IANA zone whose midnights resets fall on (`UTC` by default);
//! - `usage_history`: bytes per (subject, id, step, bucket start), for users and nodes, hourly and
//!   daily, written in the same transaction as the usage it records.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    ResetStrategy,
    ResetDay,
    UsageResetAt,
    NextResetAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    UsageMultiplierPermille,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    TimeZone,
}

#[derive(DeriveIden)]
enum UsageHistory {
    Table,
    Subject,
    SubjectId,
    Step,
    At,
    Bytes,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string(Users::ResetStrategy).default("none").to_owned(),
            integer(Users::ResetDay).default(1).to_owned(),
            big_integer(Users::UsageResetAt).default(0).to_owned(),
            big_integer_null(Users::NextResetAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column.clone())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute(
                &Query::update()
                    .table(Users::Table)
                    .value(Users::UsageResetAt, Expr::col(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_next_reset_at")
                    .table(Users::Table)
                    .col(Users::NextResetAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(integer(Nodes::UsageMultiplierPermille).default(1000))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Settings::Table)
                    .add_column(string(Settings::TimeZone).default("UTC"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageHistory::Table)
                    .col(string(UsageHistory::Subject))
                    .col(big_integer(UsageHistory::SubjectId))
                    .col(string(UsageHistory::Step))
                    .col(big_integer(UsageHistory::At))
                    .col(big_integer(UsageHistory::Bytes))
                    .primary_key(
                        Index::create()
                            .col(UsageHistory::Subject)
                            .col(UsageHistory::SubjectId)
                            .col(UsageHistory::Step)
                            .col(UsageHistory::At),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_history_step_at")
                    .table(UsageHistory::Table)
                    .col(UsageHistory::Step)
                    .col(UsageHistory::At)
                    .to_owned(),
            )
            .await
    }
}
