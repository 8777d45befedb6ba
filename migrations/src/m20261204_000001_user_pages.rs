//! Indexes for paged user lists (`UserService::page` in the manager): each sort is a keyset over
//! (sort value, id), each filter an equality, so every page is an index range at any user count.
//!
//! - `idx_users_usage_bytes_id` (usage_bytes, id) and `idx_users_created_at_id` (created_at, id):
//!   sorting by usage and by creation time, both ways;
//! - `idx_users_name_id` (name, id): sorting by name in byte order. SQLite's default collation
//!   is already byte order; on PostgreSQL the index is on `name COLLATE "C"`, which is what the
//!   query sorts by whatever the database's locale (raw SQL, guarded per backend: the schema
//!   helpers cannot name a collation per column of an index);
//! - `idx_users_enabled_id` (enabled, id) and `idx_users_disabled_reason_id`
//!   (disabled_reason, id): the status filters, already in id order for the default sort.
//!
//! Sorting by id uses the primary key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    Enabled,
    DisabledReason,
    UsageBytes,
    CreatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, column) in [
            ("idx_users_usage_bytes_id", Users::UsageBytes),
            ("idx_users_created_at_id", Users::CreatedAt),
            ("idx_users_enabled_id", Users::Enabled),
            ("idx_users_disabled_reason_id", Users::DisabledReason),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Users::Table)
                        .col(column)
                        .col(Users::Id)
                        .to_owned(),
                )
                .await?;
        }
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                manager
                    .get_connection()
                    .execute_unprepared(
                        r#"CREATE INDEX "idx_users_name_id" ON "users" ("name" COLLATE "C", "id")"#,
                    )
                    .await?;
            }
            _ => {
                manager
                    .create_index(
                        Index::create()
                            .name("idx_users_name_id")
                            .table(Users::Table)
                            .col(Users::Name)
                            .col(Users::Id)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
