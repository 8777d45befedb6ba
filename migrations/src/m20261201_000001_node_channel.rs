//! Nodes gain the secure channel's columns:
//!
//! - `tls_fingerprint`: the SHA-256 fingerprint of the node certificate the manager pins (hex);
//!   NULL until a pin is given or taken on first use;
//! - `presented_fingerprint`: a different certificate the node presented (a refused call),
//!   kept for the operator to compare before re-pinning;
//! - `insecure_http`: the node API is plain HTTP, only when the operator asked for it;
//! - `pending_token`: a token being rotated in, until the node has accepted it;
//! - `refused_calls`: the node's own count of refused calls, recorded on each pull.
//!
//! Rows that exist when this runs were registered as plain HTTP nodes (the only kind there was):
//! they get `insecure_http = true` and keep working until an operator re-registers them over TLS.
//! New rows default to TLS. SQLite adds one column per `ALTER TABLE`, so each is its own step.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodes {
    Table,
    TlsFingerprint,
    PresentedFingerprint,
    InsecureHttp,
    PendingToken,
    RefusedCalls,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            string_null(Nodes::TlsFingerprint),
            string_null(Nodes::PresentedFingerprint),
            boolean(Nodes::InsecureHttp).default(false).to_owned(),
            string_null(Nodes::PendingToken),
            big_integer(Nodes::RefusedCalls).default(0).to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Nodes::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // Every node registered so far speaks plain HTTP.
        manager
            .exec_stmt(
                Query::update()
                    .table(Nodes::Table)
                    .value(Nodes::InsecureHttp, true)
                    .to_owned(),
            )
            .await
    }
}
