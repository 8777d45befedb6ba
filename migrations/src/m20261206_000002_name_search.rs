//! `idx_users_name_trgm`, PostgreSQL only: a trigram index (`pg_trgm`) on `LOWER(name)`, which
//! the users search `LOWER(name) LIKE LOWER('%…%')` can use, so a search no longer reads every
//! user (`UserService::page` in the manager; timings in docs/performance.md).
//!
//! The extension may be unavailable (not installed, or the database role may not create it).
//! The manager then still starts and searches as before, by reading every name: the extension is
//! created, and the index made where the extension exists, each inside a PL/pgSQL block whose
//! failure PostgreSQL reports as a notice without aborting the migration: the index only speeds
//! the search up.
//! SQLite has no such index; its search reads every name (fast enough there: docs/performance.md).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                r#"
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): the users search reads every name', SQLERRM;
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS "idx_users_name_trgm" ON "users" USING gin (LOWER("name") gin_trgm_ops);
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'no trigram index (%): the users search reads every name', SQLERRM;
END
$$;
"#,
            )
            .await?;
        Ok(())
    }
}
