//! Administrator roles and the audit log:
//!
//! - `admins.role` and `api_tokens.role` (`owner`, `operator`, `viewer`): what the account or
//!   token may change. Existing rows become owners, which is what they could do before roles;
//! - `audit_log`: one row per administrative action, sign-in and config push (who, from where,
//!   what, on which object, the changed fields before → after, the outcome). Read newest first by
//!   id (`before` cursor), filtered by action and actor, and pruned by age.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Admins {
    Table,
    Role,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Role,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorKind,
    ActorId,
    ActorName,
    Address,
    Action,
    ObjectKind,
    ObjectId,
    ObjectName,
    Changes,
    Outcome,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Admins::Table)
                    .add_column(string(Admins::Role).default("owner"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .add_column(string(ApiTokens::Role).default("owner"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(big_integer(AuditLog::At))
                    .col(string(AuditLog::ActorKind))
                    .col(big_integer_null(AuditLog::ActorId))
                    .col(string(AuditLog::ActorName))
                    .col(string_null(AuditLog::Address))
                    .col(string(AuditLog::Action))
                    .col(string_null(AuditLog::ObjectKind))
                    .col(big_integer_null(AuditLog::ObjectId))
                    .col(string_null(AuditLog::ObjectName))
                    .col(text_null(AuditLog::Changes))
                    .col(string(AuditLog::Outcome))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_audit_log_at", AuditLog::At),
            ("idx_audit_log_action_id", AuditLog::Action),
            ("idx_audit_log_actor_name_id", AuditLog::ActorName),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditLog::Table).col(column);
            if name != "idx_audit_log_at" {
                index.col(AuditLog::Id);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
}
